"""The LRAM sequence model: per-modality encoders, a backbone and the shared action head.

Token layout. The papers' stream is ``s_1, R̂_1, r_1, s_2, R̂_2, r_2, ...`` (optionally with a_t after
R̂_t). We group it by what is known when an action is chosen, so every timestep holds

    [a_{t-1}], r_{t-1}, s_t, R̂_t        (r_0 = 0 and a_0 = "none" at a fresh start)

and the action a_t is predicted from the output at the R̂_t token, the last of the group. Training on
T timesteps and acting one timestep at a time therefore run the same token stream: inference feeds
one group per call (one chunk, one state update).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from lram_agents.action_head import ActionHead
from lram_agents.backbones import State, build_backbone
from lram_agents.backbones.base import keep_rows
from lram_agents.config import LRAMConfig
from lram_agents.encoders import ActionEncoder, ImpalaCNN, ScalarEncoder, VectorEncoder


@dataclass
class Timesteps:
    """Model inputs for T timesteps of B sequences; every tensor is (B, T, ...).

    Attributes:
        states: (B, T, S) float state vectors (S <= max_state_dim) or (B, T, C, H, W) uint8 images.
        returns_to_go: (B, T) return-to-go R̂_t, divided by the reward scale.
        prev_rewards: (B, T) reward r_{t-1} received before s_t, divided by the reward scale.
        prev_actions: a_{t-1}; (B, T) ints (``no_action`` at a start) or (B, T, A) floats in [-1, 1].
            Required iff the config has ``include_actions``.
    """

    states: torch.Tensor
    returns_to_go: torch.Tensor
    prev_rewards: torch.Tensor
    prev_actions: torch.Tensor | None = None

    @property
    def batch_shape(self) -> tuple[int, int]:
        return tuple(self.returns_to_go.shape[:2])

    def to(self, device: torch.device | str) -> Timesteps:
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return Timesteps(move(self.states), move(self.returns_to_go), move(self.prev_rewards), move(self.prev_actions))


class ModelOutput(NamedTuple):
    logits: torch.Tensor  # (B, T, num_discrete + max_dims * num_bins)
    state: State


class LRAMModel(nn.Module):
    """Encoders + backbone + shared action head. See the module docstring for the token layout."""

    def __init__(self, config: LRAMConfig):
        super().__init__()
        self.config = config
        d = config.d_model
        self.state_encoder = VectorEncoder(config.max_state_dim, d)
        self.image_encoder = ImpalaCNN(config.image_shape, d) if config.image_shape is not None else None
        self.return_encoder = ScalarEncoder(d)
        self.reward_encoder = ScalarEncoder(d)
        self.action_encoder = (
            ActionEncoder(config.num_discrete_actions, config.max_action_dims, d) if config.include_actions else None
        )
        self.embed_norm = nn.LayerNorm(d)
        self.backbone = build_backbone(config.backbone)
        self.head = ActionHead(d, config.num_discrete_actions, config.max_action_dims, config.num_action_bins)

    # ---- tokens ----------------------------------------------------------------------------------
    def embed(self, steps: Timesteps) -> torch.Tensor:
        """(B, T*K, D) tokens, K = ``config.tokens_per_step``, in the order of the module docstring."""
        self._check(steps)
        B, T = steps.batch_shape
        tokens = [self.reward_encoder(steps.prev_rewards), self._encode_states(steps.states), self.return_encoder(steps.returns_to_go)]
        if self.action_encoder is not None:
            tokens.insert(0, self.action_encoder(steps.prev_actions))
        return self.embed_norm(torch.stack(tokens, dim=2)).reshape(B, T * len(tokens), -1)

    def _encode_states(self, states: torch.Tensor) -> torch.Tensor:
        if states.dtype == torch.uint8:
            if self.image_encoder is None:
                raise ValueError("got uint8 image states but the model has no image encoder (config.image_shape is None)")
            return self.image_encoder(states)
        return self.state_encoder(states)

    def _check(self, steps: Timesteps) -> None:
        shape = steps.batch_shape
        for name in ("states", "returns_to_go", "prev_rewards"):
            t = getattr(steps, name)
            if t.dim() < 2 or tuple(t.shape[:2]) != shape:
                raise ValueError(f"Timesteps.{name} has shape {tuple(t.shape)}; expected leading (B, T) = {shape}")
        for name in ("returns_to_go", "prev_rewards"):
            if getattr(steps, name).dim() != 2:
                raise ValueError(f"Timesteps.{name} must be (B, T), got shape {tuple(getattr(steps, name).shape)}")
        if (steps.prev_actions is None) == self.config.include_actions:
            need = "needs" if self.config.include_actions else "does not take"
            raise ValueError(f"this model {need} prev_actions (config.include_actions={self.config.include_actions})")

    # ---- forward ---------------------------------------------------------------------------------
    def forward(self, steps: Timesteps, state: State | None = None, episode_start: torch.Tensor | None = None) -> ModelOutput:
        """Action logits for every timestep, and the state after the last one.

        ``state=None`` starts empty. ``episode_start`` (B,) bool empties those rows' state first
        (only meaningful when stepping: the mask applies before the first of the T timesteps).
        """
        B, T = steps.batch_shape
        tokens = self.embed(steps)
        if episode_start is not None:
            state = self.backbone.reset_state(state if state is not None else self.init_state(B), episode_start)
        y, state = self.backbone(tokens, state)
        action_tokens = y.view(B, T, self.config.tokens_per_step, -1)[:, :, -1]  # output at R̂_t
        return ModelOutput(self.head(action_tokens), state)

    def init_state(self, batch_size: int, device=None, dtype=None) -> State:
        """The empty recurrent state (or KV cache) for ``batch_size`` sequences."""
        return self.backbone.init_state(batch_size, device, dtype)

    def reset_state(self, state: State, mask: torch.Tensor) -> State:
        """Empty the rows of ``mask`` (True where an episode starts and memory is not kept)."""
        return self.backbone.reset_state(state, mask)

    def keep_rows(self, old: State, new: State, mask: torch.Tensor) -> State:
        """``new`` with the rows of ``mask`` back at ``old``: those rows did not step (their input was ignored)."""
        keep = getattr(self.backbone, "keep_rows", None)
        return keep(old, new, mask) if keep is not None else keep_rows(old, new, mask)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # ---- persistence -----------------------------------------------------------------------------
    def save_pretrained(self, directory: str | Path) -> None:
        """Write ``config.json`` and ``model.safetensors`` into ``directory`` (atomically)."""
        from lram_agents.serialization import save_model

        save_model(self, directory)

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str | torch.device = "cpu") -> LRAMModel:
        from lram_agents.serialization import load_model

        return load_model(directory, device=device)
