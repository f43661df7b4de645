"""ViZDoom-Two-Colors (RATE, section 4.1) on a scenario this project writes itself.

- :class:`ViZDoomTwoColorsEnv`, registered as ``lram_agents/ViZDoomTwoColors-v0`` by :func:`register`;
- :func:`build_scenario`: the WAD, built from readable sources into a cache on first use;
- :class:`ScriptedMemoryPolicy` and :class:`RandomPolicy`: reference policies for data and baselines.

Importing this package does not import ``vizdoom`` (an optional extra: ``lram_agents[vizdoom]``);
creating the environment does.
"""

from __future__ import annotations

import gymnasium as gym

from .env import ACTION_NAMES, ITEM_COLOR, Scene, ViZDoomTwoColorsEnv
from .policies import RandomPolicy, ScriptedMemoryPolicy, detect_pillar_color, other_color
from .scenario import COLORS, ScenarioConfig, build_scenario, cache_dir

__all__ = [
    "ENV_ID",
    "MAX_EPISODE_STEPS",
    "ACTION_NAMES",
    "COLORS",
    "ITEM_COLOR",
    "RandomPolicy",
    "ScenarioConfig",
    "Scene",
    "ScriptedMemoryPolicy",
    "ViZDoomTwoColorsEnv",
    "build_scenario",
    "cache_dir",
    "detect_pillar_color",
    "other_color",
    "register",
]

ENV_ID = "lram_agents/ViZDoomTwoColors-v0"
MAX_EPISODE_STEPS = 4200  # the RATE evaluation timeout, in agent steps (8400 tics at frame skip 2)


def register() -> None:
    """Register ``lram_agents/ViZDoomTwoColors-v0`` with Gymnasium (idempotent)."""
    if ENV_ID not in gym.registry:
        gym.register(
            id=ENV_ID,
            entry_point=f"{__name__}.env:ViZDoomTwoColorsEnv",
            max_episode_steps=MAX_EPISODE_STEPS,
        )
