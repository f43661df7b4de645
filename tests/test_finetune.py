"""Offline fine-tuning: top-p% selection, space checks, finetune() on the Trainer (LoRA, resume), the CLI."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml
from finetune_fixtures import record_tmaze, tiny_config, tmaze
from safetensors.torch import load_file

import lram_agents
from lram_agents.agent import Agent
from lram_agents.cli import main
from lram_agents.config import LRAMConfig
from lram_agents.data import Episode, TrajectoryDataset, write_episodes
from lram_agents.finetune import FinetuneConfig, IncompatibleSpaceError, check_transfer, finetune, top_episodes
from lram_agents.model import LRAMModel
from lram_agents.preprocessing import Preprocessing
from lram_agents.serialization import CheckpointError
from lram_agents.training import TrainerConfig

BOX4, DISCRETE4 = gym.spaces.Box(-1.0, 1.0, (4,), np.float32), gym.spaces.Discrete(4)


def quick_trainer(**overrides) -> TrainerConfig:
    settings = dict(batch_size=8, context=4, warmup_steps=2, learning_rate=3e-3, log_every=1, checkpoint_every=3, progress=False)
    return TrainerConfig(**{**settings, **overrides})


def episodes_with_returns(path, returns, tasks=None):
    episodes = []
    for i, value in enumerate(returns):
        rewards = np.array([0.0, value], dtype=np.float32)
        episodes.append(Episode(np.full((3, 4), i / 10, np.float32), np.array([0, 1]), rewards, [False, True], [False, False],
                                task=tasks[i] if tasks else ""))
    write_episodes(path, episodes, BOX4, DISCRETE4)
    return TrajectoryDataset(path)


# ---- selection -------------------------------------------------------------------------------------
def test_ties_at_the_cut_do_not_follow_the_recording_order(tmp_path):
    # T-Maze-like: returns 0 or 1, recorded in order of corridor length; the top 10% must not be the
    # first successes recorded (the shortest corridors) but spread over all of them
    data = episodes_with_returns(tmp_path / "d.h5", [1, 0] * 50)
    rows = top_episodes(data, 0.1).table.row
    assert len(rows) == 10 and set(data.table.total_return[rows]) == {1}
    assert rows.max() > 50 and rows.min() < 50


def test_top_episodes_keeps_the_best_share_with_ties_broken_reproducibly(tmp_path):
    data = episodes_with_returns(tmp_path / "d.h5", [0, 3, 1, 3, 2, 5, 0, 3, 1, 4])
    top = top_episodes(data, 0.3)
    assert top.num_episodes == 3 and sorted(top.table.total_return) == [3, 4, 5]
    tie = top_episodes(data, 0.4)  # 5, 4 and two of the three 3s
    assert sorted(tie.table.total_return) == [3, 3, 4, 5]
    assert tie.table.row.tolist() == top_episodes(data, 0.4).table.row.tolist()  # the same every time
    assert top_episodes(data, 0.05).num_episodes == 1 and top_episodes(data, 1.0) is data
    with pytest.raises(ValueError, match="fraction must be in"):
        top_episodes(data, 0.0)


def test_top_episodes_per_task_takes_the_share_of_every_task(tmp_path):
    data = episodes_with_returns(tmp_path / "d.h5", [9, 8, 7, 6, 1, 2, 3, 4], tasks=["a"] * 4 + ["b"] * 4)
    assert sorted(top_episodes(data, 0.25).table.total_return) == [8, 9]
    per_task = top_episodes(data, 0.25, per_task=True)
    assert sorted(zip(per_task.table.task, per_task.table.total_return)) == [("a", 9), ("b", 4)]


# ---- spaces ----------------------------------------------------------------------------------------
def test_check_transfer_says_how_spaces_map():
    config = tiny_config()
    lines = check_transfer(config, gym.spaces.Box(-1, 1, (2, 3), np.float32), gym.spaces.Box(-2, 2, (3,), np.float32))
    assert lines == ["observations: shape (2, 3) flattened to 6 dims, zero-padded to the shared encoder's 6",
                     "actions: Box(3) rescaled to [-1, 1], discretised into 256 bins each, using 3 of the head's 8 dimensions"]
    assert "first 4 of the head's 18 classes" in check_transfer(config, BOX4, DISCRETE4)[1]


@pytest.mark.parametrize("observations, actions, message", [
    (gym.spaces.Box(-1, 1, (7,)), DISCRETE4, "7 dims .* max_state_dim=6"),
    (gym.spaces.MultiDiscrete([10, 10]), DISCRETE4, "not a Box.*FlattenObservation"),
    (gym.spaces.Box(0, 255, (64, 64, 3), np.uint8), DISCRETE4, "image encoder"),
    (BOX4, gym.spaces.Discrete(19), "19 actions, more than .*num_discrete_actions=18"),
    (BOX4, gym.spaces.Box(-np.inf, np.inf, (2,)), "unbounded"),
    (BOX4, gym.spaces.Box(-1, 1, (9,)), "9 dimensions, more than .*max_action_dims=8"),
    (BOX4, gym.spaces.MultiDiscrete([3, 3]), "neither Discrete nor a 1-D Box"),
])
def test_check_transfer_names_what_does_not_fit(observations, actions, message):
    with pytest.raises(IncompatibleSpaceError, match=message):
        check_transfer(tiny_config(), observations, actions)


def test_regression_head_cannot_take_discrete_actions():
    with pytest.raises(IncompatibleSpaceError, match="regression head"):
        check_transfer(tiny_config(action_head="regression"), BOX4, DISCRETE4)


# ---- finetune --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tmaze_data(tmp_path_factory):
    return record_tmaze(tmp_path_factory.mktemp("tmaze") / "data", episodes=40, epsilon=0.5, seed=3)


def test_lora_finetune_freezes_the_base_weights_and_saves_a_loadable_agent(tmp_path, tmaze_data, one_thread):
    torch.manual_seed(1)
    pretrained = LRAMModel(tiny_config())
    before = {k: v.clone() for k, v in pretrained.state_dict().items()}
    agent = Agent(pretrained, Preprocessing(reward_scale=2.0, keep_memory=True))
    config = FinetuneConfig(method="lora", train_also=["head"], top_fraction=0.25, merge=True)
    result = finetune(agent, tmaze_data, 6, config, quick_trainer(), tmp_path / "run", device="cpu")
    assert all(torch.equal(before[k], v) for k, v in pretrained.state_dict().items())  # the caller's model is a copy
    assert (result.episodes_used, result.episodes_total) == (10, 40)
    selected = top_episodes(TrajectoryDataset(tmaze_data), 0.25)
    trained = load_file(result.train.checkpoint / "model.safetensors")
    for name, tensor in before.items():  # LoRA trains adapters and the head only
        assert torch.equal(trained[name], tensor) != name.startswith("head."), name
    loaded = lram_agents.load(result.model_dir, device="cpu")
    assert loaded.model.config.lora is None  # merged
    assert loaded.target_return == selected.table.total_return.max() and loaded.preprocessing.reward_scale == 2.0
    assert loaded.keep_memory and loaded.observation_space == tmaze().observation_space
    record = json.loads((tmp_path / "run" / "finetune.json").read_text())
    assert record["pretrained"] == "an agent" and record["episodes_used"] == 10 and record["finetune"]["method"] == "lora"


def test_finetune_resumes_and_refuses_changed_settings(tmp_path, tmaze_data, one_thread):
    pretrained, run = LRAMModel(tiny_config()), tmp_path / "run"
    first = finetune(pretrained, tmaze_data, 3, FinetuneConfig(top_fraction=0.5), quick_trainer(), run, device="cpu")
    assert first.train.step == 3
    with pytest.raises(CheckpointError, match="already holds checkpoints"):
        finetune(pretrained, tmaze_data, 6, FinetuneConfig(top_fraction=0.5), quick_trainer(), run, device="cpu")
    with pytest.raises(CheckpointError, match="finetune differs"):
        finetune(pretrained, tmaze_data, 6, FinetuneConfig(top_fraction=0.25), quick_trainer(), run, resume=True, device="cpu")
    resumed = finetune(pretrained, tmaze_data, 6, FinetuneConfig(top_fraction=0.5), quick_trainer(), run, resume=True, device="cpu")
    assert resumed.train.step == 6 and resumed.train.checkpoint.name == "step-00000006"


def test_finetune_rejects_data_the_model_cannot_take(tmp_path):
    path = tmp_path / "wide.h5"
    space = gym.spaces.Box(-1, 1, (9,), np.float32)
    write_episodes(path, [Episode(np.zeros((2, 9), np.float32), [0], [1.0], [True], [False])], space, DISCRETE4)
    with pytest.raises(IncompatibleSpaceError, match="9 dims"):
        finetune(LRAMModel(tiny_config()), path, 2, output_dir=tmp_path / "run", device="cpu")


def test_finetuning_teaches_a_held_out_variant(tmp_path, one_thread):
    """Pretrained on T-Maze with the flag at the junction, the agent fails when the flag comes one cell
    earlier; fine-tuning on the best half of noisy oracle episodes of that variant fixes it."""
    torch.manual_seed(0)
    pretrain = record_tmaze(tmp_path / "pre", episodes=60, epsilon=0.0, seed=0)
    variant = record_tmaze(tmp_path / "new", episodes=120, epsilon=0.3, seed=1, flag_mode="before_junction")
    base = finetune(LRAMModel(tiny_config()), pretrain, 120, trainer_config=quick_trainer(checkpoint_every=1000), output_dir=tmp_path / "base",
                    device="cpu").agent
    held_out = tmaze(flag_mode="before_junction")
    before = lram_agents.evaluate(base, held_out, 30, seed=7, progress=False).mean_return
    tuned = finetune(base, variant, 80, FinetuneConfig(top_fraction=0.5), quick_trainer(checkpoint_every=1000), tmp_path / "ft",
                     device="cpu").agent
    after = lram_agents.evaluate(tuned, held_out, 30, seed=7, progress=False).mean_return
    assert lram_agents.evaluate(base, tmaze(), 30, seed=7, progress=False).mean_return == 1.0
    assert before <= 0.6 and after == 1.0, (before, after)


# ---- CLI ---------------------------------------------------------------------------------------------
def test_cli_finetunes_a_saved_agent(tmp_path, tmaze_data, capsys, caplog, one_thread):
    caplog.set_level("INFO", logger="lram_agents")
    Agent(LRAMModel(tiny_config()), Preprocessing()).save_pretrained(tmp_path / "pretrained")
    config = {"pretrained": str(tmp_path / "pretrained"), "output_dir": str(tmp_path / "run"), "steps": 2, "data": {"path": str(tmaze_data)},
              "finetune": {"method": "lora", "top_fraction": 0.1, "lora": {"rank": 2}}, "trainer": quick_trainer().to_dict()}
    path = tmp_path / "finetune.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["finetune", str(path), "--threads", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "on 4 of 40 episodes to step 2" in out and "Discrete(4) uses the first 4" not in out  # logged, not printed again
    assert caplog.text.count("Discrete(4) uses the first 4") == 1
    assert LRAMConfig.load(tmp_path / "run" / "model" / "config.json").lora.rank == 2
    config["pretrained"] = "xlstm-tmazee"
    path.write_text(yaml.safe_dump(config))
    assert main(["finetune", str(path), "--output-dir", str(tmp_path / "other")]) == 2
    assert "config field 'pretrained' = 'xlstm-tmazee': unknown model" in capsys.readouterr().err
