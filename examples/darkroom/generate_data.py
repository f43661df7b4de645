"""Dark-Room learning histories for Algorithm Distillation: the source RL algorithm on each of the 80 training goals.

For every training goal of ``lram_agents/DarkRoom-v0`` (the fixed 80 / 20 split of
:class:`~lram_agents.envs.tasks.GridGoalTasks`) a fresh SB3 agent learns from scratch
(:func:`~lram_agents.envs.source_rl.make_source_algorithm`) while
:func:`~lram_agents.data.learning_history.record_learning_history` keeps every k-th episode of its
history in one trajectory file per goal (``history_id`` = the goal's index, task = the goal).

    nice -n 10 python examples/darkroom/generate_data.py examples/darkroom/source_rl.yaml
    # or one process per core: ... --shard 0/2 & ... --shard 1/2
    # histories on hold-out goals, for a held-out loss (never for training):
    nice -n 10 python examples/darkroom/generate_data.py examples/darkroom/source_rl.yaml --split holdout --goals 8 --output data/darkroom-holdout

Resumable: a goal's file appears (renamed into place) only when its history is complete, so a rerun
skips the goals already done and restarts an interrupted one from scratch.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import torch
from tqdm.auto import tqdm

import lram_agents  # noqa: F401  (registers the environments)
from lram_agents.config_utils import from_dict, require
from lram_agents.data.jobs import parse_shard, refuse_if_different
from lram_agents.data.learning_history import record_learning_history
from lram_agents.envs import task_family
from lram_agents.envs.source_rl import make_source_algorithm
from lram_agents.run_configs import load_config_file


@dataclass
class SourceRLConfig:
    """The settings of ``source_rl.yaml`` (see that file for the values used and why)."""

    output: str
    env: str = "lram_agents/DarkRoom-v0"
    algorithm: str = "PPO"
    total_timesteps: int = 40960
    keep_every: int = 10
    seed: int = 0
    algorithm_kwargs: dict = field(default_factory=dict)
    domain: str = "darkroom"

    def __post_init__(self):
        require(self.total_timesteps >= 1, "total_timesteps", self.total_timesteps, "must be >= 1")
        require(self.keep_every >= 1, "keep_every", self.keep_every, "must be >= 1")


def goal_prefix(goal: tuple[int, int]) -> str:
    return f"goal-{goal[0]}-{goal[1]}"


def record_goal(cfg: SourceRLConfig, index: int, goal: tuple[int, int], output: Path) -> list[float]:
    """Record one goal's history into ``output`` (via a staging folder); returns every episode's return."""
    staging = output / f".staging-{goal_prefix(goal)}"  # hidden: datasets skip it
    shutil.rmtree(staging, ignore_errors=True)  # left over from an interrupted run
    algorithm = make_source_algorithm(cfg.env, goal, algorithm=cfg.algorithm, seed=cfg.seed + index,
                                      algorithm_kwargs=cfg.algorithm_kwargs)
    summary = record_learning_history(algorithm, cfg.total_timesteps, staging, keep_every=cfg.keep_every, history_id=index,
                                      task=str(goal), domain=cfg.domain, prefix=goal_prefix(goal),
                                      episodes_per_file=cfg.total_timesteps, progress=False)  # the whole history in one file
    (written,) = summary.files
    written.replace(output / written.name)  # atomic: the goal counts as done from here on
    staging.rmdir()
    return summary.returns


def check_same_recipe(path: Path, cfg: SourceRLConfig) -> None:
    """A goal recorded earlier counts as done only if it was recorded the same way: a data set mixing whole
    and downsampled histories would train a different model from the one these settings describe."""
    with h5py.File(path, "r") as f:
        recorded = json.loads(f.attrs.get("metadata", "{}"))
    wanted = {"algorithm": cfg.algorithm, "keep_every": cfg.keep_every, "total_timesteps": cfg.total_timesteps}
    refuse_if_different(path, recorded, wanted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path, help="e.g. examples/darkroom/source_rl.yaml")
    parser.add_argument("--output", help="override the config's output directory")
    parser.add_argument("--keep-every", type=int, help="override the config's keep_every (1: whole histories)")
    parser.add_argument("--goals", type=int, help="record only the first N goals of the split (a quick look)")
    parser.add_argument("--split", choices=("train", "holdout"), default="train",
                        help="the goals to record: the 80 training goals (default) or the 20 hold-out ones")
    parser.add_argument("--shard", default="0/1", help="I/N: record only goals I, I+N, I+2N, ... (run N processes, "
                        "one per core, with I = 0..N-1)")
    args = parser.parse_args()
    data = load_config_file(args.config)
    data.update({k: v for k, v in {"output": args.output, "keep_every": args.keep_every}.items() if v is not None})
    cfg = from_dict(SourceRLConfig, data)
    torch.set_num_threads(1)  # SB3's small networks gain nothing from more threads on a shared machine
    output = Path(cfg.output)
    output.mkdir(parents=True, exist_ok=True)
    shard, num_shards = parse_shard(args.shard)
    family = task_family(cfg.env)
    split_goals = family.train_tasks() if args.split == "train" else family.holdout_tasks()
    goals = list(enumerate(split_goals[: args.goals]))[shard::num_shards]
    bar = tqdm(goals, desc="learning histories", unit="goal")
    for index, goal in bar:
        done = sorted(output.glob(f"{goal_prefix(goal)}-*.h5"))
        if done:
            check_same_recipe(done[0], cfg)
            continue
        start = time.perf_counter()
        returns = record_goal(cfg, index, goal, output)
        bar.set_postfix(goal=str(goal), first10=f"{np.mean(returns[:10]):.1f}", last10=f"{np.mean(returns[-10:]):.1f}",
                        seconds=f"{time.perf_counter() - start:.0f}")
        tqdm.write(f"goal {goal}: {len(returns)} episodes, return first 10 {np.mean(returns[:10]):.1f}, "
                   f"last 10 {np.mean(returns[-10:]):.1f} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
