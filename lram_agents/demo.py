"""The README's main command: an agent from the zoo acting recurrently in a Gymnasium env.

    python -m lram_agents.demo [--backbone xlstm] [--size 16m] [--variant 7:1] [--episodes 10] [--keep-memory]
    python -m lram_agents.demo --model path/to/saved/agent --env CartPole-v1

Prints the parameter count, the episode returns and the per-step latency (median and p95). The zoo's
size presets are untrained (random weights) until trained weights are published; what this shows is
the recurrent inference loop and its cost per step, which does not grow with the steps taken (with
``--keep-memory`` the memory also survives episode ends, as for in-context agents).
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
import torch

import lram_agents
from lram_agents.presets import SIZES

_ZOO_PREFIX = {"xlstm": "xlstm", "transformer": "dt", "mamba": "mamba"}


def zoo_name(backbone: str, size: str, variant: str | None) -> str:
    """The zoo name of a size preset, e.g. ('xlstm', '16m', '1:0') -> 'xlstm-16m-mlstm'."""
    if variant not in (None, "7:1", "1:0") or (variant and backbone != "xlstm"):
        raise ValueError(f"variant {variant!r}: xlstm takes '7:1' (default) or '1:0'; other backbones none")
    return f"{_ZOO_PREFIX[backbone]}-{size}" + ("-mlstm" if variant == "1:0" else "")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="xlstm", choices=sorted(_ZOO_PREFIX))
    parser.add_argument("--size", default="16m", choices=SIZES)
    parser.add_argument("--variant", default=None, help="xlstm only: 7:1 (default) or 1:0")
    parser.add_argument("--model", default=None, help="a zoo name or saved directory (overrides --backbone/--size/--variant)")
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--keep-memory", action="store_true", help="keep the memory across episodes (default: the model's setting)")
    parser.add_argument("--target-return", type=float, default=None, help="default: the model's")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    name = args.model or zoo_name(args.backbone, args.size, args.variant)
    pretrained = args.model is not None  # the size presets have no trained weights yet
    agent = lram_agents.load(name, pretrained=pretrained, target_return=args.target_return, keep_memory=args.keep_memory or None)
    print(f"{name}: {agent.model.num_parameters() / 1e6:.1f}M parameters "
          f"({'trained' if pretrained else 'untrained'}), env {args.env}")
    result = lram_agents.evaluate(agent, gym.make(args.env), args.episodes, seed=0)
    lat = 1e3 * result.step_latencies
    print(result)
    print(f"returns {np.round(result.returns, 2).tolist()}")
    print(f"latency over time: first 20 steps median {np.median(lat[:20]):.2f} ms, "
          f"last 20 steps median {np.median(lat[-20:]):.2f} ms ({len(lat)} steps)")


if __name__ == "__main__":
    main()
