"""Small things the fine-tuning tests share: a tiny model, a noisy T-Maze oracle, recorded data."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np

import lram_agents  # noqa: F401  (registers the environments)
from lram_agents.backbones import XLSTMConfig
from lram_agents.config import LRAMConfig
from lram_agents.data import record
from lram_agents.envs.tmaze import TMazeOracle

CORRIDOR = 2  # episodes of at most 4 steps


def tiny_config(**overrides) -> LRAMConfig:
    backbone = XLSTMConfig(d_model=16, num_blocks=1, num_heads=2, slstm_at=[], chunk_size=8, context_tokens=48)
    return LRAMConfig(backbone=backbone, max_state_dim=6, include_actions=True, **overrides)


def tmaze(**kwargs) -> gym.Env:
    return gym.make("lram_agents/TMaze-v0", corridor_length=CORRIDOR, **kwargs)


class NoisyOracle:
    """T-Maze's oracle taking a uniformly random action with probability ``epsilon``."""

    def __init__(self, epsilon: float, seed: int = 0):
        self.oracle, self.epsilon, self.rng = TMazeOracle(CORRIDOR), epsilon, np.random.default_rng(seed)

    def reset(self) -> None:
        self.oracle.reset()

    def act(self, observation, reward) -> int:
        action = self.oracle.act(observation)
        return int(self.rng.integers(4)) if self.rng.random() < self.epsilon else action


def record_tmaze(directory: Path, episodes: int, epsilon: float, seed: int = 0, **env_kwargs) -> Path:
    record(tmaze(**env_kwargs), NoisyOracle(epsilon, seed), directory, episodes=episodes, seed=seed, progress=False)
    return directory
