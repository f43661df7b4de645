"""Sampler throughput on a large image dataset, and data loading against a 16M-preset training step.

    python benchmarks/sampler_throughput.py --root /tmp/lram-bench [--gigabytes 1] [--batch 128] [--train-batch 8]

1. Generates (once) ``--gigabytes`` of raw 1x64x64 uint8 frames as LRAM-style trajectory files (one
   episode per file, gzip level 4): Atari-like frames (a smooth background, moving blocks, a little
   noise) so the compression ratio is realistic rather than that of white noise.
2. Measures sub-trajectories (C = 50 steps) per second of ``TrajectorySampler.batch`` in one process.
3. Times a full training step (forward, backward, AdamW) of the xLSTM 16M preset against the time to
   load the same batch, in the same run. Prints one JSON line per measurement.
Nothing here is committed data: the dataset lives under ``--root``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from lram_agents.data import DataSource, Episode, TrajectoryDataset, TrajectorySampler, write_episodes
from lram_agents.model import LRAMModel
from lram_agents.presets import preset
from lram_agents.training.config import TrainerConfig
from lram_agents.training.trainer import _Objective, build_optimizer

FRAME = (1, 64, 64)
SPACE = gym.spaces.Box(0, 255, FRAME, np.uint8)
ACTIONS = gym.spaces.Discrete(18)


def atari_like_episode(length: int, rng: np.random.Generator) -> Episode:
    y, x = np.mgrid[0:64, 0:64]
    background = (40 + 30 * np.sin(x / rng.uniform(4, 12)) + 30 * np.cos(y / rng.uniform(4, 12))).astype(np.uint8)
    frames = np.repeat(background[None], length + 1, axis=0)
    for _ in range(3):  # moving blocks
        pos, vel, size = rng.uniform(0, 56, 2), rng.uniform(-2, 2, 2), rng.integers(3, 9)
        for t in range(length + 1):
            py, px = (np.abs((pos + t * vel) % 112 - 56)).astype(int)
            frames[t, py:py + size, px:px + size] = 200
    noise = rng.random(frames.shape) < 0.01
    frames[noise] = rng.integers(0, 256, noise.sum(), dtype=np.uint8)
    terminations = np.zeros(length, bool)
    terminations[-1] = True
    return Episode(frames[:, None], rng.integers(0, 18, length), rng.integers(0, 2, length), terminations, np.zeros(length, bool))


def generate(root: Path, gigabytes: float, seed: int = 0) -> None:
    if (root / "done").exists():
        return
    root.mkdir(parents=True, exist_ok=True)
    rng, frames_needed, written, i = np.random.default_rng(seed), int(gigabytes * 1e9 / np.prod(FRAME)), 0, 0
    while written < frames_needed:
        episode = atari_like_episode(int(rng.integers(100, 400)), rng)
        write_episodes(root / f"episode-{i:07d}.h5", [episode], SPACE, ACTIONS, domain="atari")
        written, i = written + len(episode), i + 1
    (root / "done").write_text(str(written))


def sampler_throughput(dataset: TrajectoryDataset, batch: int, context: int, steps: int) -> dict:
    config = preset("xlstm", "16m")
    sampler = TrajectorySampler(DataSource(dataset, context=context), config, batch_size=batch, seed=0)
    for step in range(10_000, 10_000 + 2 * len(dataset.files) // batch + 1):  # open every file once, fill the caches
        sampler.batch(step)
    begin = time.perf_counter()
    for step in range(steps):
        sampler.batch(step)
    seconds = (time.perf_counter() - begin) / steps
    return {"what": "sampler", "batch": batch, "context": context, "s_per_batch": seconds, "windows_per_s": batch / seconds}


def loader_throughput(dataset: TrajectoryDataset, batch: int, context: int, steps: int, workers: int) -> dict:
    """Batches through the trainer's DataLoader path with ``workers`` processes."""
    from lram_agents.training.trainer import _identity, _StepBatches

    sampler = TrajectorySampler(DataSource(dataset, context=context), preset("xlstm", "16m"), batch_size=batch, seed=0)
    loader = torch.utils.data.DataLoader(_StepBatches(sampler, 0, steps + 2 * workers, 1, 0, 1), batch_size=None, num_workers=workers,
                                         prefetch_factor=2, collate_fn=_identity)
    batches = iter(loader)
    for _ in range(2 * workers):  # worker start-up and first file opens
        next(batches)
    begin = time.perf_counter()
    for _ in range(steps):
        next(batches)
    seconds = (time.perf_counter() - begin) / steps
    return {"what": "loader", "workers": workers, "batch": batch, "s_per_batch": seconds, "windows_per_s": batch / seconds}


def train_step_vs_loading(dataset: TrajectoryDataset, batch: int, context: int, repeats: int) -> dict:
    config = preset("xlstm", "16m")
    torch.manual_seed(0)
    model = LRAMModel(config)
    optimizer = build_optimizer(model, TrainerConfig())
    objective = _Objective(model)
    sampler = TrajectorySampler(DataSource(dataset, context=context), config, batch_size=batch, seed=1)
    load_s, step_s = [], []
    for step in range(repeats + 1):
        begin = time.perf_counter()
        parts = sampler.batch(step)
        loaded = time.perf_counter()
        optimizer.zero_grad()
        objective(parts).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        optimizer.step()
        if step:  # the first step pays one-off costs
            load_s.append(loaded - begin)
            step_s.append(time.perf_counter() - loaded)
    load, train = float(np.median(load_s)), float(np.median(step_s))
    return {"what": "16m step vs loading", "batch": batch, "context": context, "params_M": model.num_parameters() / 1e6,
            "load_s": load, "train_step_s": train, "load_share": load / (load + train), "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path("/tmp/lram-bench"))
    parser.add_argument("--gigabytes", type=float, default=1.0)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--context", type=int, default=50)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers for the loader measurement (0: skip it)")
    parser.add_argument("--train-batch", type=int, default=8)
    parser.add_argument("--train-repeats", type=int, default=3)
    args = parser.parse_args()
    generate(args.root, args.gigabytes)
    dataset = TrajectoryDataset(args.root)
    on_disk = sum(p.stat().st_size for p in args.root.glob("*.h5"))
    print(json.dumps({"what": "dataset", "episodes": dataset.num_episodes, "frames": dataset.num_steps,
                      "raw_GB": dataset.num_steps * int(np.prod(FRAME)) / 1e9, "on_disk_GB": on_disk / 1e9}))
    print(json.dumps(sampler_throughput(dataset, args.batch, args.context, args.steps)))
    if args.workers:
        print(json.dumps(loader_throughput(dataset, args.batch, args.context, args.steps, args.workers)))
    print(json.dumps(train_step_vs_loading(dataset, args.train_batch, args.context, args.train_repeats)))


if __name__ == "__main__":
    main()
