"""Reference numbers for every environment: oracle / expert / random / zero-action returns.

* T-Maze: success rate of the oracle and of a uniformly random policy, 100 seeded episodes per
  corridor length.
* Dark-Room: the expert's return against the optimum on all 100 goals, and a random agent's mean
  return (one episode per goal). Dark Key-Door: the same on 200 tasks (100 train, 100 hold-out).
* MuJoCo tasks: mean (std) episode return of the zero action and of uniformly random actions on
  the first 10 training tasks, one seeded episode each.

    python examples/env_baselines.py        # about a minute on 2 CPU cores
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

import lram_agents  # noqa: F401  (registers the environments)
from lram_agents.envs import MUJOCO_ENV_IDS, task_family
from lram_agents.envs.darkroom import DarkKeyDoorExpert, DarkRoomExpert
from lram_agents.envs.tmaze import TMazeEnv, TMazeOracle


def episode_return(env, policy, seed: int, options: dict | None = None) -> float:
    observation, _ = env.reset(seed=seed, options=options)
    total = 0.0
    while True:
        observation, reward, terminated, truncated, _ = env.step(policy(observation))
        total += float(reward)
        if terminated or truncated:
            return total


def tmaze() -> None:
    rng = np.random.default_rng(0)
    for length in (1, 30, 90, 900, 9000):
        env = TMazeEnv(corridor_length=length)
        oracle = sum(episode_return(env, TMazeOracle(length).act, seed) for seed in range(100))
        chance = sum(episode_return(env, lambda _: int(rng.integers(4)), seed) for seed in range(100))
        print(f"T-Maze L={length:5d}: oracle {oracle:.0f}/100, random {chance:.0f}/100")


def manhattan(a, b) -> int:
    return abs(a[0] - b[0]) + abs(a[1] - b[1])


def darkroom() -> None:
    env = gym.make("lram_agents/DarkRoom-v0")
    family = task_family("lram_agents/DarkRoom-v0")
    rng = np.random.default_rng(0)
    goals = family.train_tasks() + family.holdout_tasks()
    expert = [episode_return(env, DarkRoomExpert(g).act, 0, {"task": g}) for g in goals]
    optimal = [100 - max(manhattan((0, 0), g), 1) + 1 for g in goals]
    chance = [episode_return(env, lambda _: int(rng.integers(5)), 0, {"task": g}) for g in goals]
    print(
        f"Dark-Room: expert optimal on {sum(e == o for e, o in zip(expert, optimal))}/100 goals "
        f"(mean {np.mean(expert):.2f}); random mean {np.mean(chance):.2f} (std {np.std(chance):.2f}, "
        f"max {np.max(chance):.0f})"
    )


def key_door() -> None:
    env = gym.make("lram_agents/DarkKeyDoor-v0")
    family = task_family("lram_agents/DarkKeyDoor-v0")
    rng = np.random.default_rng(0)
    tasks = [family.sample(rng, split) for split in ("train", "holdout") for _ in range(100)]
    expert = [episode_return(env, DarkKeyDoorExpert(t).act, 0, {"task": t}) for t in tasks]
    optimal = [1 + 100 - (max(manhattan((0, 0), t[:2]), 1) + manhattan(t[:2], t[2:])) + 1 for t in tasks]
    chance = [episode_return(env, lambda _: int(rng.integers(5)), 0, {"task": t}) for t in tasks]
    print(
        f"Dark Key-Door: expert optimal on {sum(e == o for e, o in zip(expert, optimal))}/200 tasks "
        f"(mean {np.mean(expert):.2f}); random mean {np.mean(chance):.2f} (std {np.std(chance):.2f})"
    )


def mujoco(env_id: str) -> None:
    env = gym.make(env_id)
    space = env.action_space
    rng = np.random.default_rng(0)
    tasks = task_family(env_id).train_tasks()[:10]
    zero = [
        episode_return(env, lambda _: np.zeros(space.shape, space.dtype), i, {"task": t})
        for i, t in enumerate(tasks)
    ]
    chance = [
        episode_return(env, lambda _: rng.uniform(space.low, space.high).astype(space.dtype), i, {"task": t})
        for i, t in enumerate(tasks)
    ]
    print(
        f"{env_id:32s} zero action {np.mean(zero):9.2f} ({np.std(zero):7.2f})   "
        f"random {np.mean(chance):9.2f} ({np.std(chance):7.2f})"
    )


def main() -> None:
    tmaze()
    darkroom()
    key_door()
    for env_id in MUJOCO_ENV_IDS:
        mujoco(env_id)


if __name__ == "__main__":
    main()
