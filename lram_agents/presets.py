"""Model-size presets reproducing the LRAM paper's Table 6 (appendix B.3).

| backbone    | 16M          | 48M           | 110M           | 206M            |
|-------------|--------------|---------------|----------------|-----------------|
| Transformer | 4 x 512, 8 h | 6 x 768, 12 h | 8 x 1024, 16 h | 10 x 1280, 20 h |
| xLSTM       | 8 x 512, 4 h | 12 x 768, 4 h | 16 x 1024, 4 h | 20 x 1280, 4 h  |
| Mamba       | 8 x 512      | 12 x 768      | 16 x 1024      | 20 x 1280       |

xLSTM and Mamba use twice the Transformer's blocks. xLSTM's [7:1] variant puts sLSTM blocks at [1],
[1, 3], [1, 3], [1, 3, 5]. Mamba keeps mamba-ssm's defaults (d_state 16, d_conv 4, expand 2); the
paper notes that it ends up with more parameters than the others. The full model is the LRAM multi-domain one: a 204-dim state encoder, an IMPALA
CNN for 1x64x64 images, and the shared 18 + 8 x 256 action head. Context: 50 timesteps (150 tokens).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from lram_agents.backbones import MambaConfig, TransformerConfig, XLSTMConfig
from lram_agents.config import LRAMConfig

SIZES = ("16m", "48m", "110m", "206m")
PAPER_PARAMETERS = {"16m": 16e6, "48m": 48e6, "110m": 110e6, "206m": 206e6}
CONTEXT_STEPS = 50  # LRAM trains on 50 timesteps

_TRANSFORMER = {"16m": (4, 512, 8), "48m": (6, 768, 12), "110m": (8, 1024, 16), "206m": (10, 1280, 20)}
_XLSTM = {"16m": (8, 512, [1]), "48m": (12, 768, [1, 3]), "110m": (16, 1024, [1, 3]), "206m": (20, 1280, [1, 3, 5])}
_MAMBA = {"16m": (8, 512), "48m": (12, 768), "110m": (16, 1024), "206m": (20, 1280)}
XLSTM_VARIANTS = ("7:1", "1:0")


def preset(backbone: str, size: str, variant: str | None = None, **overrides: Any) -> LRAMConfig:
    """The LRAM config of a Table-6 preset.

    Args:
        backbone: ``"xlstm"``, ``"transformer"`` or ``"mamba"``.
        size: one of ``SIZES``.
        variant: xLSTM only, ``"7:1"`` (default, with sLSTM blocks) or ``"1:0"`` (mLSTM only).
        overrides: fields of :class:`LRAMConfig` to change (e.g. ``image_shape=None``).
    """
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; choose from {list(SIZES)}")
    tokens = 3 * CONTEXT_STEPS
    if backbone != "xlstm" and variant is not None:
        raise ValueError(f"variant {variant!r} applies to xlstm only")
    if backbone == "transformer":
        layers, d, heads = _TRANSFORMER[size]
        backbone_cfg = TransformerConfig(d_model=d, num_layers=layers, num_heads=heads, max_positions=tokens)
    elif backbone == "xlstm":
        variant = variant or "7:1"
        if variant not in XLSTM_VARIANTS:
            raise ValueError(f"unknown xlstm variant {variant!r}; choose from {list(XLSTM_VARIANTS)}")
        blocks, d, slstm_at = _XLSTM[size]
        backbone_cfg = XLSTMConfig(
            d_model=d, num_blocks=blocks, num_heads=4, slstm_at=slstm_at if variant == "7:1" else [], context_tokens=tokens
        )
    elif backbone == "mamba":
        layers, d = _MAMBA[size]
        backbone_cfg = MambaConfig(d_model=d, num_layers=layers)
    else:
        raise ValueError(f"unknown backbone {backbone!r}; presets exist for 'xlstm', 'transformer' and 'mamba'")
    config = LRAMConfig(backbone=backbone_cfg, max_state_dim=204, image_shape=(1, 64, 64))
    return dataclasses.replace(config, **overrides) if overrides else config


def build_on_meta(config: LRAMConfig):
    """Build the model on the ``meta`` device: shapes only, no memory (for counting 206M params)."""
    import torch

    from lram_agents.model import LRAMModel

    with torch.device("meta"):
        return LRAMModel(config)
