"""A soak test: one agent acting for a million steps with its memory carried across episodes.

    lram bench soak --model xlstm-tmaze-long --env lram_agents/TMaze-v0 --steps 1000000
    lram bench soak --model mamba-darkroom --env lram_agents/DarkRoom-v0 --steps 1000000

The agent keeps its recurrent state from episode to episode for the whole run (``keep_memory=True``, the
in-context setting and the hardest one for a recurrent state's numerics), with the default ``compile="auto"``.
Every window of ``--window`` steps it records: the median and 99th-percentile wall time of ``act``,
the CPU time per step, the process's resident memory, and whether any logit or any value of the
recurrent state was NaN or infinite. What a user needs to trust a long-running agent: no NaN/inf,
latency flat, memory flat. Writes ``soak.csv`` and ``soak.png`` into ``--out`` and prints a summary.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@dataclass
class Window:
    steps: int  # steps taken at the end of the window
    episodes: int
    median_ms: float  # wall time of act
    p99_ms: float
    cpu_ms_per_step: float  # process CPU time over the window (act and env), per step
    rss_mb: float
    nonfinite_logits: int  # steps of the window whose logits had a NaN or inf
    state_finite: bool  # the recurrent state at the end of the window
    max_abs_state: float


class FiniteLogits:
    """Wraps the agent's step function and counts steps whose logits are not all finite."""

    def __init__(self, step_fn):
        self.step_fn, self.bad = step_fn, 0
        self.donates_state = getattr(step_fn, "donates_state", False)  # the agent asks (it copies the state it needs kept)

    def __call__(self, *args, **kwargs):
        out = self.step_fn(*args, **kwargs)
        self.bad += int(not bool(out.logits.isfinite().all()))
        return out


def resident_mb() -> float:
    """The process's resident memory (Linux /proc; elsewhere the peak from getrusage)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def state_check(agent) -> tuple[bool, float]:
    state = agent.memory.model_state
    finite = all(bool(t.isfinite().all()) for t in state.values() if t.is_floating_point())
    biggest = max((float(t.abs().max()) for t in state.values() if t.is_floating_point() and t.numel()), default=0.0)
    return finite, biggest


def soak(model: str, env_id: str, steps: int, window: int, seed: int, env_kwargs: dict, progress: bool = True) -> list[Window]:
    import gymnasium as gym
    from tqdm.auto import tqdm

    import lram_agents

    agent = lram_agents.load(model, keep_memory=True, seed=seed)
    env = gym.make(env_id, **env_kwargs)
    agent.bind(env)
    checked = FiniteLogits(agent._step_fn)
    agent._step_fn = checked  # a wrapper around the (auto-compiling) step: the compiled graph itself is untouched
    obs, _ = env.reset(seed=seed)
    reward, episodes, rows, latencies = None, 0, [], []
    cpu0 = time.process_time()
    with tqdm(total=steps, unit="step", desc=f"soak {model}", disable=not progress, mininterval=2.0) as bar:
        for step in range(1, steps + 1):
            begin = time.perf_counter()
            action = agent.act(obs, reward)
            latencies.append(time.perf_counter() - begin)
            obs, reward, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                episodes += 1
                obs, _ = env.reset()
                agent.reset()  # a new episode; keep_memory=True carries the state over
            if step % window == 0 or step == steps:
                cpu1 = time.process_time()
                finite, biggest = state_check(agent)
                ms = 1e3 * np.asarray(latencies)
                rows.append(Window(step, episodes, float(np.median(ms)), float(np.percentile(ms, 99)),
                                   1e3 * (cpu1 - cpu0) / len(ms), resident_mb(), checked.bad, finite, biggest))
                checked.bad, latencies, cpu0 = 0, [], time.process_time()
                bar.update(len(ms))
    return rows


def summary(rows: list[Window], compile_after: int) -> str:
    """Flatness: the last window against the first one after the compile (or the first one)."""
    settled = [r for r in rows if r.steps > compile_after + rows[0].steps] or rows
    first, last = settled[0], rows[-1]
    bad = sum(r.nonfinite_logits for r in rows)
    return "\n".join([
        f"steps {last.steps}, episodes {last.episodes}",
        f"non-finite logits: {bad} steps; state finite at every window end: {all(r.state_finite for r in rows)}; "
        f"largest |state| value: {max(r.max_abs_state for r in rows):.3g}",
        f"act median: {first.median_ms:.3f} ms at step {first.steps} -> {last.median_ms:.3f} ms at step {last.steps} "
        f"(x{last.median_ms / first.median_ms:.2f}); CPU per step {first.cpu_ms_per_step:.3f} -> {last.cpu_ms_per_step:.3f} ms",
        f"resident memory: {first.rss_mb:.0f} MB at step {first.steps} -> {last.rss_mb:.0f} MB at step {last.steps} "
        f"(peak {max(r.rss_mb for r in rows):.0f} MB)",
    ])


def plot(rows: list[Window], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r.steps for r in rows]
    fig, (lat, mem) = plt.subplots(1, 2, figsize=(10, 3.5))
    lat.plot(steps, [r.median_ms for r in rows], label="act, median wall")
    lat.plot(steps, [r.cpu_ms_per_step for r in rows], label="CPU per step (act + env)")
    lat.set(xlabel="steps", ylabel="ms", title="latency", ylim=(0, None))
    lat.legend()
    mem.plot(steps, [r.rss_mb for r in rows])
    mem.set(xlabel="steps", ylabel="MB", title="resident memory", ylim=(0, 1.25 * max(r.rss_mb for r in rows)))
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None, prog: str | None = None) -> list[Window]:
    from lram_agents.inference import AUTO_COMPILE_AFTER

    parser = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="zoo name or saved agent directory")
    parser.add_argument("--env", required=True, help="Gymnasium env id")
    parser.add_argument("--env-kwargs", default="{}", help="JSON for gym.make")
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--window", type=int, default=20_000, help="steps per row of soak.csv")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("runs/benchmark/soak"))
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    out = args.out / Path(args.model).name
    out.mkdir(parents=True, exist_ok=True)
    rows = soak(args.model, args.env, args.steps, args.window, args.seed, json.loads(args.env_kwargs), not args.no_progress)
    with open(out / "soak.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(asdict(rows[0])))
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    plot(rows, out / "soak.png", f"{args.model} in {args.env}, memory kept across episodes")
    text = summary(rows, AUTO_COMPILE_AFTER)
    (out / "summary.txt").write_text(text + "\n")
    print(text)
    print(f"wrote {out}/soak.csv, soak.png, summary.txt")
    return rows


if __name__ == "__main__":
    main()
