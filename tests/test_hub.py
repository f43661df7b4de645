"""push_to_hub and load("hf://..."), against a local directory standing in for the Hub (none is reachable here)."""

import shutil

import gymnasium as gym
import huggingface_hub
import numpy as np
import pytest
import torch

import lram_agents
from conftest import small_config
from lram_agents.agent import Agent
from lram_agents.hub import parse_reference
from lram_agents.model import LRAMModel
from lram_agents.preprocessing import Preprocessing
from lram_agents.registry import WeightsUnavailableError


@pytest.fixture
def local_hub(tmp_path, monkeypatch):
    """huggingface_hub's create_repo / upload_folder / snapshot_download, served from tmp_path/hub/<owner>/<name>."""
    root = tmp_path / "hub"
    calls = []

    def create_repo(self, repo_id, private=False, exist_ok=False, **kwargs):
        calls.append(("create_repo", repo_id, private))
        (root / repo_id).mkdir(parents=True, exist_ok=exist_ok)

    def upload_folder(self, repo_id, folder_path, commit_message=None, revision=None, **kwargs):
        calls.append(("upload_folder", repo_id, commit_message))
        shutil.copytree(folder_path, root / repo_id, dirs_exist_ok=True)
        return f"https://huggingface.co/{repo_id}/commit/0"

    def snapshot_download(repo_id, revision=None, cache_dir=None, allow_patterns=None, local_files_only=False, **kwargs):
        calls.append(("snapshot_download", repo_id, tuple(allow_patterns)))
        if not (root / repo_id).is_dir():
            raise huggingface_hub.errors.RepositoryNotFoundError(f"404 {repo_id}")
        return str(root / repo_id)

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    return root, calls


def test_push_then_load_by_hf_reference_gives_the_same_agent(local_hub):
    root, calls = local_hub
    torch.manual_seed(0)
    spaces = {"observation_space": gym.spaces.Box(-1, 1, (3,), np.float32), "action_space": gym.spaces.Discrete(4)}
    agent = Agent(LRAMModel(small_config("mamba")), Preprocessing(target_return=7.0, reward_scale=2.0), compile=False, **spaces)
    url = agent.push_to_hub("me/tiny-mamba", private=True)
    assert url.startswith("https://huggingface.co/me/tiny-mamba") and ("create_repo", "me/tiny-mamba", True) in calls
    assert sorted(p.name for p in (root / "me/tiny-mamba").iterdir()) == ["README.md", "config.json", "model.safetensors",
                                                                          "preprocessing.json"]
    assert 'lram_agents.load("hf://me/tiny-mamba")' in (root / "me/tiny-mamba/README.md").read_text()
    loaded = lram_agents.load("hf://me/tiny-mamba", compile=False)
    assert loaded.target_return == 7.0 and loaded.reward_scale == 2.0 and loaded.action_space == spaces["action_space"]
    for name, tensor in agent.model.state_dict().items():
        assert torch.equal(tensor, loaded.model.state_dict()[name]), name
    obs = np.zeros(3, np.float32)
    assert agent.act(obs, deterministic=True) == loaded.act(obs, deterministic=True)


def test_hub_references_and_bad_names_are_checked(local_hub):
    with pytest.raises(WeightsUnavailableError, match="hf://me/missing"):
        lram_agents.load("hf://me/missing")
    with pytest.raises(ValueError, match="owner/name"):
        lram_agents.load("hf://no-owner")
    with pytest.raises(ValueError, match="got ''"):
        lram_agents.load("")  # used to load the current directory
    with pytest.raises(ValueError, match="got None"):
        lram_agents.load(None)
    assert parse_reference("hf://me/x@v1") == ("me/x", "v1")
