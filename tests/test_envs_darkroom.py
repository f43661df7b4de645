"""Dark-Room and Dark Key-Door: dynamics, rewards, and optimal shortest-path experts."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from lram_agents.envs import task_family
from lram_agents.envs.darkroom import (
    DOWN,
    LEFT,
    RIGHT,
    STAY,
    UP,
    DarkKeyDoorExpert,
    DarkRoomEnv,
    DarkRoomExpert,
)

EPISODE = 100


def episode_return(env, policy, seed=0, options=None):
    observation, _ = env.reset(seed=seed, options=options)
    total = 0.0
    while True:
        observation, reward, terminated, truncated, _ = env.step(policy(observation))
        total += reward
        assert not terminated
        if truncated:
            return total


def arrival(start, target):
    """First step that can end on ``target`` (staying counts as a step)."""
    return max(abs(start[0] - target[0]) + abs(start[1] - target[1]), 1)


def test_expert_earns_the_optimal_return_on_all_100_goals():
    env = gym.make("lram_agents/DarkRoom-v0")
    family = task_family("lram_agents/DarkRoom-v0")
    goals = family.train_tasks() + family.holdout_tasks()
    assert len(goals) == 100
    for goal in goals:
        optimal = EPISODE - arrival((0, 0), goal) + 1  # on the goal from its arrival to step 100
        assert episode_return(env, DarkRoomExpert(goal).act, options={"task": goal}) == optimal


def test_random_agent_is_far_below_the_expert():
    env = gym.make("lram_agents/DarkRoom-v0")
    rng = np.random.default_rng(0)
    goals = task_family("lram_agents/DarkRoom-v0").train_tasks()
    random_returns = [episode_return(env, lambda _: int(rng.integers(5)), options={"task": g}) for g in goals]
    expert_returns = [episode_return(env, DarkRoomExpert(g).act, options={"task": g}) for g in goals]
    assert np.mean(random_returns) < 0.25 * np.mean(expert_returns)


def test_moves_walls_and_per_step_goal_reward():
    env = DarkRoomEnv(task=(1, 0))
    observation, _ = env.reset(seed=0)
    assert observation.tolist() == [0, 0] and observation.dtype == np.int64
    for action, expected, reward in [
        (UP, [0, 0], 0.0),  # wall
        (LEFT, [0, 0], 0.0),  # wall
        (RIGHT, [1, 0], 1.0),  # onto the goal
        (STAY, [1, 0], 1.0),  # every step on it pays
        (DOWN, [1, 1], 0.0),
    ]:
        observation, r, terminated, truncated, _ = env.step(action)
        assert observation.tolist() == expected and r == reward and not terminated and not truncated


def test_key_door_rewards():
    env = gym.make("lram_agents/DarkKeyDoor-v0", task=(0, 1, 1, 1))
    env.reset(seed=0)
    rewards = [env.step(a)[1] for a in (RIGHT, LEFT, DOWN, UP, DOWN, RIGHT, STAY)]
    # door before the key: 0; key: +1 once; back on the key: 0; door after the key: +1 per step
    assert rewards == [0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0]
    once = gym.make("lram_agents/DarkKeyDoor-v0", task=(0, 1, 1, 1), door_reward="once")
    once.reset(seed=0)
    assert [once.step(a)[1] for a in (DOWN, RIGHT, STAY, LEFT, RIGHT)] == [1.0, 1.0, 0.0, 0.0, 0.0]
    env.reset()  # a new episode needs the key again
    assert [env.step(a)[1] for a in (DOWN, RIGHT)] == [1.0, 1.0]
    assert [env.step(a)[1] for a in (LEFT, RIGHT)] == [0.0, 1.0]


@pytest.mark.parametrize("door_reward", ["per_step", "once"])
def test_key_door_expert_is_optimal(door_reward):
    env = gym.make("lram_agents/DarkKeyDoor-v0", door_reward=door_reward)
    family = task_family("lram_agents/DarkKeyDoor-v0")
    rng = np.random.default_rng(0)
    tasks = [family.sample(rng, split) for split in ("train", "holdout") for _ in range(100)]
    tasks += [(0, 0, 9, 9), (9, 9, 0, 0), (1, 0, 0, 0)]  # key on the start; door on the start
    for task in tasks:
        key, door = task[:2], task[2:]
        at_door = arrival((0, 0), key) + abs(key[0] - door[0]) + abs(key[1] - door[1])
        optimal = 1 + (EPISODE - at_door + 1 if door_reward == "per_step" else 1)
        expert = DarkKeyDoorExpert(task)
        assert episode_return(env, expert.act, options={"task": task}) == optimal, task


@pytest.mark.parametrize("env_id", ["lram_agents/DarkRoom-v0", "lram_agents/DarkKeyDoor-v0"])
def test_render_shows_the_grid_task_and_agent(env_id):
    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (320, 320, 3) and frame.dtype == np.uint8
    colours = {tuple(c) for c in frame.reshape(-1, 3)}
    assert (40, 110, 230) in colours  # agent
    assert ((40, 170, 70) in colours) if "Room" in env_id else ((235, 190, 30) in colours)
