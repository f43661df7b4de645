"""Success rate of trained T-Maze agents at inference lengths of n segments (L = 30n - 2, T = 30n).

    python examples/tmaze/evaluate.py runs/tmaze/xlstm runs/tmaze/mamba runs/tmaze/rate runs/tmaze/transformer
    python examples/tmaze/evaluate.py runs/tmaze/xlstm-long --steps 10000 30000 100000   # memory horizon

Each run's agent is loaded with ``lram_agents.load(run/model)`` and played with
``lram_agents.evaluate`` in a vector env of ``--seeds`` T-Mazes seeded 0, 1, ...: one episode per seed,
greedy actions, memory cleared at the start. ``--steps T`` plays episodes of T steps instead
(corridor L = T - 2), for lengths far beyond the segments of RATE's table. Results go to ``run/results.json`` (success rate, the
success of every seed, mean episode length, latency per call of ``--seeds`` envs) and a table is
printed. Runs that already have results for a length are not played again unless ``--force``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

import lram_agents
from common import EVAL_SEGMENTS, corridor_length, tmaze_envs
from lram_agents.serialization import atomic_write_text

RESULTS_FILE = "results.json"


def evaluate_length(agent, corridor: int, seeds: int, progress: bool = False) -> dict:
    """One episode per seed 0..seeds-1 in a corridor of length ``corridor``; the per-seed successes are in seed order."""
    result = lram_agents.evaluate(agent, tmaze_envs(corridor, seeds), seeds, seed=0, progress=progress)
    successes = np.zeros(seeds)
    successes[result.env_indices] = result.returns  # env i was seeded with i; reward 1 = the hinted goal
    return {
        "corridor_length": corridor,
        "success_rate": float(successes.mean()),
        "successes": successes.astype(int).tolist(),
        "mean_length": float(np.mean(result.lengths)),
        "latency_median_ms": result.latency_median_ms,
        "latency_p95_ms": result.latency_p95_ms,
        "envs_per_call": result.num_envs,
    }


def load_results(run: Path) -> dict:
    path = run / RESULTS_FILE
    return json.loads(path.read_text()) if path.is_file() else {"segments": {}}


def evaluate_run(run: Path, lengths: list[tuple[str, int]], seeds: int, force: bool, bar: tqdm) -> dict:
    """``lengths``: ("segments", n) or ("steps", T) pairs, kept under those keys of the results."""
    results = load_results(run)
    if results.get("seeds", seeds) != seeds:
        results = {"segments": {}}  # another number of seeds: start over
    agent = lram_agents.load(run / "model", device="cpu")
    for unit, n in lengths:
        bar.set_postfix(run=run.name, **{unit: n})
        done = results.setdefault(unit, {})
        if force or str(n) not in done:
            corridor = corridor_length(n) if unit == "segments" else n - 2
            done[str(n)] = evaluate_length(agent, corridor, seeds, progress=unit == "steps")
            results.update(seeds=seeds, command=" ".join(shlex.quote(a) for a in ["python", *sys.argv]))
            atomic_write_text(run / RESULTS_FILE, json.dumps(results, indent=2) + "\n")  # kept if interrupted
        bar.update(1)
    return results


def table(runs: list[Path], all_results: list[dict], lengths: list[tuple[str, int]]) -> str:
    head = "| run | " + " | ".join(f"{n} seg" if unit == "segments" else f"{n} steps" for unit, n in lengths) + " |"
    lines = [head, "|" + " --- |" * (len(lengths) + 1)]
    for run, results in zip(runs, all_results):
        cells = [f"{results[unit][str(n)]['success_rate']:.3f}" for unit, n in lengths]
        lines.append(f"| {run.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+", help="run directories written by train.py")
    parser.add_argument("--segments", type=int, nargs="*", default=list(EVAL_SEGMENTS))
    parser.add_argument("--steps", type=int, nargs="*", default=[], help="episode lengths in steps (>= 3), e.g. 10000")
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--force", action="store_true", help="play lengths that already have results again")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if any(t < 3 for t in args.steps):
        parser.error(f"--steps {args.steps}: an episode has at least 3 steps (corridor length >= 1)")
    torch.set_num_threads(args.threads)
    lengths = [("segments", n) for n in args.segments] + [("steps", t) for t in args.steps]
    with tqdm(total=len(args.runs) * len(lengths), desc="evaluate", unit="length") as bar:
        all_results = [evaluate_run(run, lengths, args.seeds, args.force, bar) for run in args.runs]
    print(f"success rate over {args.seeds} seeds:")
    print(table(args.runs, all_results, lengths))


if __name__ == "__main__":
    main()
