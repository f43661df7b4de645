"""examples/ad (Algorithm Distillation on continuous control): the configs compare backbones at one budget, the
evaluation's baselines and source curve are what they claim, and data -> train -> evaluate -> ship runs end to end."""

import json
import shutil
import sys
from pathlib import Path

import gymnasium as gym
import h5py
import numpy as np
import pytest

import lram_agents
from example_scripts import import_example_scripts
from lram_agents.cli import main as lram
from lram_agents.data.task_histories import SourceRLConfig, record_histories
from lram_agents.envs import task_family
from lram_agents.model import LRAMModel
from lram_agents.run_configs import TrainConfig, build_model_config, load_config_file

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "ad"
evaluate, ship = import_example_scripts("ad", ("evaluate", "ship"))
REACHER = "lram_agents/ReacherGoal-v0"

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py says why


def _configs(env: str) -> dict[str, dict]:
    return {path.stem.removeprefix(f"train_{env}_"): load_config_file(path) for path in sorted(EXAMPLES.glob(f"train_{env}_*.yaml"))}


TOKENS = {"antdir": 3_200_000}  # training tokens per model (steps x batch x context): 12.8M unless the CPU allowed less


@pytest.mark.parametrize("env, state_dim, action_dim", [("reachergoal", 6, 2), ("halfcheetahvel", 17, 6), ("pushergoal", 20, 7),
                                                       ("antdir", 27, 8)])
def test_an_envs_backbones_differ_in_their_backbone_only_and_have_about_equal_size(env, state_dim, action_dim):
    configs = _configs(env)
    assert set(configs) == set(evaluate.BACKBONES)
    budgets = set()
    sizes = {}
    for run, config in configs.items():
        model = build_model_config(TrainConfig.from_dict(config).model)
        inline = {k: v for k, v in config["model"]["inline"].items() if k not in ("backbone", "action_head")}
        budgets.add(json.dumps([config["steps"], config["data"], config["trainer"], inline], sort_keys=True))
        assert model.token_layout == "transition" and config["output_dir"].endswith(run)
        assert config["steps"] * config["trainer"]["batch_size"] * config["data"][0]["context"] == TOKENS.get(env, 12_800_000)
        assert (model.max_state_dim, model.max_action_dims) == (state_dim, action_dim)
        assert model.action_head == ("regression" if run == "mamba-mse" else "binned")
        sizes[run] = LRAMModel(model).num_parameters()
    assert len(budgets) == 1
    assert sizes.pop("mamba-mse") < sizes["mamba"]  # the same backbone; only the head is smaller (no 2 x 256 bins)
    assert max(sizes.values()) / min(sizes.values()) < 1.15, sizes


@pytest.mark.parametrize("config, env, tasks, k", [("reachergoal_sac", REACHER, 70, 4),
                                                   ("halfcheetahvel_sac", "lram_agents/HalfCheetahVel-v0", 15, 8),
                                                   ("pushergoal_ppo", "lram_agents/PusherGoal-v0", 35, 10),
                                                   ("antdir_droq", "lram_agents/AntDir-v0", 30, None)])
def test_the_source_configs_run_the_papers_algorithm_on_every_training_task(config, env, tasks, k):
    """The paper's algorithm and task count per env, and its k where the budget keeps enough episodes."""
    cfg = SourceRLConfig(**load_config_file(EXAMPLES / f"{config}.yaml"))
    env_name, algorithm = config.split("_")
    assert (cfg.env, cfg.algorithm.lower()) == (env, algorithm) and ship.PAPER_BUDGET[env_name][0] == cfg.algorithm
    assert k is None or cfg.keep_every == k
    assert len(task_family(cfg.env).train_tasks()) == tasks and cfg.output == f"data/ad/{env_name}"


@pytest.mark.parametrize("policy", ["zero", "random"])
def test_baseline_returns_equal_episodes_played_by_hand(policy):
    tasks = list(task_family(REACHER).holdout_tasks()[:2])
    table = np.asarray(evaluate.baseline_returns(REACHER, tasks, episodes=2, seed=5, policy=policy))
    assert table.shape == (2, 2)
    if policy == "random":
        assert table.mean() < np.asarray(evaluate.baseline_returns(REACHER, tasks, 2, 5, "zero")).mean()  # flailing costs
        return
    for i, task in enumerate(tasks):  # the vector env seeds env i with seed + i, then resets without a seed
        env = gym.make(REACHER, task=task)
        for episode in range(2):
            env.reset(seed=5 + i if episode == 0 else None)
            total, done = 0.0, False
            while not done:
                _, reward, terminated, truncated, _ = env.step(np.zeros(2, np.float32))
                total, done = total + reward, terminated or truncated
            assert table[i, episode] == pytest.approx(total)


def _tiny_sac(output: Path) -> SourceRLConfig:
    return SourceRLConfig(output=str(output), env=REACHER, algorithm="SAC", total_timesteps=150, keep_every=1,
                          algorithm_kwargs={"learning_starts": 50, "batch_size": 16, "policy_kwargs": {"net_arch": [8]}})


def test_source_curves_read_the_kept_episodes_in_history_order_with_their_k(tmp_path):
    record_histories(_tiny_sac(tmp_path / "holdout"), split="holdout", tasks=2, progress=False)
    curves = evaluate.source_curves(tmp_path / "holdout", episodes=2)
    sidecar = json.loads((tmp_path / "holdout" / "task-001.json").read_text())
    np.testing.assert_allclose(curves[sidecar["task"]], sidecar["returns"][:2], rtol=1e-5)
    assert evaluate.recorded_keep_every(tmp_path / "holdout") == 1
    other = _tiny_sac(tmp_path / "holdout")
    other.keep_every, other.total_timesteps = 2, 100
    shutil.copy(next((tmp_path / "holdout").glob("task-000-*.h5")), tmp_path / "first.h5")
    for path in (tmp_path / "holdout").glob("task-*"):
        path.unlink()
    record_histories(other, split="holdout", tasks=1, progress=False)  # task 0 again, with k = 2
    shutil.copy(tmp_path / "first.h5", tmp_path / "holdout" / "task-009-0000000.h5")
    with pytest.raises(SystemExit, match="mixes histories recorded with different keep_every"):
        evaluate.recorded_keep_every(tmp_path / "holdout")
    assert evaluate.source_curves(tmp_path / "nothing", episodes=2) is None
    assert evaluate.recorded_keep_every(tmp_path / "nothing") is None


def test_data_train_evaluate_and_ship_run_end_to_end(tmp_path, monkeypatch):
    """The Transformer's recipe, cut to 3 training steps, 2 tasks and 3 episodes: the card and zoo entry are written
    from the run's own files and the shipped agent acts in the env."""
    monkeypatch.chdir(tmp_path)  # the configs' relative data/ and runs/ paths land here
    record_histories(_tiny_sac(Path("data/ad/reachergoal")), tasks=2, progress=False)
    record_histories(_tiny_sac(Path("data/ad/reachergoal-holdout")), split="holdout", tasks=2, progress=False)
    config = EXAMPLES / "train_reachergoal_transformer.yaml"
    assert lram(["train", str(config), "--set", "steps=3", "--set", "trainer.log_every=1", "--set", "trainer.batch_size=2",
                 "--set", "data.0.context=40", "--set", "trainer.warmup_steps=1"]) == 0
    monkeypatch.setattr(sys, "argv", ["evaluate.py", "--models", "transformer=runs/ad/reachergoal/transformer/model",
                                      "--tasks", "2", "--episodes", "3", "--seeds", "0"])
    evaluate.main()
    report = json.loads(Path("runs/ad/reachergoal/evaluation/evaluation.json").read_text())
    assert np.asarray(report["results"]["transformer"]["per_seed"]).shape == (1, 2, 3)
    assert set(report["baselines"]) == {"zero", "random"} and len(report["source"]) == 2
    assert report["algorithm"] == "SAC"  # read from the recorded histories, not given
    (tmp_path / "zoo").mkdir()
    (tmp_path / "zoo" / "manifest.json").write_text(json.dumps({"format_version": 1, "models": []}))
    monkeypatch.setattr(sys, "argv", ["ship.py", "--env", "reachergoal", "--zoo", str(tmp_path / "zoo")])
    ship.main()
    card = (tmp_path / "zoo" / "dt-ad-reachergoal" / "README.md").read_text()
    assert "## Reacher-Goal: in-context RL by Algorithm Distillation" in card and "| zero actions |" in card
    assert "lram train examples/ad/train_reachergoal_transformer.yaml" in card
    assert "2 of 70 training tasks × 150 steps" in card  # the recipe the files were recorded with
    manifest = json.loads((tmp_path / "zoo" / "manifest.json").read_text())
    assert "dt-ad-reachergoal" in json.dumps(manifest)
    agent = lram_agents.load(tmp_path / "zoo" / "dt-ad-reachergoal")
    assert agent.keep_memory
    action = agent.act(np.zeros(6, np.float32), 0.0)
    assert np.asarray(action).shape == (2,) and np.all(np.abs(action) <= 1)

