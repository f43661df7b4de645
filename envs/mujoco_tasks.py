"""Continuous meta-RL tasks (AD with Mamba, section 5.1) on Gymnasium's ``-v5`` MuJoCo envs.

Each environment subclasses the ``-v5`` environment, removes the hidden task from the observation
and takes the task from :class:`~lram_agents.envs.tasks.TaskSlot` (``task=`` or
``reset(options={"task": ...})``; the task is kept across plain resets):

=================  ============  =======================================  ======  =========================
env                base          hidden task                              obs     reward
=================  ============  =======================================  ======  =========================
ReacherGoal-v0     Reacher-v5    target (x, y) in a disc of radius 0.2    6       Reacher-v5's
PusherGoal-v0      Pusher-v5     cylinder start + goal (x, y), world      20      Pusher-v5's
HalfCheetahVel-v0  HalfCheetah   target velocity v* in [0, 3]             17      -|v_x - v*| - 0.05 |a|^2
AntDir-v0          Ant-v5        direction theta in [0, 2 pi)             27      v . (cos, sin) + survive
                                                                                  - ctrl - contact costs
=================  ============  =======================================  ======  =========================

Observations: Reacher drops the target and fingertip-target entries (10 -> 6); Pusher drops the
goal position (23 -> 20; the cylinder stays visible); HalfCheetah is HalfCheetah-v5's; Ant is
Ant-v5's without contact forces (``include_cfrc_ext_in_observation=False``). Episode limits (50,
100, 200, 200 steps) come from the registration. Actions outside the action space raise.

Rendering: off-screen modes need an OpenGL back-end. On a Linux machine without ``DISPLAY`` and
without ``MUJOCO_GL`` set, creating one of these environments with ``render_mode="rgb_array"``
sets ``MUJOCO_GL=egl`` (Mesa's EGL renders on the CPU; glfw, MuJoCo's default, needs a display),
and ``"human"`` is left out of ``metadata["render_modes"]`` there since no window can open.
"""

from __future__ import annotations

import math
import os
import sys
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.envs.mujoco.ant_v5 import AntEnv
from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv
from gymnasium.envs.mujoco.pusher_v5 import PusherEnv
from gymnasium.envs.mujoco.reacher_v5 import ReacherEnv

from lram_agents.envs._validation import check_box_action, check_reset_options
from lram_agents.envs.tasks import (
    AntDirTasks,
    HalfCheetahVelTasks,
    PusherGoalTasks,
    ReacherGoalTasks,
    TaskFamily,
    TaskSlot,
)

_OFFSCREEN_MODES = ("rgb_array", "depth_array", "rgbd_tuple")


def is_headless() -> bool:
    """Whether this is a Linux machine without a display (no window for ``render_mode="human"``)."""
    return sys.platform.startswith("linux") and not os.environ.get("DISPLAY")


def use_headless_gl_if_needed(render_mode: str | None) -> None:
    """Choose EGL for off-screen rendering on a headless Linux machine, unless the user chose.

    MuJoCo reads ``MUJOCO_GL`` when the first frame is rendered, so this must run before that.
    """
    if render_mode in _OFFSCREEN_MODES and is_headless() and "MUJOCO_GL" not in os.environ:
        os.environ["MUJOCO_GL"] = "egl"


class _HiddenTask:
    """Reset / step plumbing of the MuJoCo task envs; listed before the ``-v5`` base class."""

    task_family: TaskFamily
    _task: TaskSlot

    def _init_task(self, family: TaskFamily, task: object | None) -> None:
        """Finish ``__init__`` (after the -v5 one): task slot, rendering set-up."""
        self.task_family = family
        self._task = TaskSlot(family, task)
        use_headless_gl_if_needed(self.render_mode)
        if is_headless() and self.render_mode == "human":  # glfw would abort the whole process
            raise ValueError("render_mode 'human' needs a display, but DISPLAY is not set")
        if is_headless():  # "human" opens a window: list it only where one can open
            modes = [m for m in self.metadata["render_modes"] if m != "human"]
            self.metadata = {**self.metadata, "render_modes": modes}

    @property
    def task(self) -> Any:
        """The current hidden task; ``None`` before the first reset unless pinned."""
        return self._task.current

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start an episode; ``options={"task": ...}`` sets the hidden task (see ``TaskSlot``)."""
        requested = check_reset_options(options)
        gym.Env.reset(self, seed=seed)  # seed np_random first: the task may be drawn from it
        self._task.on_reset(requested, self.np_random, seeded=seed is not None)
        return super().reset()  # the -v5 reset, which calls our reset_model

    def step(self, action: Any):
        """The -v5 step, after checking that ``action`` lies in the action space."""
        return super().step(check_box_action(self.action_space, action))


class ReacherGoalEnv(_HiddenTask, ReacherEnv):
    """Reacher-v5 with a hidden target; observation ``[cos q, sin q, dq]`` (6 numbers).

    Args:
        task: pin the target ``(x, y)`` (inside the disc of radius 0.2); ``None`` draws one.
        **kwargs: passed to Reacher-v5 (``render_mode``, ``width``, ``height``, reward weights...).
    """

    def __init__(self, task: tuple[float, float] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self._init_task(ReacherGoalTasks(), task)
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(6,), dtype=np.float64)

    def reset_model(self) -> np.ndarray:
        # Reacher-v5's reset, with the target taken from the task instead of drawn.
        qpos = self.init_qpos + self.np_random.uniform(-0.1, 0.1, size=self.model.nq)
        qpos[-2:] = self._task.current
        qvel = self.init_qvel + self.np_random.uniform(-0.005, 0.005, size=self.model.nv)
        qvel[-2:] = 0.0
        self.set_state(qpos, qvel)
        return self._get_obs()

    def _get_obs(self) -> np.ndarray:
        full = super()._get_obs()  # cos q (2), sin q (2), target (2), dq (2), fingertip - target (2)
        return np.concatenate([full[:4], full[6:8]])


class PusherGoalEnv(_HiddenTask, PusherEnv):
    """Pusher-v5 with a task-dependent cylinder start and a hidden goal; observation 20 numbers.

    Args:
        task: pin ``(cylinder_x, cylinder_y, goal_x, goal_y)`` in world coordinates; ``None`` draws one.
        **kwargs: passed to Pusher-v5.
    """

    def __init__(self, task: tuple[float, float, float, float] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self._init_task(PusherGoalTasks(), task)
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(20,), dtype=np.float64)

    def reset_model(self) -> np.ndarray:
        # Pusher-v5's reset, with the cylinder and goal placed from the task (world x, y).
        qpos = self.init_qpos.copy()
        cx, cy, gx, gy = self._task.current
        self._place(qpos, "object", "obj", cx, cy)
        self._place(qpos, "goal", "goal", gx, gy)
        qvel = self.init_qvel + self.np_random.uniform(-0.005, 0.005, size=self.model.nv)
        qvel[-4:] = 0.0
        self.set_state(qpos, qvel)
        return self._get_obs()

    def _place(self, qpos: np.ndarray, body: str, joint_prefix: str, x: float, y: float) -> None:
        """Set the slide joints of ``body`` so that it sits at world ``(x, y)``."""
        home_x, home_y = self.model.body(body).pos[:2]  # the body's position with its joints at 0
        qpos[self.model.joint(f"{joint_prefix}_slidex").qposadr] = x - home_x
        qpos[self.model.joint(f"{joint_prefix}_slidey").qposadr] = y - home_y

    def _get_obs(self) -> np.ndarray:
        return super()._get_obs()[:-3]  # drop the goal's position


class HalfCheetahVelEnv(_HiddenTask, HalfCheetahEnv):
    """HalfCheetah-v5 rewarded for running at a hidden target velocity: ``-|v_x - v*| - 0.05 |a|^2``.

    Args:
        task: pin the target velocity v* in [0, 3]; ``None`` draws one.
        ctrl_cost_weight: weight of ``|a|^2`` (0.05 in the paper; HalfCheetah-v5 uses 0.1).
        **kwargs: passed to HalfCheetah-v5.
    """

    def __init__(self, task: float | None = None, ctrl_cost_weight: float = 0.05, **kwargs: Any):
        super().__init__(ctrl_cost_weight=ctrl_cost_weight, **kwargs)
        self._init_task(HalfCheetahVelTasks(), task)

    def step(self, action: Any):
        observation, _, terminated, truncated, info = super().step(action)
        velocity_reward = -abs(info["x_velocity"] - self._task.current)
        info["reward_forward"] = velocity_reward  # replaces HalfCheetah-v5's forward velocity term
        return observation, velocity_reward + info["reward_ctrl"], terminated, truncated, info


class AntDirEnv(_HiddenTask, AntEnv):
    """Ant-v5 rewarded for moving along a hidden direction theta; no contact forces in the observation.

    Reward: ``v_xy . (cos theta, sin theta) + survive bonus - control cost - contact cost`` (Ant-v5's
    terms, with its forward velocity replaced by the velocity projected on theta).

    Args:
        task: pin the direction theta in [0, 2 pi) (radians, 0 = +x); ``None`` draws one.
        **kwargs: passed to Ant-v5 (``include_cfrc_ext_in_observation`` defaults to False here).
    """

    def __init__(self, task: float | None = None, **kwargs: Any):
        kwargs.setdefault("include_cfrc_ext_in_observation", False)
        super().__init__(**kwargs)
        self._init_task(AntDirTasks(), task)

    def step(self, action: Any):
        observation, _, terminated, truncated, info = super().step(action)
        theta = self._task.current
        projected = info["x_velocity"] * math.cos(theta) + info["y_velocity"] * math.sin(theta)
        forward = self._forward_reward_weight * projected
        info["reward_forward"] = forward  # replaces Ant-v5's x-velocity term
        reward = forward + info["reward_survive"] + info["reward_ctrl"] + info["reward_contact"]
        return observation, reward, terminated, truncated, info
