"""Procgen (through envpool) as LRAM trains on it: grey 64 x 64 frames, 15 actions.

``gym.make("lram_agents/Procgen-<game>-v0")`` is one envpool Procgen game seen as a Gymnasium env:
frames (1, 64, 64) uint8 (grey-scaled from envpool's RGB (3, 64, 64) with the ITU-R 601 weights the
model uses), ``Discrete(15)``. ``distribution_mode`` is "easy" (the setting of the data LRAM used,
Schmied et al. 2024b) or "hard"; ``num_levels=0`` plays the unbounded level set from ``start_level``.
envpool is the only Procgen that installs beside numpy 2; it needs the Debian package ``libqt5gui5``.
Scores are data-normalised.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from lram_agents.envs.domains import Domain

# LRAM appendix A.7 (after Raparthy et al. 2023 and Schmied et al. 2024b).
TRAIN_TASKS = ("bigfish", "bossfight", "caveflyer", "chaser", "coinrun", "dodgeball", "fruitbot", "heist", "leaper", "maze",
               "miner", "starpilot")
HOLDOUT_TASKS = ("climber", "ninja", "plunder", "jumper")

FRAME_SHAPE = (1, 64, 64)
NUM_ACTIONS = 15

DOMAIN = Domain(
    name="procgen", id_prefix="Procgen", train_tasks=TRAIN_TASKS, holdout_tasks=HOLDOUT_TASKS, extra="procgen",
    packages=("envpool",), entry_point="lram_agents.envs.domains.procgen:make_env", max_episode_steps=None,
    note="envpool's Procgen (easy distribution by default); data here comes from short PPO runs",
    system_libraries=(("Qt5Gui", "libqt5gui5"),),
)


def envpool_id(task: str, distribution_mode: str = "easy") -> str:
    """``("bigfish", "easy")`` -> ``"BigfishEasy-v0"``."""
    DOMAIN.split_of(task)
    if distribution_mode not in ("easy", "hard"):
        raise ValueError(f"distribution_mode must be 'easy' or 'hard', got {distribution_mode!r}")
    return f"{task.capitalize()}{distribution_mode.capitalize()}-v0"


def grey(frames: np.ndarray) -> np.ndarray:
    """(N, 3, H, W) uint8 RGB -> (N, 1, H, W) uint8 grey, exactly as the model's own image preprocessing."""
    import torch

    from lram_agents.preprocessing import to_model_image

    return to_model_image(torch.from_numpy(frames), FRAME_SHAPE).numpy()


class ProcgenEnv(gym.Env):
    """One envpool Procgen game (``num_envs=1``) as a Gymnasium env with grey frames.

    envpool seeds an env when it is built, so ``reset(seed=s)`` rebuilds it with seed ``s``;
    ``reset()`` without a seed starts the next level of the running stream.
    """

    metadata = {"render_modes": []}

    def __init__(self, task: str, distribution_mode: str = "easy", num_levels: int = 0, start_level: int = 0):
        DOMAIN.require()
        self.task, self.envpool_id = task, envpool_id(task, distribution_mode)
        if num_levels < 0 or start_level < 0:
            raise ValueError(f"num_levels and start_level must be >= 0, got {num_levels} and {start_level}")
        self._options = {"num_levels": int(num_levels), "start_level": int(start_level)}
        self.observation_space = gym.spaces.Box(0, 255, FRAME_SHAPE, np.uint8)
        self.action_space = gym.spaces.Discrete(NUM_ACTIONS)
        self._pool = None

    def _build(self, seed: int) -> None:
        import envpool

        if self._pool is not None:
            self._pool.close()
        self._pool = envpool.make_gymnasium(self.envpool_id, num_envs=1, seed=int(seed), **self._options)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None or self._pool is None:
            self._build(seed if seed is not None else int(self.np_random.integers(2**31 - 1)))
        obs, info = self._pool.reset()
        return grey(obs)[0], _first(info)

    def step(self, action):
        if self._pool is None:
            raise RuntimeError("ProcgenEnv: call reset() before step()")
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        obs, reward, terminated, truncated, info = self._pool.step(np.array([int(action)], dtype=np.int32))
        return grey(obs)[0], float(reward[0]), bool(terminated[0]), bool(truncated[0]), _first(info)

    def close(self):
        if self._pool is not None:
            self._pool.close()
            self._pool = None


def _first(info: dict) -> dict:
    """envpool's batched info of one env -> plain values."""
    return {k: (v[0].item() if isinstance(v, np.ndarray) and v.shape == (1,) else v) for k, v in info.items() if k != "players"}


def make_env(task: str, **options) -> gym.Env:
    """One Procgen game (see :class:`ProcgenEnv` for ``options``)."""
    return ProcgenEnv(task, **options)
