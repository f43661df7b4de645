import gymnasium as gym
import numpy as np
import pytest
import torch

from lram_agents.config_utils import ConfigError
from lram_agents.preprocessing import (
    ActionAdapter,
    ObservationAdapter,
    Preprocessing,
    previous,
    returns_to_go,
    reward_scale_for,
)


def test_returns_to_go_and_previous():
    rewards = torch.tensor([[1.0, 0.0, 2.0, 1.0]])
    assert returns_to_go(rewards, reward_scale=2.0).tolist() == [[2.0, 1.5, 1.5, 0.5]]
    assert previous(rewards, fill=0.0).tolist() == [[0.0, 1.0, 0.0, 2.0]]
    assert reward_scale_for("MetaWorld") == 200 and reward_scale_for("tmaze") == 1


def test_preprocessing_round_trip_and_validation(tmp_path):
    pre = Preprocessing(reward_scale=20.0, target_return=5.0, obs_mean=[0.0, 1.0], obs_std=[1.0, 2.0])
    pre.save(tmp_path)
    assert Preprocessing.load(tmp_path) == pre
    with pytest.raises(ConfigError, match="reward_scale"):
        Preprocessing(reward_scale=0.0)
    with pytest.raises(ConfigError, match="obs_std"):
        Preprocessing(obs_mean=[0.0], obs_std=[0.0])


def test_vector_observations_are_validated():
    adapter = ObservationAdapter(gym.spaces.Box(-1, 1, (3,)), max_state_dim=8)
    assert adapter(np.zeros((2, 3))).dtype == torch.float32
    with pytest.raises(ValueError, match=r"\(2, 4\)"):
        adapter(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="nan"):
        adapter(np.array([[0.0, np.nan, 0.0]]))
    with pytest.raises(ValueError, match="max_state_dim=2"):
        ObservationAdapter(gym.spaces.Box(-1, 1, (3,)), max_state_dim=2)


def test_images_are_greyscaled_and_resized():
    adapter = ObservationAdapter(gym.spaces.Box(0, 255, (210, 160, 3), np.uint8), image_shape=(1, 64, 64))
    frames = np.full((2, 210, 160, 3), 200, np.uint8)
    out = adapter(frames)
    assert out.shape == (2, 1, 64, 64) and out.dtype == torch.uint8 and int(out[0, 0, 0, 0]) == 200
    with pytest.raises(TypeError, match="uint8"):
        adapter(frames.astype(np.float32))


def test_continuous_actions_are_rescaled_both_ways():
    adapter = ActionAdapter(gym.spaces.Box(-2.0, 2.0, (2,), np.float32))
    assert adapter.spec.kind == "continuous" and adapter.spec.size == 2
    env_actions = adapter.to_env(torch.tensor([[-1.0, 0.5]]))
    assert np.allclose(env_actions, [[-2.0, 1.0]])
    assert torch.allclose(adapter.to_model(env_actions), torch.tensor([[-1.0, 0.5]]))
    discrete = ActionAdapter(gym.spaces.Discrete(4))
    assert discrete.to_env(torch.tensor([3])).tolist() == [3]
