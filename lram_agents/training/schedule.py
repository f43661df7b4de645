"""LRAM's learning-rate schedule: linear warm-up, then cosine decay to a floor."""

from __future__ import annotations

import math

import torch


class WarmupCosine:
    """Multiplier of the peak rate at optimizer step ``step`` (0-based), for ``torch.optim.lr_scheduler.LambdaLR``.

    ``(step + 1) / warmup_steps`` during warm-up (the first update is not wasted at rate 0), then a
    cosine from 1 down to ``min_ratio`` at ``total_steps``, and ``min_ratio`` after it. A plain object
    (not a closure) so ``LambdaLR.state_dict`` saves its numbers.
    """

    def __init__(self, warmup_steps: int, total_steps: int, min_ratio: float):
        self.warmup_steps, self.total_steps, self.min_ratio = int(warmup_steps), int(total_steps), float(min_ratio)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def warmup_cosine(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, peak: float,
                  floor: float) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` from ``peak`` (the optimizer's lr) to ``floor`` (LRAM: 1e-4 -> 1e-6, 4000 warm-up steps)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(warmup_steps, total_steps, floor / peak))
