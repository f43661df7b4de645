"""The LRAM sequence model: per-modality encoders, a backbone and an action head.

Token layout. The papers' stream is ``s_1, R̂_1, r_1, s_2, R̂_2, r_2, ...`` (optionally with a_t after
R̂_t). We group it by what is known when an action is chosen, so every timestep holds (default
``token_layout="lram"``)

    [a_{t-1}], r_{t-1}, s_t, R̂_t        (r_0 = 0 and a_0 = "none" at a fresh start)

and the action a_t is predicted from the output at the R̂_t token, the last of the group. Training on
T timesteps and acting one timestep at a time therefore run the same token stream: inference feeds
one group per call (one chunk, one state update). The other layouts follow the same rule (see
``config.TOKEN_LAYOUTS``): RATE's triplets (R̂_t, o_t, a_t) become ``a_{t-1}, R̂_t, o_t`` with the action
read at the observation token; Algorithm Distillation uses ``a_{t-1}, r_{t-1}, s_t`` or one token per
transition (s_{t-1}, a_{t-1}, r_{t-1}, s_t), the four embeddings concatenated and projected.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from lram_agents.action_head import ActionHead, RegressionHead
from lram_agents.backbones import State, build_backbone
from lram_agents.backbones.base import keep_rows
from lram_agents.config import LRAMConfig
from lram_agents.encoders import IMAGE_ENCODERS, ActionEncoder, ScalarEncoder, VectorEncoder
from lram_agents.lora import add_lora


@dataclass
class Timesteps:
    """Model inputs for T timesteps of B sequences; every tensor is (B, T, ...).

    Which fields a model takes is ``config.input_fields`` (the others must be None); the default
    ``"lram"`` layout takes states, returns_to_go, prev_rewards and, with ``include_actions``, prev_actions.

    Attributes:
        states: (B, T, S) float state vectors (S <= max_state_dim) or (B, T, C, H, W) uint8 images.
        returns_to_go: (B, T) return-to-go R̂_t, divided by the reward scale.
        prev_rewards: (B, T) reward r_{t-1} received before s_t, divided by the reward scale.
        prev_actions: a_{t-1}; (B, T) ints (``no_action`` at a start) or (B, T, A) floats in [-1, 1].
        prev_states: s_{t-1}, shaped like ``states`` (the transition token only). At an episode's first
            step, pass zeros with ``no_action`` and r = 0, or the previous episode's last transition
            (keeps its final reward in a cross-episode context); train and act the same way.
    """

    states: torch.Tensor
    returns_to_go: torch.Tensor | None = None
    prev_rewards: torch.Tensor | None = None
    prev_actions: torch.Tensor | None = None
    prev_states: torch.Tensor | None = None

    @property
    def batch_shape(self) -> tuple[int, int]:
        return tuple(self.states.shape[:2])

    def map(self, fn) -> Timesteps:
        """A Timesteps with ``fn`` applied to every tensor (None fields stay None)."""
        return Timesteps(**{f.name: None if (t := getattr(self, f.name)) is None else fn(t) for f in dataclasses.fields(self)})

    def to(self, device: torch.device | str) -> Timesteps:
        return self.map(lambda t: t.to(device))


class ModelOutput(NamedTuple):
    # the head's pre-activation output: (B, T, num_discrete + max_dims * num_bins) logits for the binned
    # head, (B, T, max_dims) pre-tanh action means for the regression head; use ``model.head`` to decode
    logits: torch.Tensor
    state: State


def dense(state: State) -> State:
    """``state`` with every tensor contiguous (a no-op for those that are).

    Every state a step takes and returns has one memory layout. A compiled step is specialised on its inputs'
    strides, and backbones return parts of their state sliced out of larger tensors (conv windows, Mamba's last
    scan state, the xLSTM's stabiliser) or expanded (RATE's initial memory): the second step from
    :meth:`LRAMModel.init_state` would then be a second graph, compiled again at the same shapes. Dynamo's guards
    compare every stride, also those of dimensions of size 1 that ``contiguous()`` ignores (at batch 1 a conv window
    sliced from a larger tensor "is contiguous" with another batch stride): those get the standard strides as a view.
    """
    return {name: _standard_strides(tensor) for name, tensor in state.items()}


def _standard_strides(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` with the strides ``torch.empty(tensor.shape)`` has: a view where only size-1 dimensions differ."""
    strides, step = [], 1
    for size in reversed(tensor.shape):
        strides.append(step)
        step *= max(size, 1)
    strides.reverse()
    if tensor.stride() == tuple(strides):
        return tensor
    if tensor.is_contiguous():  # only dimensions of size 1 differ: the same elements at the same addresses
        return tensor.as_strided(tensor.shape, strides)
    return tensor.contiguous()


class LRAMModel(nn.Module):
    """Encoders + backbone + action head. See the module docstring for the token layouts."""

    def __init__(self, config: LRAMConfig):
        super().__init__()
        self.config = config
        d = config.d_model
        self.state_encoder = VectorEncoder(config.max_state_dim, d)
        self.image_encoder = IMAGE_ENCODERS[config.image_encoder](config.image_shape, d) if config.image_shape is not None else None
        self.return_encoder = ScalarEncoder(d) if config.needs_returns_to_go else None
        self.reward_encoder = ScalarEncoder(d) if config.needs_prev_rewards else None
        self.action_encoder = (
            ActionEncoder(config.num_discrete_actions, config.max_action_dims, d) if config.needs_prev_actions else None
        )
        self.transition_proj = nn.Linear(4 * d, d) if config.needs_prev_states else None
        self.embed_norm = nn.LayerNorm(d)
        self.backbone = build_backbone(config.backbone)
        if config.action_head == "regression":
            self.head = RegressionHead(d, config.max_action_dims)
        else:
            self.head = ActionHead(d, config.num_discrete_actions, config.max_action_dims, config.num_action_bins)
        if config.lora is not None:
            add_lora(self.backbone, config.lora)

    # ---- tokens ----------------------------------------------------------------------------------
    def embed(self, steps: Timesteps) -> torch.Tensor:
        """(B, T*K, D) tokens, K = ``config.tokens_per_step``, in the order of ``config.tokens``.

        In training mode, ``config.token_noise_std`` Gaussian noise is added to every token.
        """
        self._check(steps)
        B, T = steps.batch_shape
        tokens = torch.stack([self._token(name, steps) for name in self.config.tokens], dim=2)
        x = self.embed_norm(tokens).reshape(B, T * self.config.tokens_per_step, -1)
        if self.training and self.config.token_noise_std > 0:
            x = x + self.config.token_noise_std * torch.randn_like(x)
        return x

    def _token(self, name: str, steps: Timesteps) -> torch.Tensor:
        """The (B, T, D) embeddings of one token of the layout."""
        if name == "state":
            return self._encode_states(steps.states)
        if name == "return_to_go":
            return self.return_encoder(steps.returns_to_go)
        if name == "prev_reward":
            return self.reward_encoder(steps.prev_rewards)
        if name == "prev_action":
            return self.action_encoder(steps.prev_actions)
        parts = [  # the transition (s_{t-1}, a_{t-1}, r_{t-1}, s_t) as one token
            self._encode_states(steps.prev_states),
            self.action_encoder(steps.prev_actions),
            self.reward_encoder(steps.prev_rewards),
            self._encode_states(steps.states),
        ]
        return self.transition_proj(torch.cat(parts, dim=-1))

    def _encode_states(self, states: torch.Tensor) -> torch.Tensor:
        if states.dtype == torch.uint8:
            if self.image_encoder is None:
                raise ValueError("got uint8 image states but the model has no image encoder (config.image_shape is None)")
            return self.image_encoder(states)
        return self.state_encoder(states)

    def _check(self, steps: Timesteps) -> None:
        if steps.states.dim() < 3:
            raise ValueError(f"Timesteps.states must be (B, T, ...), got shape {tuple(steps.states.shape)}")
        shape, wanted = steps.batch_shape, self.config.input_fields
        for f in dataclasses.fields(steps):
            t = getattr(steps, f.name)
            if (t is not None) != (f.name in wanted):
                need = "needs" if f.name in wanted else "does not take"
                raise ValueError(
                    f"this model {need} Timesteps.{f.name} (token_layout={self.config.token_layout!r}, "
                    f"include_actions={self.config.include_actions}; it takes {list(wanted)})"
                )
            if t is not None and (t.dim() < 2 or tuple(t.shape[:2]) != shape):
                raise ValueError(f"Timesteps.{f.name} has shape {tuple(t.shape)}; expected leading (B, T) = {shape}")
        for name in ("returns_to_go", "prev_rewards"):
            t = getattr(steps, name)
            if t is not None and t.dim() != 2:
                raise ValueError(f"Timesteps.{name} must be (B, T), got shape {tuple(t.shape)}")
        if steps.prev_states is not None and steps.prev_states.shape != steps.states.shape:
            raise ValueError(f"Timesteps.prev_states has shape {tuple(steps.prev_states.shape)}; expected states' {tuple(steps.states.shape)}")

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
        action_tokens = y.reshape(B, T, self.config.tokens_per_step, -1)[:, :, -1]  # output at the last token
        return ModelOutput(self.head(action_tokens), dense(state))

    def init_state(self, batch_size: int, device=None, dtype=None) -> State:
        """The empty recurrent state (or KV cache) for ``batch_size`` sequences."""
        return dense(self.backbone.init_state(batch_size, device, dtype))

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
