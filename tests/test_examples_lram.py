"""examples/lram: the generalist recipe trains on every domain and saves an agent that picks each task's
numbers from its env; the 206M recipe (LRAM's Table 5) runs two optimizer steps at batch 1."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import yaml

import lram_agents
from lram_agents.cli import main as lram_main
from lram_agents.data.format import write_episodes
from lram_agents.envs import domains
from lram_agents.run_configs import TrainConfig, load_config_file
from trajectory_helpers import make_episode

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "lram"
IMAGES = gym.spaces.Box(0, 255, (1, 64, 64), np.uint8)

pytestmark = pytest.mark.usefixtures("one_thread")


def fake_domain_data(root: Path, tasks_by_domain: dict[str, list[str]], steps: int = 60) -> dict[str, float]:
    """One short episode per task, in the spaces the domain's envs have (images for Atari / Procgen);
    returns the best return per env id."""
    rng = np.random.default_rng(0)
    best = {}
    for domain, tasks in tasks_by_domain.items():
        image = domain in ("atari", "procgen")
        obs = IMAGES if image else gym.spaces.Box(-np.inf, np.inf, ({"metaworld": 39, "robosuite": 53}.get(domain, 9),), np.float32)
        actions = gym.spaces.Discrete(18 if domain == "atari" else 15) if image else gym.spaces.Box(-1, 1, (4,), np.float32)
        for task in tasks:
            folder = root / domain / task
            folder.mkdir(parents=True)
            episode = make_episode(steps, rng, obs, actions, task=task)
            env_id = domains.env_id(domain, task)
            write_episodes(folder / "part-0000.h5", [episode], obs, actions, domain=domain, env_id=env_id)
            best[env_id] = float(episode.rewards.sum())
    return best


def recipe_with(tmp_path: Path, name: str, root: Path, kernel: str | None = None, **trainer) -> Path:
    """The recipe with its data under ``root``, its run in ``tmp_path`` and some trainer settings changed;
    ``kernel="torch"``: the eager xLSTM kernels (same function, no compile time in a two-step test)."""
    data = load_config_file(EXAMPLES / name)
    if kernel is not None:
        data["model"]["inline"]["backbone"]["kernel"] = kernel
    data["output_dir"] = str(tmp_path / "run")
    data["data"][0]["root"] = str(root)
    data["trainer"].update(trainer, progress=False)
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("name", ["train_xlstm.yaml", "train_dt.yaml", "train_206m.yaml"])
def test_every_recipe_is_valid(name):
    cfg = TrainConfig.from_dict(load_config_file(EXAMPLES / name))
    assert cfg.data[0].domains == ["atari", "procgen", "dmcontrol", "metaworld", "robosuite"]
    assert (cfg.trainer.grad_clip, cfg.trainer.weight_decay, cfg.trainer.context) == (0.25, 0.01, 50)


def test_the_generalist_recipe_trains_on_every_domain_and_its_agent_picks_the_tasks_numbers(tmp_path):
    entry = load_config_file(EXAMPLES / "train_xlstm.yaml")["data"][0]
    tasks = {d: entry["tasks"].get(d, list(domains.get(d).tasks("train"))) for d in entry["domains"]}
    best = fake_domain_data(tmp_path / "data", tasks)
    config = recipe_with(tmp_path, "train_xlstm.yaml", tmp_path / "data", kernel="torch", batch_size=10, warmup_steps=1,
                         checkpoint_every=2)
    assert lram_main(["train", str(config), "--steps", "2", "--no-progress"]) == 0
    model_dir = tmp_path / "run" / "model"
    table = json.loads((model_dir / "preprocessing.json").read_text())["tasks"]
    assert len([k for k in table if not k.startswith("domain:")]) == sum(map(len, tasks.values()))
    reach = domains.env_id("metaworld", "reach")
    assert table[reach] == {"reward_scale": 200.0, "target_return": pytest.approx(best[reach])}
    assert table[domains.env_id("atari", "breakout")]["reward_scale"] == 20.0
    assert table["domain:dmcontrol"]["reward_scale"] == 100.0

    agent = lram_agents.load(str(model_dir), compile=False)
    if not domains.get("metaworld").available():
        pytest.skip(domains.get("metaworld").missing())
    env = gym.make("lram_agents/MetaWorld-hand-insert-v0")  # a hold-out task: the domain's numbers
    agent.bind(env)
    assert agent.reward_scale == 200.0 and agent.target_return == table["domain:metaworld"]["target_return"]
    obs, _ = env.reset(seed=0)
    assert env.action_space.contains(agent.act(obs, 0.0))
    agent.bind(gym.make(reach))
    assert agent.target_return == pytest.approx(best[reach])


@pytest.mark.slow
def test_the_206m_recipe_runs_two_optimizer_steps_at_batch_1(tmp_path):
    fake_domain_data(tmp_path / "data", {d: list(domains.get(d).tasks("train")) for d in domains.list_domains()}, steps=55)
    config = recipe_with(tmp_path, "train_206m.yaml", tmp_path / "data", batch_size=1, grad_accum_steps=1, num_workers=0,
                         checkpoint_every=1000)
    assert lram_main(["train", str(config), "--steps", "2", "--no-progress", "--device", "cpu"]) == 0
    metrics = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert metrics[-1].startswith("2,")
    assert 190e6 < lram_agents.load(str(tmp_path / "run" / "model"), compile=False).model.num_parameters() < 230e6
