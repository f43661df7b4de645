"""Training speed of each backbone against the Transformer's, at equal size and tokens.

    lram bench training                                       # both scales, ~8 minutes on a 2-core CPU
    lram bench training --scales darkroom --rounds 5          # or: python benchmarks/training_speed.py ...

One training step is the trainer's: forward + backward + AdamW on the backbone (within
:func:`~lram_agents.backbones.base.final_state_unread`, as the trainer: the state after the window is not computed
where a backbone can skip it), over a batch of random token embeddings (the token encoders and heads are the same for every backbone, so they are
left out). All backbones of a scale live in one process and their steps are *interleaved*: round r
runs one step of each, so noise from the shared machine falls on all of them alike. Per backbone the
median over rounds is reported, CPU time (``time.process_time``, the process's own work) beside wall
time, and the ratio to the Transformer's step in the same run.

``xlstm-1:0``, ``xlstm-7:1`` and ``mamba`` run with ``kernel="compiled"`` (their recurrences through ``torch.compile``;
the first steps, untimed, compile them); ``*-plain`` rows are the same models on the plain eager path.

Scales: ``darkroom`` is the Dark-Room comparison of the zoo (d_model 64, batch 16 x 600 tokens: 200
timesteps of 3 tokens); ``16m`` are LRAM's Table-6 16M presets at LRAM's context (batch 8 x 150 tokens).
Writes ``training_speed.csv`` and ``training_speed.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from lram_agents.backbones import build_backbone
from lram_agents.backbones.base import final_state_unread
from lram_agents.backbones.mamba import MambaConfig
from lram_agents.backbones.transformer import TransformerConfig
from lram_agents.backbones.xlstm import XLSTMConfig
from lram_agents.presets import preset


def darkroom_backbones() -> dict[str, object]:
    """The backbones of the zoo's Dark-Room comparison (examples/darkroom/train_*.yaml)."""
    return {
        "transformer": TransformerConfig(d_model=64, num_layers=2, num_heads=4, max_positions=600),
        "xlstm-1:0": XLSTMConfig(d_model=64, num_blocks=4, num_heads=4, context_tokens=600, kernel="compiled"),
        "xlstm-7:1": XLSTMConfig(d_model=64, num_blocks=4, num_heads=4, slstm_at=[1], context_tokens=600, kernel="compiled"),
        "mamba": MambaConfig(d_model=64, num_layers=4, d_state=8, expand=2, kernel="compiled"),
        "xlstm-1:0-plain": XLSTMConfig(d_model=64, num_blocks=4, num_heads=4, context_tokens=600),
        "xlstm-7:1-plain": XLSTMConfig(d_model=64, num_blocks=4, num_heads=4, slstm_at=[1], context_tokens=600),
        "mamba-plain": MambaConfig(d_model=64, num_layers=4, d_state=8, expand=2),
    }


def preset_backbones(size: str = "16m") -> dict[str, object]:
    """LRAM's Table-6 presets of one size."""
    return {
        "transformer": preset("transformer", size).backbone,
        "xlstm-1:0": dataclasses.replace(preset("xlstm", size, "1:0").backbone, kernel="compiled"),
        "xlstm-7:1": dataclasses.replace(preset("xlstm", size, "7:1").backbone, kernel="compiled"),
        "mamba": dataclasses.replace(preset("mamba", size).backbone, kernel="compiled"),
        "xlstm-1:0-plain": preset("xlstm", size, "1:0").backbone,
        "xlstm-7:1-plain": preset("xlstm", size, "7:1").backbone,
        "mamba-plain": preset("mamba", size).backbone,
    }


SCALES = {"darkroom": (darkroom_backbones, 16, 600), "16m": (lambda: preset_backbones("16m"), 8, 150)}


@dataclass
class Row:
    scale: str
    backbone: str
    parameters: int
    batch: int
    tokens: int
    cpu_ms: float
    wall_ms: float
    ratio_cpu: float = float("nan")  # to the Transformer's CPU time in the same run
    ratio_wall: float = float("nan")

    @property
    def tokens_per_s(self) -> float:
        return self.batch * self.tokens * 1e3 / self.cpu_ms


class StepTimer:
    """One backbone with its optimizer and a fixed random batch."""

    def __init__(self, config, batch: int, tokens: int, seed: int = 0, device: str = "cpu"):
        torch.manual_seed(seed)
        self.backbone = build_backbone(config).train().to(device)
        self.optimizer = torch.optim.AdamW(self.backbone.parameters(), lr=1e-4, weight_decay=0.01)
        self.inputs = torch.randn(batch, tokens, self.backbone.d_model, device=device)
        self.sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
        self.cpu: list[float] = []
        self.wall: list[float] = []

    def step(self, timed: bool = True) -> None:
        cpu, wall = time.process_time(), time.perf_counter()
        with final_state_unread():  # as the trainer's step: the loss reads the outputs only
            y, _ = self.backbone(self.inputs)
        y.square().mean().backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.sync()  # on CUDA, wall time is the measure (CPU time counts only the host's work)
        if timed:
            self.cpu.append((time.process_time() - cpu) * 1e3)
            self.wall.append((time.perf_counter() - wall) * 1e3)

    @property
    def parameters(self) -> int:
        return sum(p.numel() for p in self.backbone.parameters())


def measure_scale(scale: str, rounds: int, warmup: int, names: list[str] | None = None, progress=None,
                  device: str = "cpu") -> list[Row]:
    """Interleaved steps of every backbone of ``scale``; rows with ratios to the Transformer's."""
    make_configs, batch, tokens = SCALES[scale]
    # forget the graphs compiled for another scale: a compiled kernel that meets a second shape is recompiled for
    # dynamic shapes, which are slower (a training run keeps its shapes; a benchmark of two scales would not)
    torch._dynamo.reset()
    configs = {n: c for n, c in make_configs().items() if names is None or n in names or n == "transformer"}
    timers = {name: StepTimer(config, batch, tokens, device=device) for name, config in configs.items()}
    for _ in range(warmup):
        for timer in timers.values():
            timer.step(timed=False)
    for _ in range(rounds):
        for timer in timers.values():
            timer.step()
        if progress:
            progress()
    rows = [
        Row(scale, name, t.parameters, batch, tokens, statistics.median(t.cpu), statistics.median(t.wall))
        for name, t in timers.items()
    ]
    reference = next(r for r in rows if r.backbone == "transformer")
    for row in rows:
        row.ratio_cpu = row.cpu_ms / reference.cpu_ms
        row.ratio_wall = row.wall_ms / reference.wall_ms
    return rows


def markdown(rows: list[Row], threads: int) -> str:
    lines = [
        f"Training step (forward + backward + AdamW, backbone only), {threads} thread(s), median of interleaved rounds.",
        "",
        "| scale | backbone | params | batch x tokens | CPU ms/step | wall ms/step | tokens/s (CPU) | x Transformer (CPU) | x Transformer (wall) |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.scale} | {r.backbone} | {r.parameters / 1e6:.3g}M | {r.batch} x {r.tokens} | {r.cpu_ms:.1f} | "
            f"{r.wall_ms:.1f} | {r.tokens_per_s:,.0f} | {r.ratio_cpu:.2f} | {r.ratio_wall:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None, prog: str | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", nargs="*", default=list(SCALES), choices=list(SCALES))
    parser.add_argument("--backbones", nargs="*", default=None, help="subset (the Transformer always runs)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (on CUDA compare the wall-time column)")
    parser.add_argument("--out", type=Path, default=Path("runs/benchmark"))
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be >= 1, got {args.rounds}")
    torch.set_num_threads(args.threads)
    rows: list[Row] = []
    with tqdm(total=args.rounds * len(args.scales), desc="training speed") as bar:
        for scale in args.scales:
            rows += measure_scale(scale, args.rounds, args.warmup, args.backbones, progress=bar.update, device=args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    table = markdown(rows, args.threads)
    (args.out / "training_speed.md").write_text(table)
    with open(args.out / "training_speed.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*Row.__dataclass_fields__, "tokens_per_s"])
        for r in rows:
            writer.writerow([*(getattr(r, k) for k in Row.__dataclass_fields__), r.tokens_per_s])
    print(table)
    return rows


if __name__ == "__main__":
    main()
