"""Small trajectory datasets and models for the data / training tests."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from lram_agents.backbones import XLSTMConfig
from lram_agents.config import LRAMConfig
from lram_agents.data.format import Episode, write_episodes

VECTOR_SPACE = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
DISCRETE = gym.spaces.Discrete(4)
CONTINUOUS = gym.spaces.Box(-2.0, 2.0, (2,), np.float32)
TINY_XLSTM = XLSTMConfig(d_model=32, num_blocks=2, num_heads=4, slstm_at=[], chunk_size=8, context_tokens=96)


def tiny_config(**overrides) -> LRAMConfig:
    return LRAMConfig(backbone=TINY_XLSTM, max_state_dim=8, **overrides)


def make_episode(length: int, rng: np.random.Generator, obs_space: gym.Space = VECTOR_SPACE, action_space: gym.Space = DISCRETE,
                 task: str = "", history_id: int = -1, episode_index: int = -1) -> Episode:
    if obs_space.dtype == np.uint8:
        observations = rng.integers(0, 256, (length + 1, *obs_space.shape), dtype=np.uint8)
    else:
        observations = rng.normal(size=(length + 1, *obs_space.shape)).astype(np.float32)
    if isinstance(action_space, gym.spaces.Discrete):
        actions = rng.integers(0, action_space.n, length)
    else:
        actions = rng.uniform(action_space.low, action_space.high, (length, *action_space.shape)).astype(np.float32)
    terminations = np.zeros(length, dtype=bool)
    terminations[-1] = True
    return Episode(observations, actions, rng.integers(-2, 3, length).astype(np.float32), terminations, np.zeros(length, dtype=bool),
                   task, history_id, episode_index)


def write_dataset(directory, lengths, obs_space=VECTOR_SPACE, action_space=DISCRETE, per_file=1, seed=0, history_id=-1, domain=""):
    """Episodes of the given lengths written ``per_file`` to a file; returns the episodes in order."""
    rng = np.random.default_rng(seed)
    episodes = [make_episode(n, rng, obs_space, action_space, task=f"task{i % 2}", history_id=history_id,
                             episode_index=i if history_id >= 0 else -1) for i, n in enumerate(lengths)]
    for f, start in enumerate(range(0, len(episodes), per_file)):
        write_episodes(directory / f"part-{f:04d}.h5", episodes[start:start + per_file], obs_space, action_space, domain=domain)
    return episodes
