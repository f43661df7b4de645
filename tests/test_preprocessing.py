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


def test_multi_discrete_observations_become_one_hot_codes():
    from lram_agents.preprocessing import state_size

    space = gym.spaces.MultiDiscrete([3, 4], start=[0, 1])
    adapter = ObservationAdapter(space, max_state_dim=7)
    states = adapter(np.array([[0, 1], [2, 4]]))
    assert state_size(space) == 7 and states.dtype == torch.float32
    assert states.tolist() == [[1, 0, 0, 1, 0, 0, 0], [0, 0, 1, 0, 0, 0, 1]]
    with pytest.raises(ValueError, match=r"\[3, 1\]"):
        adapter(np.array([[3, 1]]))
    with pytest.raises(ValueError, match="integers"):
        adapter(np.array([[0.5, 1.0]]))
    with pytest.raises(ValueError, match="max_state_dim=6"):
        ObservationAdapter(space, max_state_dim=6)


def test_multi_discrete_spaces_round_trip_through_json(tmp_path):
    from lram_agents.data.format import space_from_json as from_file_json, space_to_json as to_file_json
    from lram_agents.spaces import space_from_json, space_to_json

    space = gym.spaces.MultiDiscrete([10, 10])
    assert space_from_json(space_to_json(space)) == space == from_file_json(to_file_json(space))
    Preprocessing(observation_space=space_to_json(space)).save(tmp_path)
    assert space_from_json(Preprocessing.load(tmp_path).observation_space) == space
    with pytest.raises(ConfigError, match="observation_space"):
        Preprocessing(observation_space={"type": "MultiDiscrete", "nvec": [10, 10]})
