"""Learning histories on every task of a meta-RL family: Algorithm Distillation's data set, one command.

For each task of a split of the env's task family (:func:`lram_agents.envs.task_family`; e.g. the 80
Dark-Room goals or the 70 Reacher-Goal targets) a fresh SB3 agent learns from scratch
(:func:`~lram_agents.envs.source_rl.make_source_algorithm`, seed = ``seed`` + the task's index) while
:func:`~lram_agents.data.learning_history.record_learning_history` keeps every k-th episode of its
history, in one trajectory file per task (``history_id`` = the task's index, ``task`` = the task).

    python -m lram_agents.data.task_histories examples/ad/reachergoal_sac.yaml --shard 0/2 &   # one per core
    python -m lram_agents.data.task_histories examples/ad/reachergoal_sac.yaml --shard 1/2
    # histories on hold-out tasks (the source algorithm's own curve there; never for training):
    python -m lram_agents.data.task_histories examples/ad/reachergoal_sac.yaml --split holdout --tasks 10 \\
        --output data/ad/reachergoal-holdout

Resumable: a task's file appears (renamed into place) only when its history is complete, so a rerun
skips the tasks already done and restarts an interrupted one from scratch. A task recorded with other
settings is refused by name, since a data set mixing recipes trains a model that neither describes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from tqdm.auto import tqdm

from lram_agents.config_utils import from_dict, require
from lram_agents.data.jobs import parse_shard, refuse_if_different
from lram_agents.data.learning_history import record_learning_history
from lram_agents.serialization import atomic_write_text


@dataclass
class SourceRLConfig:
    """How the learning histories of one task family are recorded (a YAML file; see the examples' ones).

    Attributes:
        output: folder of the trajectory files (one per task).
        env: a registered meta-RL env id whose task family gives the tasks.
        algorithm: the source RL algorithm (``"PPO"``, ``"SAC"`` or ``"DroQ"``).
        total_timesteps: the length of each task's history.
        keep_every: k, Algorithm Distillation's downsampling: keep every k-th finished episode.
        seed: task i's algorithm is seeded with ``seed + i``.
        algorithm_kwargs: passed to the SB3 algorithm (learning rate, ``policy_kwargs``...).
        env_kwargs: passed to ``gym.make`` (besides the task).
        domain: stored in the files' metadata.
        tasks: record only the first N training tasks (``None``: all of them), where the budget allows fewer.
    """

    output: str
    env: str = "lram_agents/DarkRoom-v0"
    algorithm: str = "PPO"
    total_timesteps: int = 40960
    keep_every: int = 10
    seed: int = 0
    algorithm_kwargs: dict = field(default_factory=dict)
    env_kwargs: dict = field(default_factory=dict)
    domain: str = "darkroom"
    tasks: int | None = None

    def __post_init__(self):
        require(self.total_timesteps >= 1, "total_timesteps", self.total_timesteps, "must be >= 1")
        require(self.tasks is None or self.tasks >= 1, "tasks", self.tasks, "must be >= 1 (or left out: every training task)")
        require(self.keep_every >= 1, "keep_every", self.keep_every, "must be >= 1")

    def recipe(self) -> dict[str, Any]:
        """The settings a recorded file must share to count as done (stored in every file's metadata)."""
        return {"algorithm": self.algorithm, "keep_every": self.keep_every, "total_timesteps": self.total_timesteps}


def task_prefix(task: Any, index: int) -> str:
    """The file name prefix of a task's history: ``goal-<x>-<y>`` for a grid goal, else ``task-<index>``."""
    if isinstance(task, tuple) and len(task) == 2 and all(isinstance(v, (int, np.integer)) for v in task):
        return f"goal-{task[0]}-{task[1]}"
    return f"task-{index:03d}"


def record_task(cfg: SourceRLConfig, index: int, task: Any, output: Path) -> list[float]:
    """Record one task's history into ``output`` (via a staging folder); returns every episode's return.

    Beside the trajectory file, ``<prefix>.json`` keeps the return of every episode of the history (kept
    or not) and the wall and CPU seconds the task took.
    """
    from lram_agents.envs.source_rl import make_source_algorithm  # SB3 is imported only by the jobs that record

    start, cpu = time.perf_counter(), time.process_time()
    prefix = task_prefix(task, index)
    staging = output / f".staging-{prefix}"  # hidden: datasets skip it
    shutil.rmtree(staging, ignore_errors=True)  # left over from an interrupted run
    algorithm = make_source_algorithm(cfg.env, task, algorithm=cfg.algorithm, seed=cfg.seed + index,
                                      env_kwargs=cfg.env_kwargs, algorithm_kwargs=cfg.algorithm_kwargs)
    summary = record_learning_history(algorithm, cfg.total_timesteps, staging, keep_every=cfg.keep_every, history_id=index,
                                      task=str(task), domain=cfg.domain, prefix=prefix,
                                      episodes_per_file=cfg.total_timesteps, progress=False)  # the whole history in one file
    (written,) = summary.files
    facts = {"task": str(task), "index": index, "seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu,
             "returns": summary.returns}  # every episode's return, kept or not: the source algorithm's whole curve
    atomic_write_text(output / f"{prefix}.json", json.dumps(facts) + "\n")
    written.replace(output / written.name)  # atomic: the task counts as done from here on
    staging.rmdir()
    return summary.returns


def check_same_recipe(path: Path, cfg: SourceRLConfig) -> None:
    """Exit naming ``path`` and the values unless it was recorded with ``cfg``'s recipe."""
    with h5py.File(path, "r") as f:
        recorded = json.loads(f.attrs.get("metadata", "{}"))
    refuse_if_different(path, recorded, cfg.recipe())


def record_histories(cfg: SourceRLConfig, split: str = "train", tasks: int | None = None, shard: tuple[int, int] = (0, 1),
                     progress: bool = True) -> dict[int, list[float]]:
    """Record the histories of the first ``tasks`` tasks of ``split`` that belong to ``shard`` (I, N).

    ``tasks`` defaults to ``cfg.tasks`` for the training split, to every task for the hold-out one.

    Returns ``{task index: every episode's return}`` for the tasks recorded now (not those already on disk).
    """
    from lram_agents.envs import task_family

    require(split in ("train", "holdout"), "split", split, "must be 'train' or 'holdout'")
    output = Path(cfg.output)
    output.mkdir(parents=True, exist_ok=True)
    family = task_family(cfg.env)
    split_tasks = family.train_tasks() if split == "train" else family.holdout_tasks()
    index, num_shards = shard
    count = tasks if tasks is not None else (cfg.tasks if split == "train" else None)
    mine = list(enumerate(split_tasks[:count]))[index::num_shards]
    recorded = {}
    bar = tqdm(mine, desc="learning histories", unit="task", disable=not progress)
    for i, task in bar:
        done = sorted(output.glob(f"{task_prefix(task, i)}-*.h5"))
        if done:
            check_same_recipe(done[0], cfg)
            continue
        start = time.perf_counter()
        returns = recorded[i] = record_task(cfg, i, task, output)
        first, last = np.mean(returns[:10]), np.mean(returns[-10:])
        bar.set_postfix(task=i, first10=f"{first:.1f}", last10=f"{last:.1f}")
        tqdm.write(f"task {i} {task}: {len(returns)} episodes, return first 10 {first:.1f}, last 10 {last:.1f} "
                   f"({time.perf_counter() - start:.0f} s)")
    return recorded


def main(argv: list[str] | None = None, description: str | None = None) -> None:
    """The command line (``python -m lram_agents.data.task_histories CONFIG [--shard I/N] ...``)."""
    from lram_agents.run_configs import load_config_file

    parser = argparse.ArgumentParser(description=description or __doc__.splitlines()[0])
    parser.add_argument("config", type=Path, help="a YAML of SourceRLConfig's fields, e.g. examples/ad/reachergoal_sac.yaml")
    parser.add_argument("--output", help="override the config's output directory")
    parser.add_argument("--keep-every", type=int, help="override the config's keep_every (1: whole histories)")
    parser.add_argument("--tasks", "--goals", type=int, dest="tasks", help="record only the first N tasks of the split (default: the config's tasks for training, all for hold-out)")
    parser.add_argument("--split", choices=("train", "holdout"), default="train",
                        help="the tasks to record: the family's training tasks (default) or its hold-out ones")
    parser.add_argument("--shard", default="0/1", help="I/N: record only tasks I, I+N, I+2N, ... (run N processes, "
                        "one per core, with I = 0..N-1)")
    args = parser.parse_args(argv)
    data = load_config_file(args.config)
    data.update({k: v for k, v in {"output": args.output, "keep_every": args.keep_every}.items() if v is not None})
    cfg = from_dict(SourceRLConfig, data)
    torch.set_num_threads(1)  # SB3's small networks gain nothing from more threads on a shared machine
    record_histories(cfg, args.split, args.tasks, parse_shard(args.shard))


if __name__ == "__main__":
    main()
