"""Fast recurrent inference: the model's step, optionally compiled and in reduced precision.

The plain path is ``model(steps, state, episode_start)``. :func:`make_step` returns a callable with
the same signature that can be

* compiled with ``torch.compile`` (one graph for a step with and one without episode starts; a
  Transformer's growing KV cache makes its shapes dynamic after the first recompilation). On this
  2-core CPU it fuses the few hundred small element-wise ops of an xLSTM step: at batch 1 the step
  goes from ~3.3x to ~1.8x the time of streaming its weights once (``benchmarks/latency.py``).
  Compiling takes tens of seconds, so it pays off for long runs. On CUDA, ``mode="reduce-overhead"``
  adds CUDA graphs.
* run with bf16 weights (``precision="bf16"``): linear layers keep bf16 weights and run under
  autocast; recurrent state and element-wise math stay fp32. It halves the bytes streamed per step;
  whether that is faster depends on the hardware (on CPUs without fast bf16 GEMV it is not).

Tests check each variant against the plain path.
"""

from __future__ import annotations

from typing import Callable, Literal

import torch
from torch import nn

from lram_agents.backbones import State
from lram_agents.model import LRAMModel, ModelOutput, Timesteps

StepFn = Callable[..., ModelOutput]
PRECISIONS = ("fp32", "bf16")


def make_step(model: LRAMModel, compile: bool = False, precision: Literal["fp32", "bf16"] = "fp32",
              mode: str | None = None) -> StepFn:
    """``step(steps, state=None, episode_start=None) -> ModelOutput``, equal to ``model(...)``.

    Args:
        compile: wrap the step in ``torch.compile``.
        precision: ``"bf16"`` converts the model's linear layers to bf16 *in place*.
        mode: ``torch.compile`` mode, e.g. ``"reduce-overhead"`` for CUDA graphs.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    step: StepFn = model
    if precision == "bf16":
        _linears_to(model, torch.bfloat16)
        step = _autocast(model, torch.bfloat16)
    if compile:
        step = torch.compile(step, mode=mode)
    return step


def _linears_to(model: nn.Module, dtype: torch.dtype) -> None:
    for module in model.modules():
        if isinstance(module, nn.Linear):
            module.to(dtype)


def _autocast(model: LRAMModel, dtype: torch.dtype) -> StepFn:
    device_type = next(model.parameters()).device.type

    def step(steps: Timesteps, state: State | None = None, episode_start: torch.Tensor | None = None) -> ModelOutput:
        with torch.autocast(device_type, dtype=dtype):
            out = model(steps, state, episode_start)
        return ModelOutput(out.logits.float(), out.state)

    return step
