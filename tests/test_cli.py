"""The lram command: record and train from config files, and clear errors for bad configs."""

import json
import re

import pytest
import torch
import yaml

from lram_agents.cli import main
from lram_agents.data import TrajectoryDataset


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)  # --threads changes the process-wide setting


def write(path, data):
    path.write_text(yaml.safe_dump(data) if path.suffix == ".yaml" else json.dumps(data))
    return str(path)


def test_record_then_train(tmp_path, capsys):
    rec = write(tmp_path / "rec.yaml", {"env": "CartPole-v1", "output": str(tmp_path / "data"), "policy": "random", "episodes": 50, "seed": 0})
    assert main(["record", rec, "--episodes", "6", "--threads", "1"]) == 0
    assert TrajectoryDataset(tmp_path / "data").num_episodes == 6
    train = write(tmp_path / "train.json", {
        "output_dir": str(tmp_path / "run"), "steps": 3,
        "model": {"preset": {"backbone": "transformer", "size": "16m"},
                  "overrides": {"image_shape": None, "max_state_dim": 4, "backbone": {"d_model": 32, "num_layers": 1,
                                                                                       "num_heads": 2, "max_positions": 48}}},
        "data": [{"path": str(tmp_path / "data"), "target_return": 500}],
        "trainer": {"batch_size": 4, "context": 8, "warmup_steps": 1, "progress": False},
    })
    assert main(["train", train, "--threads", "1"]) == 0
    assert "trained to step 3" in capsys.readouterr().out
    assert json.loads((tmp_path / "run/model/preprocessing.json").read_text())["target_return"] == 500


def test_record_a_learning_history(tmp_path):
    rec = write(tmp_path / "rec.yaml", {"env": "CartPole-v1", "output": str(tmp_path / "hist"), "seed": 0,
                                        "learning_history": {"algo": "PPO", "total_timesteps": 256, "keep_every": 2, "history_id": 4,
                                                             "algo_kwargs": {"n_steps": 128, "batch_size": 64, "n_epochs": 1}}})
    assert main(["record", rec, "--threads", "1"]) == 0
    dataset = TrajectoryDataset(tmp_path / "hist")
    assert set(dataset.table.history_id) == {4} and all(i % 2 == 0 for i in dataset.table.episode_index)


@pytest.mark.parametrize("config,message", [
    ({"env": "CartPole-v1", "output": "x", "policy": "random", "episodes": 2, "colour": 1}, "unknown config field.*colour"),
    ({"env": "CartPole-v1", "output": "x", "policy": "random"}, "exactly one of episodes and steps"),
    ({"env": "CartPole-v1", "output": "x", "policy": "greedy", "episodes": 1}, "policy"),
])
def test_bad_record_configs_name_the_field(tmp_path, capsys, config, message):
    assert main(["record", write(tmp_path / "r.yaml", config)]) == 2
    assert re.search(message, capsys.readouterr().err)


def test_bad_train_configs_and_missing_data_are_reported(tmp_path, capsys):
    base = {"output_dir": str(tmp_path / "run"), "steps": 2, "model": {"preset": {"backbone": "xlstm", "size": "16m"}},
            "data": [{"path": str(tmp_path / "nowhere")}]}
    assert main(["train", write(tmp_path / "a.yaml", base)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["train", write(tmp_path / "b.yaml", {**base, "trainer": {"grad_clip": -1}})]) == 2
    assert "grad_clip" in capsys.readouterr().err
    (tmp_path / "c.yaml").write_text("steps: [unclosed")
    assert main(["train", str(tmp_path / "c.yaml")]) == 2
    assert "not valid YAML" in capsys.readouterr().err
