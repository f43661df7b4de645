"""Two compiled steps against each other, interleaved in one process (CPU time, caches flushed).

    python benchmarks/frozen_step.py --model xlstm-1:0 --batch 1     # 16M preset; ~2 minutes, most of it compiling
    python benchmarks/frozen_step.py --compare donate --batch 16     # the frozen step keeping vs donating its state

``--compare freeze`` (default): the frozen step against the unfrozen one (:class:`lram_agents.inference.FrozenStep`).
``--compare donate``: the frozen step that writes a new state against the one that updates the given state in place
(``make_step(donate_state=True)``, as agents step). Prints each variant's median CPU and wall time per step and its
ratio to the first variant's; ``benchmarks/latency.py`` has the floor.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from lram_agents.benchmark import CacheFlusher, _timed, benchmark_models, filled_state, step_inputs
from lram_agents.inference import make_step
from lram_agents.model import LRAMModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="xlstm-1:0", help="xlstm-1:0, xlstm-7:1, mamba or transformer")
    parser.add_argument("--size", default="16m")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--context", type=int, default=1600, help="timesteps the state holds")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--compare", choices=["freeze", "donate"], default="freeze")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = LRAMModel(benchmark_models(args.size)[args.model]).eval()
    inputs, flush = step_inputs(args.batch), CacheFlusher()
    variants = ({"unfrozen": {"freeze": False}, "frozen": {"freeze": True}} if args.compare == "freeze" else
                {"state kept": {"donate_state": False}, "state donated": {"donate_state": True}})
    steps, states, cpu, wall = {}, {}, {v: [] for v in variants}, {v: [] for v in variants}
    with torch.inference_mode():
        for name, options in variants.items():
            steps[name], states[name] = make_step(model, compile=True, **options), filled_state(model, args.batch, args.context)
            plain = model(inputs, {key: t.clone() for key, t in states[name].items()}).logits
            begin = time.perf_counter()
            out = steps[name](inputs, states[name])
            states[name] = out.state
            print(f"{name}: compiled in {time.perf_counter() - begin:.0f} s, |logits - plain| {(out.logits - plain).abs().max().item():.1e}")
        for _ in range(args.rounds):
            for name in variants:
                def one_step(name=name):
                    states[name] = steps[name](inputs, states[name]).state

                round_wall, round_cpu = _timed(one_step, 6, flush)
                wall[name] += list(round_wall)
                cpu[name] += list(round_cpu)
    first = next(iter(variants))
    reference = np.median(cpu[first])
    for name in variants:
        print(f"{args.model} {args.size} batch {args.batch}, {name}: {1e3 * np.median(cpu[name]):.2f} ms CPU, "
              f"{1e3 * np.median(wall[name]):.2f} ms wall per step ({np.median(cpu[name]) / reference:.2f}x the {first} CPU time)")


if __name__ == "__main__":
    main()
