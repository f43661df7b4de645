"""The model config: one dataclass, saved as ``config.json`` beside ``model.safetensors``."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lram_agents.backbones import BackboneConfig, backbone_config_class
from lram_agents.config_utils import ConfigError, from_dict, require
from lram_agents.lora import LoRAConfig


# The tokens of one timestep, in order; the action a_t is read from the output at the last one.
TOKEN_LAYOUTS: dict[str, tuple[str, ...]] = {
    "lram": ("prev_reward", "state", "return_to_go"),  # LRAM: r_{t-1}, s_t, R̂_t (a_{t-1} first if include_actions)
    "rate": ("prev_action", "return_to_go", "state"),  # RATE / DT triplets (R̂, o, a), grouped as a_{t-1}, R̂_t, o_t
    "ad": ("prev_action", "prev_reward", "state"),  # Algorithm Distillation, one token per modality
    "transition": ("transition",),  # Algorithm Distillation, one token for (s_{t-1}, a_{t-1}, r_{t-1}, s_t)
}
# the Timesteps fields each token is made of
TOKEN_INPUTS: dict[str, tuple[str, ...]] = {
    "prev_action": ("prev_actions",),
    "prev_reward": ("prev_rewards",),
    "state": ("states",),
    "return_to_go": ("returns_to_go",),
    "transition": ("prev_states", "prev_actions", "prev_rewards", "states"),
}


@dataclass
class LRAMConfig:
    """A large recurrent action model: encoders, a backbone and the shared action head.

    Attributes:
        backbone: the backbone's config (its ``type`` selects the backbone).
        max_state_dim: state vectors are zero-padded to this size (LRAM: 204).
        image_shape: (C, H, W) of uint8 image observations, e.g. (1, 64, 64); ``None``: no CNN.
        image_encoder: ``"impala"`` (LRAM's IMPALA CNN) or ``"nature"`` (the DQN CNN, ~20x cheaper: for
            CPU-sized runs of the image domains).
        include_actions: feed the previous action a_{t-1}. An option of the ``"lram"`` layout (LRAM
            omits actions); the other layouts always feed it and require ``True``.
        token_layout: the tokens of a timestep (see ``TOKEN_LAYOUTS``): ``"lram"`` ([a_{t-1}],
            r_{t-1}, s_t, R̂_t), ``"rate"`` (a_{t-1}, R̂_t, s_t), ``"ad"`` (a_{t-1}, r_{t-1}, s_t) or
            ``"transition"`` (one token of s_{t-1}, a_{t-1}, r_{t-1}, s_t). The action is always read
            from the output at the timestep's last token.
        action_head: ``"binned"`` (the shared 18 + 8 x 256 classes, cross entropy) or ``"regression"``
            (continuous actions, tanh-squashed, mean squared error; Algorithm Distillation with Mamba).
        token_noise_std: std of isotropic Gaussian noise added to the input tokens while training
            (AD with Mamba adds "a small amount"); never applied in eval mode.
        num_discrete_actions / max_action_dims / num_action_bins: the shared head (18 / 8 / 256).
        lora: LoRA adapters on the backbone's linear layers (parameter-efficient fine-tuning, see
            :mod:`lram_agents.lora`); ``None``: a plain model.
    """

    backbone: BackboneConfig
    max_state_dim: int = 204
    image_shape: tuple[int, int, int] | None = None
    image_encoder: Literal["impala", "nature"] = "impala"
    include_actions: bool = False
    num_discrete_actions: int = 18
    max_action_dims: int = 8
    num_action_bins: int = 256
    token_layout: Literal["lram", "rate", "ad", "transition"] = "lram"
    action_head: Literal["binned", "regression"] = "binned"
    token_noise_std: float = 0.0
    lora: LoRAConfig | None = None

    def __post_init__(self):
        require(hasattr(self.backbone, "type"), "backbone", self.backbone, "must be a backbone config")
        require(self.token_layout in TOKEN_LAYOUTS, "token_layout", self.token_layout, f"must be one of {sorted(TOKEN_LAYOUTS)}")
        require(
            self.include_actions or self.token_layout == "lram", "include_actions", self.include_actions,
            f"token_layout {self.token_layout!r} always feeds the previous action; set include_actions=True",
        )
        require(self.action_head in ("binned", "regression"), "action_head", self.action_head, "must be 'binned' or 'regression'")
        require(self.token_noise_std >= 0, "token_noise_std", self.token_noise_std, "must be >= 0")
        if isinstance(self.lora, dict):  # from JSON
            self.lora = from_dict(LoRAConfig, self.lora, where=" in 'lora'")
        require(self.lora is None or isinstance(self.lora, LoRAConfig), "lora", self.lora, "must be a LoRAConfig, a mapping or None")
        segment = getattr(self.backbone, "segment_tokens", None)  # segment-wise backbones (RATE)
        require(
            segment is None or segment % self.tokens_per_step == 0, "backbone.segment_tokens", segment,
            f"must hold whole timesteps of {self.tokens_per_step} tokens (token_layout={self.token_layout!r}, "
            f"include_actions={self.include_actions})",
        )
        for name in ("max_state_dim", "num_discrete_actions", "max_action_dims"):
            require(getattr(self, name) >= 1, name, getattr(self, name), "must be >= 1")
        require(self.num_action_bins >= 2, "num_action_bins", self.num_action_bins, "must be >= 2")
        require(self.image_encoder in ("impala", "nature"), "image_encoder", self.image_encoder, "must be 'impala' or 'nature'")
        if self.image_shape is not None:
            self.image_shape = tuple(self.image_shape)
            ok = len(self.image_shape) == 3 and self.image_shape[0] in (1, 3) and min(self.image_shape[1:]) >= 8
            require(ok, "image_shape", self.image_shape, "must be (C, H, W) with C in {1, 3} and H, W >= 8")

    @property
    def d_model(self) -> int:
        return self.backbone.d_model

    @property
    def tokens(self) -> tuple[str, ...]:
        """The token names of one timestep, in order (the action is read at the last)."""
        layout = TOKEN_LAYOUTS[self.token_layout]
        return ("prev_action", *layout) if self.token_layout == "lram" and self.include_actions else layout

    @property
    def tokens_per_step(self) -> int:
        return len(self.tokens)

    @property
    def segment_steps(self) -> int | None:
        """Timesteps per segment K of a segment-wise backbone (RATE), else None."""
        segment = getattr(self.backbone, "segment_tokens", None)
        return None if segment is None else segment // self.tokens_per_step

    @property
    def input_fields(self) -> tuple[str, ...]:
        """The :class:`~lram_agents.model.Timesteps` fields this model takes (the others must be None)."""
        fields = [f for token in self.tokens for f in TOKEN_INPUTS[token]]
        return tuple(dict.fromkeys(fields))

    @property
    def needs_prev_actions(self) -> bool:
        """Whether ``Timesteps.prev_actions`` (a_{t-1}) is required (equal to ``include_actions``)."""
        return "prev_actions" in self.input_fields

    @property
    def needs_prev_rewards(self) -> bool:
        return "prev_rewards" in self.input_fields

    @property
    def needs_returns_to_go(self) -> bool:
        return "returns_to_go" in self.input_fields

    @property
    def needs_prev_states(self) -> bool:
        """Whether ``Timesteps.prev_states`` (s_{t-1}, for the transition token) is required."""
        return "prev_states" in self.input_fields

    # ---- JSON ----------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["image_shape"] = list(self.image_shape) if self.image_shape is not None else None
        if self.lora is None:
            del data["lora"]  # plain models keep the config.json they had before adapters existed
        if self.image_encoder == "impala":
            del data["image_encoder"]  # likewise for models with LRAM's CNN
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
