"""The task API: fixed splits, sampling, validation, and how reset chooses the task."""

from __future__ import annotations

import json
import math
import re

import gymnasium as gym
import numpy as np
import pytest

from lram_agents.envs import ENV_IDS, task_family
from lram_agents.envs.tasks import (
    SPLIT_SEED,
    AntDirTasks,
    GridGoalTasks,
    HalfCheetahVelTasks,
    KeyDoorTasks,
    PusherGoalTasks,
    ReacherGoalTasks,
    TMazeTasks,
)

SPLIT_SIZES = {
    "lram_agents/TMaze-v0": (2, 0),
    "lram_agents/DarkRoom-v0": (80, 20),
    "lram_agents/DarkKeyDoor-v0": (7920, 1980),
    "lram_agents/ReacherGoal-v0": (70, 20),
    "lram_agents/PusherGoal-v0": (35, 10),
    "lram_agents/HalfCheetahVel-v0": (15, 10),
    "lram_agents/AntDir-v0": (30, 30),
}


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_split_sizes_disjoint_valid_and_fixed(env_id):
    family, again = task_family(env_id), task_family(env_id)
    train, holdout = family.train_tasks(), family.holdout_tasks()
    assert (len(train), len(holdout)) == SPLIT_SIZES[env_id]
    assert not set(train) & set(holdout)
    assert all(family.contains(t) for t in train + holdout)
    assert (train, holdout) == (again.train_tasks(), again.holdout_tasks())  # same on every call
    json.dumps(list(train + holdout))  # tasks are plain numbers / tuples


def test_darkroom_split_covers_the_100_goals_and_depends_on_the_seed():
    family = GridGoalTasks()
    cells = {(x, y) for x in range(10) for y in range(10)}
    assert set(family.train_tasks()) | set(family.holdout_tasks()) == cells
    other = GridGoalTasks(split_seed=SPLIT_SEED + 1)
    assert other.holdout_tasks() != family.holdout_tasks()


def test_key_door_tasks_never_put_the_key_on_the_door():
    family = KeyDoorTasks()
    tasks = family.train_tasks() + family.holdout_tasks()
    assert len(set(tasks)) == 100 * 99
    assert all(t[:2] != t[2:] for t in tasks)
    rng = np.random.default_rng(0)
    draws = [family.sample(rng) for _ in range(2000)]
    assert all(family.contains(t) and t[:2] != t[2:] for t in draws)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_sample_draws_from_the_requested_split(env_id):
    family = task_family(env_id)
    rng = np.random.default_rng(0)
    assert all(family.contains(family.sample(rng)) for _ in range(200))
    assert all(family.sample(rng, "train") in family.train_tasks() for _ in range(20))
    if family.holdout_tasks():
        assert all(family.sample(rng, "holdout") in family.holdout_tasks() for _ in range(20))
    else:
        with pytest.raises(ValueError, match="'holdout'"):
            family.sample(rng, "holdout")
    with pytest.raises(ValueError, match="'test'"):
        family.sample(rng, "test")


def test_continuous_task_laws():
    rng = np.random.default_rng(1)
    reacher, cheetah = ReacherGoalTasks(), HalfCheetahVelTasks()
    ant, pusher = AntDirTasks(), PusherGoalTasks()
    targets = np.array([reacher.sample(rng) for _ in range(2000)])
    assert np.all(np.hypot(*targets.T) < 0.2)
    assert np.all(targets.min(axis=0) < -0.17) and np.all(targets.max(axis=0) > 0.17)
    velocities = np.array([cheetah.sample(rng) for _ in range(2000)])
    assert 0 <= velocities.min() < 0.05 and 2.95 < velocities.max() <= 3
    directions = np.array([ant.sample(rng) for _ in range(2000)])
    assert 0 <= directions.min() < 0.05 and 2 * math.pi - 0.05 < directions.max() < 2 * math.pi
    pushers = np.array([pusher.sample(rng) for _ in range(500)])
    assert np.all(np.hypot(pushers[:, 0] - pushers[:, 2], pushers[:, 1] - pushers[:, 3]) > 0.17)


def test_validate_returns_canonical_hashable_tasks():
    assert GridGoalTasks().validate(np.array([3, 4])) == (3, 4)
    assert type(GridGoalTasks().validate(np.array([3, 4]))[0]) is int
    assert TMazeTasks().validate(np.int64(-1)) == -1
    assert HalfCheetahVelTasks().validate(np.float32(1.5)) == 1.5
    assert ReacherGoalTasks().validate([0.1, 0.0]) == (0.1, 0.0)
    assert AntDirTasks().validate(0) == 0.0


@pytest.mark.parametrize(
    ("family", "bad"),
    [
        (TMazeTasks(), 2),
        (GridGoalTasks(), (1.5, 2)),
        (GridGoalTasks(), (1, 2, 3)),
        (KeyDoorTasks(), (0, 0, 0, -1)),
        (ReacherGoalTasks(), (0.15, 0.15)),
        (ReacherGoalTasks(), "far"),
        (PusherGoalTasks(), (0.9, -0.2, 0.45, 0.0)),
        (HalfCheetahVelTasks(), -0.1),
        (HalfCheetahVelTasks(), float("nan")),
        (AntDirTasks(), 2 * math.pi),
    ],
)
def test_invalid_tasks_raise_naming_the_value(family, bad):
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        family.validate(bad)
    assert not family.contains(bad)


# ---------------------------------------------------------------- the reset rules of TaskSlot


def test_meta_rl_task_is_kept_across_plain_resets_and_redrawn_by_a_seed():
    env = gym.make("lram_agents/DarkRoom-v0")
    assert env.unwrapped.task is None
    env.reset(seed=0)
    first = env.unwrapped.task
    for _ in range(5):
        env.reset()
        assert env.unwrapped.task == first
    seeded = []
    for seed in range(10):
        env.reset(seed=seed)
        seeded.append(env.unwrapped.task)
    assert seeded[0] == first  # reset(seed=s) is reproducible, task included
    assert len(set(seeded)) > 1


def test_options_task_overrides_and_persists():
    env = gym.make("lram_agents/HalfCheetahVel-v0")
    env.reset(seed=0, options={"task": 2.5})
    assert env.unwrapped.task == 2.5
    env.reset()
    assert env.unwrapped.task == 2.5
    env.reset(seed=3)
    assert env.unwrapped.task != 2.5


def test_pinned_task_is_never_redrawn():
    env = gym.make("lram_agents/DarkKeyDoor-v0", task=(1, 2, 3, 4))
    assert env.unwrapped.task == (1, 2, 3, 4)
    for seed in range(5):
        env.reset(seed=seed)
        assert env.unwrapped.task == (1, 2, 3, 4)
    env.reset(options={"task": (4, 3, 2, 1)})
    assert env.unwrapped.task == (4, 3, 2, 1)


def test_tmaze_goal_side_is_drawn_every_episode():
    env = gym.make("lram_agents/TMaze-v0")
    env.reset(seed=0)
    sides = set()
    for _ in range(30):
        observation, _ = env.reset()
        sides.add(env.unwrapped.task)
        assert observation[1] == env.unwrapped.task
    assert sides == {-1, 1}
