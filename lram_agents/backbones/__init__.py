"""Sequence backbones behind one interface: ``forward(x, state) -> (y, state)``.

Each backbone lives in its own module with its config dataclass beside it; this registry maps the
config's ``type`` to both, so ``config.json`` files name their backbone.
"""

from __future__ import annotations

from torch import nn

from lram_agents.backbones.base import Backbone, State
from lram_agents.backbones.mamba import MambaBackbone, MambaConfig
from lram_agents.backbones.rate import RATEBackbone, RATEConfig
from lram_agents.backbones.transformer import TransformerBackbone, TransformerConfig
from lram_agents.backbones.xlstm import XLSTMBackbone, XLSTMConfig

BACKBONES: dict[str, tuple[type, type[nn.Module]]] = {
    "xlstm": (XLSTMConfig, XLSTMBackbone),
    "transformer": (TransformerConfig, TransformerBackbone),
    "mamba": (MambaConfig, MambaBackbone),
    "rate": (RATEConfig, RATEBackbone),
}

BackboneConfig = XLSTMConfig | TransformerConfig | MambaConfig | RATEConfig


def build_backbone(config) -> nn.Module:
    """The backbone module for a backbone config."""
    return BACKBONES[config.type][1](config)


def backbone_config_class(type_name: str) -> type:
    if type_name not in BACKBONES:
        raise ValueError(f"unknown backbone type {type_name!r}; known: {sorted(BACKBONES)}")
    return BACKBONES[type_name][0]


__all__ = ["Backbone", "State", "BACKBONES", "BackboneConfig", "build_backbone", "backbone_config_class"]
