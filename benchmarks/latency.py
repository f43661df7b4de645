"""Latency / throughput / memory of recurrent inference vs the Transformer's KV cache.

    python benchmarks/latency.py --quick            # ~10 minutes on a 2-core CPU
    python benchmarks/latency.py --models xlstm-1:0 transformer --out runs/bench

Writes results.csv, results.md and latency.png into --out and prints the tables.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tqdm import tqdm

from lram_agents import benchmark as bench


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20 timed steps per cell instead of 200")
    parser.add_argument("--size", default="16m", choices=("16m", "48m", "110m", "206m"))
    parser.add_argument("--models", nargs="*", default=None, help="subset of: " + ", ".join(bench.benchmark_models()))
    parser.add_argument("--fill", default="synthetic", choices=("synthetic", "rollout"))
    parser.add_argument("--memory-budget-gb", type=float, default=8.0, help="skip cells whose state needs more")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("runs/benchmark"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    begin = time.time()
    with bench.threads(args.threads):
        configs = bench.benchmark_models(args.size)
        names = args.models or list(configs)
        total = len(names) * (len(bench.BATCHES) * len(bench.CONTEXTS) + len(bench.THROUGHPUT_BATCHES))
        with tqdm(total=total, desc="benchmark", file=sys.stdout) as bar:
            results = bench.run_suite(args.size, args.quick, args.fill, names, args.memory_budget_gb, progress=lambda r: bar.update())
        package_ms = bench.xlstm_package_step_ms(configs["xlstm-1:0"]) if "xlstm-1:0" in names else None
    bench.write_csv(results, args.out / "results.csv")
    table = bench.markdown_tables(results)
    if package_ms is not None:
        ours = next(r for r in results if r.model == "xlstm-1:0" and r.kind == "latency" and r.batch == 1 and r.context == 50)
        table += (f"\nThe `xlstm` package's own `step` (3 tokens, one at a time), xlstm-1:0, batch 1: {package_ms:.1f} ms per "
                  f"timestep = {package_ms / ours.median_ms:.1f}× ours ({ours.median_ms:.1f} ms).\n")
    skipped = [r for r in results if r.note]
    for r in skipped:
        table += f"\n- {r.model} {r.kind} batch {r.batch} C={r.context}: {r.note}"
    (args.out / "results.md").write_text(table)
    bench.plot(results, args.out / "latency.png")
    print(table)
    print(f"\nwrote {args.out}/results.csv, results.md, latency.png in {time.time() - begin:.0f} s")


if __name__ == "__main__":
    main()
