"""Action loss by position in the context window: does a model use the earlier steps of its window?

A model that learns in context predicts the source algorithm's next action better the more of the
learning history it has seen, so its loss falls along the window; a model that ignores its context has
a flat curve. Windows are cut as in training (``across_episodes``, 200 steps = 2 episodes, target
return 80) from learning histories of goals none of the models trained on:

    nice -n 10 python examples/darkroom/generate_data.py examples/darkroom/source_rl.yaml --split holdout --goals 8 --output data/darkroom-holdout
    python examples/darkroom/loss_by_position.py runs/darkroom/transformer runs/darkroom/transformer-alibi

Prints the mean cross-entropy per block of ``--block`` steps and writes ``loss_by_position.png`` and
``loss_by_position.json`` into ``--output``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib
import numpy as np
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import lram_agents  # noqa: E402
from lram_agents.data.sampler import TrajectorySampler  # noqa: E402
from lram_agents.run_configs import DataConfig, build_sources  # noqa: E402
from lram_agents.serialization import atomic_write_text  # noqa: E402
from lram_agents.training import TrainerConfig  # noqa: E402


@torch.no_grad()
def loss_by_position(model_dir: Path, data: Path, context: int, block: int, batches: int, batch_size: int, seed: int,
                     keep_every: int = 10) -> list[float]:
    """Mean action cross-entropy of each block of ``block`` window positions, over ``batches`` fixed batches."""
    model = lram_agents.load(model_dir, device="cpu", compile=False).model.eval()
    entry = DataConfig(path=str(data), context=context, windows="across_episodes", target_return=80, keep_every=keep_every)
    sources = build_sources([entry], TrainerConfig(batch_size=batch_size))
    sampler = TrajectorySampler(sources, model.config, batch_size, seed=seed)  # same windows for every model
    sums, counts = np.zeros(context // block), np.zeros(context // block)
    for i in range(batches):
        for part in sampler.batch(i):
            logits = model(part.inputs).logits
            position = torch.arange(part.mask.shape[1]).expand_as(part.mask)
            for b in range(len(sums)):
                mask = part.mask & (position // block == b)
                count = int(mask.sum())
                if count:
                    sums[b] += float(model.head.loss(logits, part.actions, part.spec, mask, part.action_sizes)) * count
                    counts[b] += count
    return (sums / np.maximum(counts, 1)).tolist()


def plot(curves: dict[str, list[float]], block: int, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, losses in curves.items():
        ax.plot([block * (b + 0.5) for b in range(len(losses))], losses, marker="o", label=name)
    ax.axvline(100, color="grey", linestyle=":", linewidth=0.8)  # where the window's second episode starts
    ax.set(xlabel="position in the window (steps; two 100-step episodes)", ylabel="action cross-entropy",
           title="Dark-Room, hold-out goals: loss along the context window")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", type=Path, nargs="+", help="run directories (their model/ is loaded) or model directories")
    parser.add_argument("--data", type=Path, default=Path("data/darkroom-holdout"))
    parser.add_argument("--context", type=int, default=200, help="window length in steps (the training configs': 200)")
    parser.add_argument("--keep-every", type=int, default=10, help="downsampling of the histories (the training configs': 10)")
    parser.add_argument("--block", type=int, default=20, help="steps per reported block")
    parser.add_argument("--batches", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=Path("runs/darkroom/loss_by_position"))
    args = parser.parse_args(argv)
    if args.context % args.block:
        parser.error(f"--block {args.block} must divide --context {args.context}")
    torch.set_num_threads(1)
    curves = {}
    for run in args.runs:
        model_dir = run / "model" if (run / "model").is_dir() else run
        curves[run.name] = loss_by_position(model_dir, args.data, args.context, args.block, args.batches, args.batch_size, args.seed,
                                           args.keep_every)
    args.output.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.output / "loss_by_position.json", json.dumps({"block": args.block, "data": str(args.data), "curves": curves}, indent=2) + "\n")
    plot(curves, args.block, args.output / "loss_by_position.png")
    print("| run | " + " | ".join(f"{b * args.block}-{(b + 1) * args.block - 1}" for b in range(args.context // args.block)) + " |")
    print("|" + " --- |" * (args.context // args.block + 1))
    for name, losses in curves.items():
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in losses) + " |")


if __name__ == "__main__":
    main()
