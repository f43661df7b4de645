"""The lram command: record and train from config files, and clear errors for bad configs."""

import json
import re

import pytest
import torch
import yaml

from lram_agents.cli import main
from lram_agents.config_utils import ConfigError
from lram_agents.run_configs import RecordConfig, make_policy
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
    # --set changes single fields of the config file
    assert main(["train", train, "--threads", "1", "--output-dir", str(tmp_path / "alibi"), "--set", "steps=2",
                 "--set", "model.overrides.backbone.position_embedding=alibi", "--set", "data.0.target_return=400"]) == 0
    assert "trained to step 2" in capsys.readouterr().out
    assert json.loads((tmp_path / "alibi/model/config.json").read_text())["backbone"]["position_embedding"] == "alibi"
    assert json.loads((tmp_path / "alibi/model/preprocessing.json").read_text())["target_return"] == 400
    # a second stage starts from the first one's weights (model: pretrained)
    from lram_agents.model import LRAMModel
    from lram_agents.run_configs import ModelSection, build_model

    stage_one = LRAMModel.from_pretrained(tmp_path / "run/model")
    start = build_model(ModelSection(pretrained=str(tmp_path / "run/model")))
    assert all(torch.equal(t, start.state_dict()[k]) for k, t in stage_one.state_dict().items())
    stage_two = write(tmp_path / "stage2.json", {**json.loads((tmp_path / "train.json").read_text()), "output_dir": str(tmp_path / "run2"),
                                                 "model": {"pretrained": str(tmp_path / "run/model")}})
    assert main(["train", stage_two, "--threads", "1"]) == 0
    assert "trained to step 3" in capsys.readouterr().out
    assert main(["train", write(tmp_path / "bad.json", {**json.loads((tmp_path / "stage2.json").read_text()),
                                                        "model": {"pretrained": str(tmp_path / "run/model"), "overrides": {"dropout": 0.1}}})]) == 2
    assert "cannot change a pretrained model" in capsys.readouterr().err


def test_set_fields_reads_yaml_values_and_names_bad_paths():
    from lram_agents.config_utils import ConfigError, set_fields

    data = {"trainer": {"batch_size": 4}, "data": [{"path": "a"}]}
    changed = set_fields(data, ["trainer.batch_size=32", "model.init.mlstm_forget_bias=[8, 20]", "data.0.context=100",
                                "trainer.lr=1e-4", "name=alibi"])
    assert changed == {"trainer": {"batch_size": 32, "lr": 1e-4}, "data": [{"path": "a", "context": 100}],
                       "model": {"init": {"mlstm_forget_bias": [8, 20]}}, "name": "alibi"}
    assert data == {"trainer": {"batch_size": 4}, "data": [{"path": "a"}]}  # the original is left as it was
    for bad, message in [("trainer.batch_size", "KEY.PATH=VALUE"), ("data.3.context=1", "indexes a list of 1"),
                         ("trainer.batch_size.x=1", "trainer.batch_size is 4")]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            set_fields(data, [bad])


def test_record_a_learning_history(tmp_path, capsys):
    rec = write(tmp_path / "rec.yaml", {"env": "CartPole-v1", "output": str(tmp_path / "hist"), "seed": 0,
                                        "learning_history": {"algorithm": "PPO", "total_timesteps": 256, "keep_every": 2, "history_id": 4,
                                                             "algorithm_kwargs": {"n_steps": 128, "batch_size": 64, "n_epochs": 1}}})
    assert main(["record", rec, "--threads", "1"]) == 0
    dataset = TrajectoryDataset(tmp_path / "hist")
    assert set(dataset.table.history_id) == {4} and all(i % 2 == 0 for i in dataset.table.episode_index)
    out = capsys.readouterr().out
    assert f"recorded {dataset.num_episodes} of " in out and "keep_every 2" in out  # the episodes written, not all finished


def test_record_configs_with_the_old_algo_names_are_refused_with_the_new_ones(tmp_path):
    for old, new in (("algo", "algorithm"), ("algo_kwargs", "algorithm_kwargs")):
        with pytest.raises(ConfigError, match=f"'learning_history.{old}' is now called 'learning_history.{new}'"):
            RecordConfig.from_dict({"env": "CartPole-v1", "output": "x", "learning_history": {old: {}}})
    with pytest.raises(ConfigError, match="policy.sb3.algo.*'PPO3'"):
        make_policy({"sb3": {"algo": "PPO3", "path": "x.zip"}}, None)


def test_a_callable_policy_in_the_working_directory_needs_no_pythonpath(tmp_path, monkeypatch):
    (tmp_path / "my_policy_module.py").write_text("def make(env):\n    return lambda obs: 0\n")
    monkeypatch.chdir(tmp_path)
    rec = write(tmp_path / "rec.yaml", {"env": "CartPole-v1", "output": "data", "policy": {"callable": "my_policy_module:make"},
                                        "episodes": 2, "seed": 0})
    assert main(["record", rec]) == 0
    assert TrajectoryDataset(tmp_path / "data").num_episodes == 2


def test_unknown_env_ids_and_model_names_are_user_errors(tmp_path, capsys):
    rec = write(tmp_path / "rec.yaml", {"env": "NoSuchEnv-v0", "output": "x", "policy": "random", "episodes": 1})
    assert main(["record", rec]) == 2
    assert "lram record: error:" in capsys.readouterr().err
    train = write(tmp_path / "t.yaml", {"output_dir": str(tmp_path / "run"), "steps": 1, "model": {"preset": {"backbone": "xlstm", "size": "3m"}},
                                        "data": [{"path": str(tmp_path)}]})
    assert main(["train", train]) == 2
    err = capsys.readouterr().err
    assert "lram train: error:" in err and "unknown size '3m'" in err
    assert main(["evaluate", "no-such-model", "--env", "CartPole-v1"]) == 2
    assert "unknown model 'no-such-model'" in capsys.readouterr().err
    assert main(["evaluate", "xlstm-tmaze", "--env", "CartPole-v1"]) == 2  # trained in T-Maze's spaces
    assert "cannot act in CartPole-v1" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["train", "record", "finetune"])
def test_example_configs_are_valid_and_name_every_field(kind, capsys):
    import dataclasses

    from lram_agents.finetune.config import FinetuneConfig
    from lram_agents.lora import LoRAConfig
    from lram_agents.run_configs import (DataConfig, FinetuneRunConfig, LearningHistoryConfig, ModelSection, RecordConfig,
                                         TrainConfig)
    from lram_agents.training.config import TrainerConfig

    assert main(["config", "--example", kind]) == 0
    text = capsys.readouterr().out
    data = yaml.safe_load(text)
    classes = {"train": [TrainConfig, ModelSection, DataConfig, TrainerConfig],
               "record": [RecordConfig, LearningHistoryConfig],
               "finetune": [FinetuneRunConfig, FinetuneConfig, LoRAConfig]}[kind]
    classes[0].from_dict(data)  # the example itself is a valid config
    if kind == "train":
        TrainerConfig.from_dict(data["trainer"])  # every trainer field is in it with its default
        assert {f.name for f in dataclasses.fields(TrainerConfig)} == set(data["trainer"])
    for cls in classes:
        for f in dataclasses.fields(cls):
            assert re.search(rf"^[\s#-]*{f.name}:", text, re.M), f"{kind} example lacks {cls.__name__}.{f.name}"


def test_evaluate_prints_a_table_and_writes_json_and_the_trial_plot(tmp_path, capsys):
    out = tmp_path / "tmaze"
    assert main(["evaluate", "xlstm-tmaze", "--env", "lram_agents/TMaze-v0", "--episodes", "3", "--no-progress", "--output", str(out)]) == 0
    report = json.loads((out / "evaluation.json").read_text())
    assert report["summary"]["episodes"] == 3 and report["summary"]["mean return"] == 1.0  # the zoo agent solves T-Maze
    assert "mean return" in capsys.readouterr().out and "trials" not in report
    out = tmp_path / "darkroom"
    assert main(["evaluate", "mamba-darkroom", "--env", "lram_agents/DarkRoom-v0", "--tasks", "holdout", "--episodes", "2",
                 "--no-progress", "--output", str(out)]) == 0
    report = json.loads((out / "evaluation.json").read_text())
    assert [row["trial"] for row in report["trials"]] == [1, 2] and report["trials"][0]["envs"] == 20
    assert (out / "trials.png").stat().st_size > 1000


def test_bench_forwards_to_the_benchmarks_and_help_is_quick_to_import(capsys):
    import subprocess
    import sys

    with pytest.raises(SystemExit):
        main(["bench", "training", "--help"])
    assert "lram bench training" in capsys.readouterr().out
    assert main(["bench"]) == 0 and "latency" in capsys.readouterr().out
    # `lram --help` imports no torch (it took ~7 s when it did)
    probe = "import sys, lram_agents.cli as c; c._parser(); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip() == "False"


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
