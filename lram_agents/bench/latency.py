"""Latency / throughput / memory of recurrent inference vs the Transformer's KV cache.

    lram bench latency --quick            # ~10 minutes on a 2-core CPU (~20 with --compile)
    lram bench latency --models xlstm-1:0 transformer --out runs/bench     # or: python benchmarks/latency.py ...

Writes results.csv, results.md and latency.png into --out and prints the tables.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tqdm import tqdm

from lram_agents import benchmark as bench


def main(argv=None, prog: str | None = None) -> None:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20 timed steps per cell instead of 200")
    parser.add_argument("--size", default="16m", choices=("16m", "48m", "110m", "206m"))
    parser.add_argument("--models", nargs="*", default=None, help="subset of: " + ", ".join(bench.benchmark_models()))
    parser.add_argument("--fill", default="synthetic", choices=("synthetic", "rollout"))
    parser.add_argument("--memory-budget-gb", type=float, default=8.0, help="skip cells whose state needs more")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16"), help="weights of the timed steps")
    parser.add_argument("--hot", action="store_true", help="do not flush the caches before each timed step / floor pass")
    parser.add_argument("--compile", action="store_true", help="add torch.compile'd recurrent steps (+compile rows)")
    parser.add_argument("--contexts", type=int, nargs="*", default=list(bench.CONTEXTS), help="timesteps held (latency cells)")
    parser.add_argument("--batches", type=int, nargs="*", default=list(bench.BATCHES), help="batch sizes (latency cells)")
    parser.add_argument("--no-throughput", action="store_true", help="skip the throughput-vs-batch cells")
    parser.add_argument("--out", type=Path, default=Path("runs/benchmark"))
    parser.add_argument("--env-loop", default="lram_agents/TMaze-v0", help="env id of the env-in-the-loop run ('' to skip)")
    parser.add_argument("--loop-corridor", type=int, default=None, help="T-Maze corridor length (quick: 298, full: 8190)")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    begin = time.time()
    with bench.threads(args.threads):
        configs = bench.benchmark_models(args.size)
        names = args.models or list(configs)
        cells = dict(contexts=args.contexts, batches=args.batches, throughput=not args.no_throughput)
        total = sum(len(bench.suite_cells(args.compile, **cells)) for n in names)
        with tqdm(total=total, desc="benchmark", file=sys.stdout) as bar:
            results = bench.run_suite(args.size, args.quick, args.fill, names, args.memory_budget_gb, cold=not args.hot,
                                      compile=args.compile, precision=args.precision, progress=lambda r: bar.update(), **cells)
        package_ms = bench.xlstm_package_step_ms(configs["xlstm-1:0"]) if "xlstm-1:0" in names else None
        loops = []
        if args.env_loop:
            corridor = args.loop_corridor or (298 if args.quick else 8190)  # full: Freeway's 8192-step episodes
            kwargs = {"corridor_length": corridor} if "TMaze" in args.env_loop else {}
            episodes = 3 if args.quick else 5
            for name in tqdm(names, desc="env loop", file=sys.stdout):
                loops.append(bench.env_loop(name, configs[name], args.env_loop, episodes, kwargs))
                if args.compile:
                    loops.append(bench.env_loop(name, configs[name], args.env_loop, episodes, kwargs, compile=True))
    bench.write_csv(results, args.out / "results.csv")
    table = bench.markdown_tables(results)
    ours = next((r for r in results if r.model == "xlstm-1:0" and r.kind == "latency" and r.batch == 1), None)
    if package_ms is not None and ours is not None:
        table += (f"\nThe `xlstm` package's own `step` (3 tokens, one at a time), xlstm-1:0, batch 1: {package_ms:.1f} ms per "
                  f"timestep = {package_ms / ours.median_ms:.1f}× ours ({ours.median_ms:.1f} ms).\n")
    skipped = [r for r in results if r.note]
    for r in skipped:
        table += f"\n- {r.model} {r.kind} batch {r.batch} C={r.context}: {r.note}"
    if loops:
        table += bench.loop_table(loops, args.env_loop)
    table += "\n" + full_protocol_estimate(results)
    (args.out / "results.md").write_text(table)
    bench.plot(results, args.out / "latency.png")
    print(table)
    print(f"\nwrote {args.out}/results.csv, results.md, latency.png in {time.time() - begin:.0f} s")


def full_protocol_estimate(results, timed_steps: int = 200) -> str:
    """How long the paper's protocol (step through C timesteps, then time 200) would take per cell."""
    lines = ["**The full protocol** (`--fill rollout`, 200 timed steps: every cell first steps through its C timesteps):", ""]
    total = 0.0
    for r in results:
        if r.median_ms == r.median_ms and r.kind == "latency":
            seconds = (r.context + timed_steps) * r.median_ms / 1e3
            total += seconds
            if seconds > 60:
                lines.append(f"- {r.model} batch {r.batch} C={r.context}: ~{seconds / 60:.0f} min")
    lines.append(f"\nIn all about {total / 3600:.1f} h for the latency cells, against minutes for this synthetic fill.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
