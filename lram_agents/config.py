"""The model config: one dataclass, saved as ``config.json`` beside ``model.safetensors``."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lram_agents.backbones import BackboneConfig, backbone_config_class
from lram_agents.config_utils import ConfigError, from_dict, require


@dataclass
class LRAMConfig:
    """A large recurrent action model: encoders, a backbone and the shared action head.

    Attributes:
        backbone: the backbone's config (its ``type`` selects the backbone).
        max_state_dim: state vectors are zero-padded to this size (LRAM: 204).
        image_shape: (C, H, W) of uint8 image observations, e.g. (1, 64, 64); ``None``: no CNN.
        include_actions: add the previous action as a token (LRAM omits actions; RATE and AD use them).
        num_discrete_actions / max_action_dims / num_action_bins: the shared head (18 / 8 / 256).
    """

    backbone: BackboneConfig
    max_state_dim: int = 204
    image_shape: tuple[int, int, int] | None = None
    include_actions: bool = False
    num_discrete_actions: int = 18
    max_action_dims: int = 8
    num_action_bins: int = 256

    def __post_init__(self):
        require(hasattr(self.backbone, "type"), "backbone", self.backbone, "must be a backbone config")
        for name in ("max_state_dim", "num_discrete_actions", "max_action_dims"):
            require(getattr(self, name) >= 1, name, getattr(self, name), "must be >= 1")
        require(self.num_action_bins >= 2, "num_action_bins", self.num_action_bins, "must be >= 2")
        if self.image_shape is not None:
            self.image_shape = tuple(self.image_shape)
            ok = len(self.image_shape) == 3 and self.image_shape[0] in (1, 3) and min(self.image_shape[1:]) >= 8
            require(ok, "image_shape", self.image_shape, "must be (C, H, W) with C in {1, 3} and H, W >= 8")

    @property
    def d_model(self) -> int:
        return self.backbone.d_model

    @property
    def tokens_per_step(self) -> int:
        """Tokens per timestep: [a_{t-1}], r_{t-1}, s_t, R̂_t."""
        return 4 if self.include_actions else 3

    # ---- JSON ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["image_shape"] = list(self.image_shape) if self.image_shape is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LRAMConfig:
        if not isinstance(data, dict) or not isinstance(data.get("backbone"), dict):
            raise ConfigError("config must be a JSON object with a 'backbone' object")
        backbone = dict(data["backbone"])
        if "type" not in backbone:
            raise ConfigError("config field 'backbone.type' is missing")
        try:
            backbone_cls = backbone_config_class(backbone["type"])
        except ValueError as err:
            raise ConfigError(f"config field 'backbone.type' = {backbone['type']!r}: {err}") from None
        top = {k: v for k, v in data.items() if k != "backbone"}
        return from_dict(cls, {**top, "backbone": from_dict(backbone_cls, backbone, where=" in 'backbone'")})

    def save(self, path: str | Path) -> None:
        from lram_agents.serialization import atomic_write_text

        atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> LRAMConfig:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path} is not valid JSON: {err}") from None
        return cls.from_dict(data)
