"""MuJoCo meta-RL tasks: the task is hidden from the observation, placed in the scene and rewarded."""

from __future__ import annotations

import math
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

from lram_agents.envs import MUJOCO_ENV_IDS

# Two tasks per environment that differ only in what is hidden (Pusher: same cylinder, other goal).
TASK_PAIRS = {
    "lram_agents/ReacherGoal-v0": ((0.15, 0.05), (-0.1, -0.12)),
    "lram_agents/PusherGoal-v0": ((0.45, -0.3, 0.45, 0.1), (0.45, -0.3, 0.3, -0.05)),
    "lram_agents/HalfCheetahVel-v0": (0.5, 2.5),
    "lram_agents/AntDir-v0": (0.0, math.pi),
}
OBSERVATION_SIZES = {
    "lram_agents/ReacherGoal-v0": 6,
    "lram_agents/PusherGoal-v0": 20,
    "lram_agents/HalfCheetahVel-v0": 17,
    "lram_agents/AntDir-v0": 27,
}


def rollout(env_id, task, actions, seed=7):
    env = gym.make(env_id)
    observation, _ = env.reset(seed=seed, options={"task": task})
    observations, rewards, infos = [observation], [], []
    for action in actions:
        observation, reward, terminated, truncated, info = env.step(action)
        observations.append(observation)
        rewards.append(reward)
        infos.append(info)
        if terminated or truncated:
            break
    return env, np.array(observations), np.array(rewards), infos


def random_actions(env_id, count, seed=0):
    space = gym.make(env_id).action_space
    rng = np.random.default_rng(seed)
    return rng.uniform(space.low, space.high, size=(count, *space.shape)).astype(np.float32)


@pytest.mark.parametrize("env_id", MUJOCO_ENV_IDS)
def test_observation_does_not_contain_the_task(env_id):
    actions = random_actions(env_id, 30)
    _, obs_a, rewards_a, _ = rollout(env_id, TASK_PAIRS[env_id][0], actions)
    _, obs_b, rewards_b, _ = rollout(env_id, TASK_PAIRS[env_id][1], actions)
    assert obs_a.shape == (31, OBSERVATION_SIZES[env_id])
    assert np.array_equal(obs_a, obs_b)  # bit for bit: nothing in it depends on the hidden task
    assert not np.allclose(rewards_a, rewards_b)


def test_reacher_target_and_pusher_goal_are_placed_from_the_task():
    env, *_ = rollout("lram_agents/ReacherGoal-v0", (0.15, 0.05), [])
    assert np.allclose(env.unwrapped.get_body_com("target")[:2], (0.15, 0.05))
    env, observations, *_ = rollout("lram_agents/PusherGoal-v0", (0.3, -0.2, 0.6, 0.1), [])
    assert np.allclose(env.unwrapped.get_body_com("object")[:2], (0.3, -0.2))
    assert np.allclose(env.unwrapped.get_body_com("goal")[:2], (0.6, 0.1))
    assert np.allclose(observations[0, 17:19], (0.3, -0.2))  # the cylinder is observed


def test_halfcheetah_vel_reward():
    actions = random_actions("lram_agents/HalfCheetahVel-v0", 20)
    _, _, rewards, infos = rollout("lram_agents/HalfCheetahVel-v0", 1.2, actions)
    for action, reward, info in zip(actions, rewards, infos):
        expected = -abs(info["x_velocity"] - 1.2) - 0.05 * np.sum(np.square(action, dtype=np.float64))
        assert reward == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_ant_dir_reward_projects_the_velocity_on_the_direction():
    actions = random_actions("lram_agents/AntDir-v0", 20)
    theta = 2.0
    _, _, rewards, infos = rollout("lram_agents/AntDir-v0", theta, actions)
    for action, reward, info in zip(actions, rewards, infos):
        projected = info["x_velocity"] * math.cos(theta) + info["y_velocity"] * math.sin(theta)
        ctrl = 0.5 * np.sum(np.square(action, dtype=np.float64))
        expected = projected + 1.0 - ctrl + info["reward_contact"]  # survive bonus 1 while healthy
        assert reward == pytest.approx(expected, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize(
    ("env_id", "limit"),
    [
        ("lram_agents/ReacherGoal-v0", 50),
        ("lram_agents/PusherGoal-v0", 100),
        ("lram_agents/HalfCheetahVel-v0", 200),
        ("lram_agents/AntDir-v0", 200),
    ],
)
def test_episode_limits(env_id, limit):
    assert gym.spec(env_id).max_episode_steps == limit


@pytest.mark.parametrize("env_id", MUJOCO_ENV_IDS)
def test_rgb_array_rendering(env_id):
    probe = (
        "import gymnasium as gym, lram_agents, numpy as np; "
        f"env = gym.make('{env_id}', render_mode='rgb_array', width=64, height=48); "
        "env.reset(seed=0); frame = env.render(); "
        "assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8 and frame.std() > 5, frame.std()"
    )
    # In a subprocess: MUJOCO_GL is chosen once per process, and a broken GL stack may abort it.
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    if result.returncode != 0 and ("EGL" in result.stderr or "OpenGL" in result.stderr):
        pytest.skip(f"MuJoCo cannot render off-screen here: {result.stderr.strip().splitlines()[-1]}")
    assert result.returncode == 0, result.stderr


def test_human_rendering_without_a_display_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    if not sys.platform.startswith("linux"):
        pytest.skip("the headless check is Linux-only")
    with pytest.raises(ValueError, match="'human'"):
        gym.make("lram_agents/ReacherGoal-v0", render_mode="human")
