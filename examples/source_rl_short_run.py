"""A short source-RL run per task: does the return improve on one fixed (training) task?

Trains SAC (MuJoCo tasks) or PPO (grid worlds), SB3 defaults, from scratch on one training task
(the first unless ``--task-index`` says otherwise) with
:func:`lram_agents.envs.source_rl.run_source_rl`, which records the learning history, and prints
for each task

* the deterministic return of the untrained policy and of the trained one (mean of 5 evaluation
  episodes with fixed seeds), and
* the mean return of the first and last 10 episodes of the recorded learning history.

It also plots the learning histories (``--plot``, default ``examples/images/source_rl_short_run.png``).

    nice -n 10 python examples/source_rl_short_run.py --steps 20000   # SAC on the 4 MuJoCo tasks
    nice -n 10 python examples/source_rl_short_run.py --steps 100000 \
        --env-ids lram_agents/DarkRoom-v0 --task-index -1 --plot /tmp/ppo_darkroom.png  # PPO, goal (9, 9)

On a busy 2-core machine the SAC runs took 9-17 min per task (20k steps).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import gymnasium as gym
import matplotlib
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import lram_agents  # noqa: E402,F401  (registers the environments)
from lram_agents.envs import MUJOCO_ENV_IDS, task_family  # noqa: E402
from lram_agents.envs.source_rl import ALGORITHMS, Transition, default_algorithm, run_source_rl  # noqa: E402

IMAGES = Path(__file__).parent / "images"


def evaluate(model, env_id: str, task, episodes: int = 5, seed: int = 10_000) -> float:
    """Mean return of ``model``'s deterministic policy over ``episodes`` seeded episodes."""
    env = gym.make(env_id, task=task)
    returns = []
    for episode in range(episodes):
        observation, _ = env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            action, _ = model.predict(observation, deterministic=True)
            observation, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
        returns.append(total)
    return float(np.mean(returns))


class EpisodeReturns:
    """Sums the streamed transitions into episode returns (one environment copy)."""

    def __init__(self) -> None:
        self.returns: list[float] = []
        self._current = 0.0

    def __call__(self, transition: Transition) -> None:
        self._current += transition.reward
        if transition.terminated or transition.truncated:
            self.returns.append(self._current)
            self._current = 0.0


def run_one(env_id: str, steps: int, seed: int, task_index: int = 0) -> dict:
    task = task_family(env_id).train_tasks()[task_index]
    algorithm = default_algorithm(env_id)
    untrained = ALGORITHMS[algorithm]("MlpPolicy", gym.make(env_id, task=task), seed=seed, verbose=0)
    before = evaluate(untrained, env_id, task)
    history = EpisodeReturns()
    start = time.perf_counter()
    model = run_source_rl(env_id, task, history, total_timesteps=steps, algorithm=algorithm, seed=seed)
    return {
        "env_id": env_id,
        "algorithm": algorithm,
        "task": task,
        "before": before,
        "after": evaluate(model, env_id, task),
        "first10": float(np.mean(history.returns[:10])),
        "last10": float(np.mean(history.returns[-10:])),
        "episodes": history.returns,
        "seconds": time.perf_counter() - start,
    }


def plot(results: list[dict], path: Path) -> None:
    fig, axes = plt.subplots(1, len(results), figsize=(3.2 * len(results), 2.6), dpi=80)
    for ax, result in zip(np.atleast_1d(axes), results):
        ax.plot(result["episodes"], lw=0.8)
        ax.set_title(result["env_id"].split("/")[1], fontsize=9)
        ax.set_xlabel("episode", fontsize=8)
        ax.tick_params(labelsize=7)
    np.atleast_1d(axes)[0].set_ylabel("return", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--env-ids", nargs="*", default=list(MUJOCO_ENV_IDS))
    parser.add_argument("--plot", type=Path, default=IMAGES / "source_rl_short_run.png")
    parser.add_argument("--task-index", type=int, default=0, help="which training task (default: the first)")
    args = parser.parse_args()
    # One thread: the small networks gain nothing from more, and on a busy 2-core machine two
    # threads made each gradient step ~14x slower (measured: 140 s vs 10 s for 300 steps).
    torch.set_num_threads(1)
    results = []
    for env_id in args.env_ids:
        result = run_one(env_id, args.steps, args.seed, args.task_index)
        results.append(result)
        print(
            f"{env_id:32s} {result['algorithm']} task={result['task']!s:.40s}  "
            f"eval before {result['before']:9.2f}  "
            f"after {result['after']:9.2f}  | history first10 {result['first10']:9.2f}  "
            f"last10 {result['last10']:9.2f}  ({result['seconds']:.0f} s)",
            flush=True,
        )
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    plot(results, args.plot)


if __name__ == "__main__":
    main()
