import json

import gymnasium as gym
import numpy as np
import pytest

from lram_agents.config_utils import ConfigError
from lram_agents.preprocessing import Preprocessing
from lram_agents.spaces import space_from_json, space_to_json

SPACES = [
    gym.spaces.Box(-np.inf, np.inf, (4,), np.float32),
    gym.spaces.Box(np.array([-1.0, 0.0], np.float32), np.array([1.0, np.inf], np.float32)),
    gym.spaces.Box(0, 255, (64, 64, 3), np.uint8),
    gym.spaces.Discrete(5, start=-2),
]


@pytest.mark.parametrize("space", SPACES, ids=str)
def test_spaces_survive_strict_json(space):
    text = json.dumps(space_to_json(space), allow_nan=False)  # plain JSON: no Infinity literals
    assert space_from_json(json.loads(text)) == space
    assert len(text) < 300  # uniform bounds are stored once, not per pixel


def test_bad_saved_spaces_are_named():
    with pytest.raises(ConfigError, match="'action_space'"):
        Preprocessing(action_space={"type": "Tuple"})
    with pytest.raises(ConfigError, match="'observation_space'.*not a valid Box"):
        Preprocessing(observation_space={"type": "Box", "shape": [2], "dtype": "float32", "low": [0, 0, 0], "high": 1})
    with pytest.raises(TypeError, match="only Box, Discrete and 1-D MultiDiscrete"):
        space_to_json(gym.spaces.MultiBinary(3))
