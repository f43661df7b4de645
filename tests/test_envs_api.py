"""Every registered environment: Gymnasium's checker, vector envs, and errors on bad inputs."""

from __future__ import annotations

import functools
import importlib
import re
import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AsyncVectorEnv, SyncVectorEnv

import lram_agents
from lram_agents.envs import ENV_IDS, MUJOCO_ENV_IDS, register_environments, task_family

# Warnings that Gymnasium's own -v5 MuJoCo environments raise too (unbounded observation boxes,
# Pusher's [-2, 2] actions); anything else from the checker fails the test.
INHERITED_WARNINGS = (
    "observation space minimum value is -infinity",
    "observation space maximum value is infinity",
    "symmetric and normalized space",
)

# Short episodes so that the vector tests cross episode boundaries (autoreset).
SHORT_EPISODES = {
    "lram_agents/TMaze-v0": {"corridor_length": 2},
    "lram_agents/DarkRoom-v0": {"episode_length": 5},
    "lram_agents/DarkKeyDoor-v0": {"episode_length": 5},
}

BAD_TASKS = {
    "lram_agents/TMaze-v0": 0,
    "lram_agents/DarkRoom-v0": (10, 0),
    "lram_agents/DarkKeyDoor-v0": (2, 3, 2, 3),
    "lram_agents/ReacherGoal-v0": (0.3, 0.0),
    "lram_agents/PusherGoal-v0": (0.45, -0.2, 0.45, -0.1),
    "lram_agents/HalfCheetahVel-v0": 3.5,
    "lram_agents/AntDir-v0": 7.0,
}


@functools.cache
def mujoco_renders() -> bool:
    """Whether MuJoCo can render off-screen here (probed in a subprocess: a GL failure may abort)."""
    probe = (
        "import gymnasium as gym, lram_agents; "
        "env = gym.make('lram_agents/ReacherGoal-v0', render_mode='rgb_array', width=32, height=32); "
        "env.reset(seed=0); assert env.render().shape == (32, 32, 3)"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=300)
    return result.returncode == 0


def test_every_id_is_registered_on_import():
    assert lram_agents.envs is not None
    assert set(ENV_IDS) <= set(gym.registry)
    assert len(ENV_IDS) == 7


def test_reimport_and_reregistration_are_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        importlib.reload(lram_agents.envs)
        register_environments()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_check_env_passes(env_id):
    skip_render = env_id in MUJOCO_ENV_IDS and not mujoco_renders()
    env = gym.make(env_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped, skip_render_check=skip_render)
    unexpected = [str(w.message) for w in caught if not any(s in str(w.message) for s in INHERITED_WARNINGS)]
    assert unexpected == []
    env.close()
    if skip_render:
        pytest.skip("checked without rendering: MuJoCo cannot render off-screen here (no EGL)")


@pytest.mark.parametrize("vector_cls", [SyncVectorEnv, AsyncVectorEnv], ids=["sync", "async"])
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_vector_env_with_four_copies(env_id, vector_cls):
    kwargs = SHORT_EPISODES.get(env_id, {})
    envs = vector_cls([functools.partial(gym.make, env_id, **kwargs) for _ in range(4)])
    try:
        observations, _ = envs.reset(seed=0)
        assert observations.shape == (4, *envs.single_observation_space.shape)
        family = task_family(env_id)
        assert all(family.contains(task) for task in envs.get_attr("task"))
        envs.action_space.seed(0)
        ended = 0
        for _ in range(12):
            observations, rewards, terminated, truncated, _ = envs.step(envs.action_space.sample())
            assert all(envs.single_observation_space.contains(o) for o in observations)
            assert rewards.shape == (4,) and np.all(np.isfinite(rewards))
            ended += int(np.sum(terminated | truncated))
        if env_id in SHORT_EPISODES:
            assert ended >= 4, "the short episodes should have ended and been reset"
        task = family.train_tasks()[0]
        envs.reset(seed=1, options={"task": task})
        assert list(envs.get_attr("task")) == [task] * 4
    finally:
        envs.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_action_outside_the_space_raises_naming_it(env_id):
    env = gym.make(env_id).unwrapped  # the environment's own check, not the passive checker's
    env.reset(seed=0)
    space = env.action_space
    if isinstance(space, gym.spaces.Discrete):
        bad_actions = [space.n, -1, 1.5]
    else:
        too_big = space.high.astype(np.float64) + 0.5
        bad_actions = [too_big, np.zeros(space.shape[0] + 1), np.full(space.shape, np.nan)]
    for action in bad_actions:
        with pytest.raises(ValueError, match=re.escape(f"action {action!r}")):
            env.step(action)
    env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_task_outside_its_range_raises_naming_it(env_id):
    bad = BAD_TASKS[env_id]
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        gym.make(env_id, task=bad)
    env = gym.make(env_id)
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        env.reset(seed=0, options={"task": bad})
    env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_unknown_reset_option_raises_naming_it(env_id):
    env = gym.make(env_id)
    with pytest.raises(ValueError, match="'goal'"):
        env.reset(seed=0, options={"goal": 1})
    with pytest.raises(TypeError, match="'task'"):
        env.reset(seed=0, options="task")
    env.close()


@pytest.mark.parametrize(
    ("env_id", "kwargs", "name"),
    [
        ("lram_agents/TMaze-v0", {"corridor_length": 0}, "corridor_length"),
        ("lram_agents/TMaze-v0", {"flag_mode": "early"}, "'early'"),
        ("lram_agents/DarkRoom-v0", {"episode_length": 0}, "episode_length"),
        ("lram_agents/DarkKeyDoor-v0", {"door_reward": "twice"}, "'twice'"),
    ],
)
def test_bad_constructor_arguments_raise_naming_them(env_id, kwargs, name):
    with pytest.raises(ValueError, match=re.escape(name)):
        gym.make(env_id, **kwargs)


def test_task_vector_env_pins_one_task_per_row_across_resets():
    from lram_agents.envs import task_vector_env

    goals = [(1, 2), (3, 4), (0, 0)]
    env = task_vector_env("lram_agents/DarkRoom-v0", goals, episode_length=2)
    env.reset(seed=0)
    rewards = np.zeros(3)
    for _ in range(6):  # two episodes of 2 steps, each followed by a reset step (next-step autoreset)
        _, reward, *_ = env.step(np.full(3, 4))  # stay at (0, 0)
        rewards += reward
    assert env.call("get_wrapper_attr", "task") == tuple(goals)
    assert rewards.tolist() == [0.0, 0.0, 4.0]  # only the (0, 0) goal pays: 2 steps x 2 episodes
    with pytest.raises(ValueError, match="at least one task"):
        task_vector_env("lram_agents/DarkRoom-v0", [])
