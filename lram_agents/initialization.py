"""Named initialisations of a fresh model, chosen in a train config: ``model: {init: {...}}``.

The recurrent backbones forget at rates set by their gate biases. The ``xlstm`` package's mLSTM
forget-gate biases (3 to 6 over the heads) keep ``exp(-n·e^-b)`` of the memory after n tokens: at
b = 3 nothing survives one 300-token Dark-Room episode, at b = 6 half survives 280 tokens. A task
whose evidence lies thousands of tokens back needs larger biases at the start of training, e.g.::

    model:
      inline: {...}
      init: {mlstm_forget_bias: [8, 20], mlstm_input_bias: -4}

Every name takes a number or a list of numbers (the function's arguments after the model).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from lram_agents.config_utils import ConfigError


def _xlstm_blocks(model: nn.Module, kind: str) -> list[nn.Module]:
    stack = getattr(model.backbone, "stack", None)
    blocks = [] if stack is None else [block.xlstm for block in stack.blocks]
    found = [b for b in blocks if hasattr(b, "mlstm_cell" if kind == "mlstm" else "slstm_cell")]
    if not found:
        raise ConfigError(f"init '{kind}_*' needs {kind} blocks; the backbone is "
                          f"{getattr(model.config.backbone, 'type', '?')} without any")
    return found


def mlstm_forget_bias(model: nn.Module, low: float, high: float) -> None:
    """Forget-gate biases of every mLSTM cell spread over its heads from ``low`` to ``high`` (package: 3 to 6)."""
    for layer in _xlstm_blocks(model, "mlstm"):
        bias = layer.mlstm_cell.fgate.bias
        bias.copy_(torch.linspace(low, high, bias.numel()))


def mlstm_input_bias(model: nn.Module, bias: float) -> None:
    """Input-gate bias of every mLSTM cell (package: N(0, 0.1)): a token writes exp(bias) unless its input says more."""
    for layer in _xlstm_blocks(model, "mlstm"):
        layer.mlstm_cell.igate.bias.fill_(bias)


def slstm_forget_bias(model: nn.Module, low: float, high: float) -> None:
    """Forget-gate biases of every sLSTM cell, spread over each head's units from ``low`` to ``high``
    (package: 5 down to -7 on a power law).

    ``cell.bias`` is the package's backend-independent view, (heads, gates i/f/z/o, head_dim).
    """
    for layer in _xlstm_blocks(model, "slstm"):
        cell = layer.slstm_cell
        heads, _, head_dim = cell.bias.shape
        cell.bias[:, 1, :] = torch.linspace(low, high, head_dim).expand(heads, head_dim)


def mamba_dt_range(model: nn.Module, low: float, high: float) -> None:
    """Mamba step sizes Δ log-uniform in [low, high] (mamba-ssm: [1e-3, 1e-1]); a small Δ decays the state
    slowly (exp(-Δ·A) per token) and writes little."""
    layers = getattr(model.backbone, "layers", None)
    if layers is None or not all(hasattr(layer.mixer, "dt_proj") for layer in layers):
        raise ConfigError(f"init 'mamba_dt_range' needs a mamba backbone, not {model.config.backbone.type}")
    for layer in layers:
        bias = layer.mixer.dt_proj.bias
        dt = torch.exp(torch.rand(bias.numel()) * (math.log(high) - math.log(low)) + math.log(low))
        bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # the inverse of softplus


INITS: dict[str, Callable[..., None]] = {
    "mlstm_forget_bias": mlstm_forget_bias,
    "mlstm_input_bias": mlstm_input_bias,
    "slstm_forget_bias": slstm_forget_bias,
    "mamba_dt_range": mamba_dt_range,
}


def check_init(settings: dict[str, Any]) -> None:
    """Raise :class:`ConfigError` naming an unknown init or a value that is not numbers."""
    unknown = sorted(set(settings) - set(INITS))
    if unknown:
        raise ConfigError(f"config field 'init' has unknown names {unknown}; known: {sorted(INITS)}")
    for name, value in settings.items():
        args = value if isinstance(value, list) else [value]
        if not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
            raise ConfigError(f"config field 'init.{name}' = {value!r}: give a number or a list of numbers")


@torch.no_grad()
def apply_init(model: nn.Module, settings: dict[str, Any]) -> None:
    """Apply named initialisations to a fresh model, e.g. ``{"mlstm_forget_bias": [8, 20]}``."""
    check_init(settings)
    for name, value in settings.items():
        args = value if isinstance(value, list) else [value]
        try:
            INITS[name](model, *args)
        except TypeError as err:
            raise ConfigError(f"config field 'init.{name}' = {value!r}: {err}") from None
