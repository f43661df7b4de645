import json

import pytest
import torch

from conftest import SMALL_BACKBONES, random_timesteps, small_config
from lram_agents.config import LRAMConfig
from lram_agents.config_utils import ConfigError
from lram_agents.model import LRAMModel
from lram_agents.serialization import CheckpointError


@pytest.mark.parametrize("backbone", sorted(SMALL_BACKBONES))
def test_save_load_reproduces_outputs_exactly(tmp_path, backbone):
    model = LRAMModel(small_config(backbone, image_shape=(3, 64, 64), include_actions=True)).eval()
    steps = random_timesteps(2, 4, actions=5)
    model.save_pretrained(tmp_path)
    loaded = LRAMModel.from_pretrained(tmp_path)
    assert loaded.config == model.config
    with torch.no_grad():
        assert torch.equal(model(steps).logits, loaded(steps).logits)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]


def _write_config(tmp_path, edit):
    LRAMModel(small_config("xlstm-1:0")).save_pretrained(tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    edit(data)
    (tmp_path / "config.json").write_text(json.dumps(data))


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda d: d.update(max_state_dim=0), "max_state_dim"),
        (lambda d: d.update(max_state_dim="big"), "max_state_dim"),
        (lambda d: d.update(colour="red"), "colour"),
        (lambda d: d["backbone"].update(num_heads=5), "d_model"),
        (lambda d: d["backbone"].update(type="lstm"), "backbone.type"),
        (lambda d: d["backbone"].update(slstm_at=[7]), "slstm_at"),
        (lambda d: d.update(image_shape=[2, 64, 64]), "image_shape"),
    ],
)
def test_bad_config_fields_are_named(tmp_path, edit, message):
    _write_config(tmp_path, edit)
    with pytest.raises(ConfigError, match=message):
        LRAMModel.from_pretrained(tmp_path)


def test_truncated_weights_give_a_clear_error(tmp_path):
    LRAMModel(small_config("transformer")).save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated or corrupted"):
        LRAMModel.from_pretrained(tmp_path)


def test_weights_of_another_architecture_are_rejected(tmp_path):
    LRAMModel(small_config("transformer")).save_pretrained(tmp_path)
    small_config("xlstm-1:0").save(tmp_path / "config.json")
    with pytest.raises(CheckpointError, match="does not match its config"):
        LRAMModel.from_pretrained(tmp_path)


def test_missing_directory(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        LRAMModel.from_pretrained(tmp_path / "nothing")


def test_config_json_round_trip():
    config = small_config("xlstm-7:1", image_shape=(1, 64, 64))
    assert LRAMConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_weights_with_nan_are_refused_with_the_tensors_name(tmp_path):
    from lram_agents import Agent, load

    model = LRAMModel(small_config("xlstm-1:0"))
    with torch.no_grad():
        model.head.proj.weight[0, :3] = float("nan")
    Agent(model).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match=r"'head.proj.weight' holds 3 NaN/inf value"):
        load(str(tmp_path))


def test_written_files_follow_the_umask_not_the_temporary_files_0600(tmp_path):
    import os
    import stat

    from lram_agents import Agent
    from lram_agents.data.format import write_episodes
    from trajectory_helpers import DISCRETE, VECTOR_SPACE, make_episode
    import numpy as np

    old = os.umask(0o022)
    try:
        Agent(LRAMModel(small_config("xlstm-1:0"))).save_pretrained(tmp_path / "agent")
        write_episodes(tmp_path / "data.h5", [make_episode(5, np.random.default_rng(0))], VECTOR_SPACE, DISCRETE)
    finally:
        os.umask(old)
    files = [*(tmp_path / "agent").iterdir(), tmp_path / "data.h5"]
    assert {p.name for p in files} >= {"config.json", "model.safetensors", "README.md", "data.h5"}
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
