"""Gymnasium environments of the LRAM, Algorithm-Distillation and RATE papers.

Importing this package registers every environment under the ``lram_agents/`` namespace
(Gymnasium >= 1.0 has no plugin autoload, so ``import lram_agents`` does it)::

    import gymnasium as gym, lram_agents
    env = gym.make("lram_agents/TMaze-v0", corridor_length=90)
    env = gym.make("lram_agents/DarkRoom-v0", task=(3, 7))
    env.reset(seed=0, options={"task": (5, 5)})       # or change the hidden task at reset
    env.unwrapped.task, env.unwrapped.task_family.holdout_tasks()

The environment classes are imported lazily (on ``gym.make``), so importing the package does not
import MuJoCo. :func:`task_family` gives an id's task family with default parameters; :func:`task_vector_env` a
vector env with one copy per task (in-context evaluation on hold-out tasks).

LRAM's training domains are registered too, one id per task (``lram_agents/MetaWorld-reach-v0``,
``lram_agents/Atari-breakout-v0``, ...): see :mod:`lram_agents.envs.domains`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import gymnasium as gym

from lram_agents.envs.tasks import (
    SPLIT_SEED,
    AntDirTasks,
    GridGoalTasks,
    HalfCheetahVelTasks,
    KeyDoorTasks,
    PusherGoalTasks,
    ReacherGoalTasks,
    TaskFamily,
    TaskSlot,
    TMazeTasks,
)

# id -> (entry point, max_episode_steps, task family class). The grid worlds end their episodes
# themselves (T-Maze's limit depends on its corridor length), the MuJoCo tasks through TimeLimit
# like Gymnasium's -v5 environments.
_ENVIRONMENTS: dict[str, tuple[str, int | None, type[TaskFamily]]] = {
    "lram_agents/TMaze-v0": ("lram_agents.envs.tmaze:TMazeEnv", None, TMazeTasks),
    "lram_agents/DarkRoom-v0": ("lram_agents.envs.darkroom:DarkRoomEnv", None, GridGoalTasks),
    "lram_agents/DarkKeyDoor-v0": ("lram_agents.envs.darkroom:DarkKeyDoorEnv", None, KeyDoorTasks),
    "lram_agents/ReacherGoal-v0": ("lram_agents.envs.mujoco_tasks:ReacherGoalEnv", 50, ReacherGoalTasks),
    "lram_agents/PusherGoal-v0": ("lram_agents.envs.mujoco_tasks:PusherGoalEnv", 100, PusherGoalTasks),
    "lram_agents/HalfCheetahVel-v0": (
        "lram_agents.envs.mujoco_tasks:HalfCheetahVelEnv",
        200,
        HalfCheetahVelTasks,
    ),
    "lram_agents/AntDir-v0": ("lram_agents.envs.mujoco_tasks:AntDirEnv", 200, AntDirTasks),
}

#: Every registered id, grid worlds first.
ENV_IDS: tuple[str, ...] = tuple(_ENVIRONMENTS)
#: The ids built on MuJoCo.
MUJOCO_ENV_IDS: tuple[str, ...] = tuple(i for i in ENV_IDS if _ENVIRONMENTS[i][1] is not None)


def register_environments() -> None:
    """Register every id with Gymnasium; ids already registered are left alone (re-import is silent)."""
    for env_id, (entry_point, max_episode_steps, _) in _ENVIRONMENTS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, max_episode_steps=max_episode_steps)


def task_family(env_id: str) -> TaskFamily:
    """The task family of ``env_id`` with its default parameters (e.g. the 10 x 10 Dark-Room).

    For an environment built with other parameters, read ``env.unwrapped.task_family`` instead.
    """
    if env_id not in _ENVIRONMENTS:
        raise ValueError(f"unknown environment id {env_id!r}; known: {list(_ENVIRONMENTS)}")
    return _ENVIRONMENTS[env_id][2]()


def task_vector_env(env_id: str, tasks: Sequence[object], **env_kwargs: Any) -> gym.vector.SyncVectorEnv:
    """One copy of ``env_id`` per task, each pinned to its task: the in-context evaluation of meta-RL.

    Row ``i`` plays task ``tasks[i]`` in every episode (Gymnasium's default next-step autoreset), so
    ``lram_agents.evaluate(agent, env, n_episodes=len(tasks) * trials, keep_memory=True)`` plays
    ``trials`` consecutive episodes per task and ``result.trial_returns()`` is the (task, trial) table.
    """
    if len(tasks) == 0:
        raise ValueError("task_vector_env needs at least one task")
    return gym.vector.SyncVectorEnv([functools.partial(gym.make, env_id, task=task, **env_kwargs) for task in tasks])


register_environments()

# ViZDoom-Two-Colors lives in its own subpackage (its simulator is an optional extra, imported lazily).
from lram_agents.envs.vizdoom_two_colors import register as _register_vizdoom_two_colors  # noqa: E402

_register_vizdoom_two_colors()

# LRAM's training domains (Atari, Procgen, DMControl, Meta-World, robosuite): lram_agents/<Domain>-<task>-v0.
from lram_agents.envs import domains  # noqa: E402

domains.register_domains()

__all__ = [
    "ENV_IDS",
    "MUJOCO_ENV_IDS",
    "SPLIT_SEED",
    "AntDirTasks",
    "GridGoalTasks",
    "HalfCheetahVelTasks",
    "KeyDoorTasks",
    "PusherGoalTasks",
    "ReacherGoalTasks",
    "TMazeTasks",
    "TaskFamily",
    "TaskSlot",
    "domains",
    "register_environments",
    "task_family",
    "task_vector_env",
]
