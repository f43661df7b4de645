"""examples/vizdoom on a tiny scale: the data of the scripted policy at several skill levels, the four training
configs at one budget, and data -> train -> evaluate end to end."""

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

import lram_agents
from example_scripts import import_example_scripts
from lram_agents.cli import main as lram
from lram_agents.data.dataset import TrajectoryDataset
from lram_agents.model import LRAMModel
from lram_agents.run_configs import TrainConfig, build_model_config, load_config_file

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "vizdoom"
make_data, _, evaluate, ship = import_example_scripts("vizdoom", ("make_data", "baselines", "evaluate", "ship"))

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py says why


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Three episodes of at most 12 steps (epsilons 0 and 1: the scripted policy and uniform actions)."""
    pytest.importorskip("vizdoom", reason="the 'vizdoom' extra is not installed (pip install 'lram_agents[vizdoom]')")
    output = tmp_path_factory.mktemp("vizdoom_data")
    make_data.main(["--output", str(output), "--episodes", "3", "--max-steps", "12", "--epsilons", "0", "1"])
    return output


def test_episodes_are_stored_as_rgb_frames_with_their_skill_level(data):
    files = sorted(data.glob("episode-*.h5"))
    assert [p.name for p in files] == ["episode-00000.h5", "episode-00001.h5", "episode-00002.h5"]
    for index, path in enumerate(files):
        episode = TrajectoryDataset(path).episode(0)
        assert episode.observations.shape == (len(episode) + 1, 3, 64, 112) and episode.observations.dtype == np.uint8
        assert len(episode) == 12 and episode.truncations[-1] and not episode.terminations.any()  # cut at --max-steps
        assert episode.task in ("red", "green")
        with h5py.File(path, "r") as f:
            metadata = json.loads(f.attrs["metadata"])
        assert metadata["epsilon"] == [0.0, 1.0][index % 2] and metadata["seed"] == index
        assert metadata["return"] == pytest.approx(float(episode.rewards.sum()), abs=1e-4)
        assert 0 < metadata["cpu_seconds"] and 0 < metadata["seconds"]


def test_episode_is_reproducible_from_its_seed(data):
    import gymnasium as gym

    from lram_agents.envs.vizdoom_two_colors import ENV_ID, ScriptedMemoryPolicy

    env = gym.make(ENV_ID)
    try:
        replayed, _ = make_data.play_episode(env, ScriptedMemoryPolicy(env), epsilon=1.0, seed=1, max_steps=12)
    finally:
        env.close()
    recorded = TrajectoryDataset(data / "episode-00001.h5").episode(0)
    np.testing.assert_array_equal(replayed.actions, recorded.actions)
    np.testing.assert_array_equal(replayed.observations, recorded.observations)


def test_rerun_skips_recorded_episodes_and_refuses_other_settings(data, capsys):
    before = {p: p.stat().st_mtime_ns for p in data.glob("episode-*.h5")}
    make_data.main(["--output", str(data), "--episodes", "3", "--max-steps", "12", "--epsilons", "0", "1"])
    assert "all 3 episodes" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in data.glob("episode-*.h5")} == before
    with pytest.raises(SystemExit, match="max_steps"):
        make_data.main(["--output", str(data), "--episodes", "3", "--max-steps", "20", "--epsilons", "0", "1"])


def test_summary_groups_by_skill_level(data):
    table = make_data.summary(data)
    assert table.startswith("3 episodes, 36 steps") and "CPU hours" in table
    assert "| 0 | 2 |" in table and "| 1 | 1 |" in table


def test_bad_settings_are_named():
    with pytest.raises(SystemExit, match="epsilons"):
        make_data.RecordingSettings(epsilons=[1.5])
    with pytest.raises(SystemExit, match="max-steps"):
        make_data.RecordingSettings(max_steps=0)


def test_the_four_models_share_one_budget_and_about_one_size():
    configs = {path.stem.removeprefix("train_"): load_config_file(path) for path in sorted(EXAMPLES.glob("train_*.yaml"))}
    assert set(configs) == set(evaluate.MODELS)
    budgets, sizes = set(), {}
    for name, config in configs.items():
        model = build_model_config(TrainConfig.from_dict(config).model)
        assert model.backbone.type == {"dt": "transformer"}.get(name, name) and config["output_dir"] == f"runs/vizdoom/{name}"
        assert model.image_shape == (3, 64, 112) and model.token_layout == "rate"
        inline = {k: v for k, v in config["model"]["inline"].items() if k != "backbone"}
        trainer = {k: v for k, v in config["trainer"].items() if k != "segment_steps"}
        data = [{k: v for k, v in source.items() if k != "windows"} for source in config["data"]]
        budgets.add(json.dumps([config["steps"], data, trainer, inline], sort_keys=True))
        # RATE's protocol: episode starts in segments of 30; the DT baseline: random windows; the recurrent models:
        # episode starts, run whole
        assert config["data"][0]["windows"] == ("subtrajectory" if name == "dt" else "from_start")
        assert config["trainer"].get("segment_steps") == (30 if name == "rate" else None)
        sizes[name] = LRAMModel(model).num_parameters()
    assert len(budgets) == 1
    assert max(sizes.values()) / min(sizes.values()) < 1.1, sizes


def test_train_evaluate_and_ship_run_end_to_end(data, tmp_path, monkeypatch):
    """RATE's recipe cut to 3 steps on the 12-step episodes, 2 evaluation episodes beside the references, then the
    zoo folder with its card, plots and manifest entry, and the shipped agent acting."""
    monkeypatch.chdir(tmp_path)  # the configs' relative data/ and runs/ paths land here
    shutil.copytree(data, "data/vizdoom")
    assert lram(["train", str(EXAMPLES / "train_rate.yaml"), "--set", "steps=3",
                 "--set", "trainer.batch_size=2", "--set", "data.0.context=12", "--set", "trainer.segment_steps=6",
                 "--set", "trainer.warmup_steps=1", "--no-progress"]) == 0
    evaluate.main(["--models", "rate=runs/vizdoom/rate/model", "--episodes", "2", "--envs", "2", "--max-steps", "15"])
    report = json.loads(Path("runs/vizdoom/evaluation/evaluation.json").read_text())
    assert set(report["results"]) == {"rate"} and set(report["references"]) == {"scripted", "random"}
    for episodes in (report["results"]["rate"], *report["references"].values()):
        assert len(episodes) == 2 and all(1 <= e["steps"] <= 15 and e["color"] in ("red", "green") for e in episodes)
    # episode i meets seed offset + i: the scripted policy's pillar colours are the env's own for those seeds
    import gymnasium as gym

    from lram_agents.envs.vizdoom_two_colors import ENV_ID

    env = gym.make(ENV_ID)
    try:
        colors = [env.reset(seed=100_000 + i)[1]["pillar_color"] for i in range(2)]
    finally:
        env.close()
    assert [e["color"] for e in report["results"]["rate"]] == colors == [e["color"] for e in report["references"]["scripted"]]
    # a second model's evaluation keeps the first's results (same protocol) and the references
    evaluate.main(["--models", "rate2=runs/vizdoom/rate/model", "--episodes", "2", "--envs", "1", "--max-steps", "15"])
    report = json.loads(Path("runs/vizdoom/evaluation/evaluation.json").read_text())
    assert set(report["results"]) == {"rate", "rate2"}
    assert "| paper: RATE | 16.46 ± 6.90 | 372 (745 tics) |" in evaluate.table(report)
    (tmp_path / "zoo").mkdir()
    (tmp_path / "zoo" / "manifest.json").write_text(json.dumps({"format_version": 1, "models": []}))
    ship.main(["--zoo", str(tmp_path / "zoo")])  # rate2 has no training config of its own: only rate can ship
    directory = tmp_path / "zoo" / "rate-vizdoom"
    assert {"README.md", "survival.png", "frames.png", "evaluation.json", "model.safetensors"} <= {p.name for p in directory.iterdir()}
    card = (directory / "README.md").read_text()
    assert "lram train examples/vizdoom/train_rate.yaml --threads 1" in card and "| paper: RATE |" in card
    assert "3 episodes, 36 steps" in card  # the data's own summary
    # the configs hold episodes out: the card's training row gives the loss on them beside the training loss
    held_out = ship.run_summary("runs/vizdoom/rate")["final_val_loss"]
    assert np.isfinite(held_out) and f"| {held_out:.4f} |" in card
    assert "rate-vizdoom" in (tmp_path / "zoo" / "manifest.json").read_text()
    replay = json.loads((directory / "evaluation.json").read_text())["replay"]  # what tests/test_zoo_vizdoom.py replays
    assert replay["seeds"] == [100_000 + i for i in range(4)] and len(replay["results"]) == 4
    assert all(1 <= e["steps"] <= replay["max_steps"] for e in replay["results"])
    agent = lram_agents.load(directory)
    action = agent.act(np.zeros((3, 64, 112), np.uint8))
    assert 0 <= int(action) < 5
