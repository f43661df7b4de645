"""GPT-2 style causal Transformer (the Decision-Transformer baseline) with a KV cache.

Training runs the whole sequence with a causal mask. Inference appends each timestep's tokens to a
per-layer key/value cache, so cached keys are never recomputed. Episode starts are handled per row
without touching the cache: a row's ``start`` index hides everything before it and its positions
restart at 0. When the cache is full, the oldest half is dropped and the kept tokens are re-encoded
with fresh positions (a sliding window whose cost is amortised over ``max_positions / 2`` steps),
which matches how the model was trained: on windows whose positions start at 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from lram_agents.backbones.base import State, check_reset_mask
from lram_agents.config_utils import require


@dataclass
class TransformerConfig:
    """Hyper-parameters of the causal Transformer (LRAM Table 6 names: layers, hidden dim, heads)."""

    d_model: int = 512
    num_layers: int = 4
    num_heads: int = 8
    mlp_ratio: int = 4
    max_positions: int = 1024  # tokens; the KV cache holds at most this many
    position_embedding: Literal["learned", "sinusoidal"] = "learned"
    dropout: float = 0.0  # LRAM disables dropout for DT (appendix D.2)
    type: Literal["transformer"] = "transformer"

    def __post_init__(self):
        require(self.type == "transformer", "type", self.type, "must be 'transformer'")
        for name in ("d_model", "num_layers", "num_heads", "mlp_ratio"):
            require(getattr(self, name) >= 1, name, getattr(self, name), "must be >= 1")
        require(self.max_positions >= 2, "max_positions", self.max_positions, "must be >= 2")
        require(self.d_model % self.num_heads == 0, "d_model", self.d_model, f"must be divisible by num_heads={self.num_heads}")
        require(self.position_embedding in ("learned", "sinusoidal"), "position_embedding", self.position_embedding, "must be 'learned' or 'sinusoidal'")
        require(0.0 <= self.dropout < 1.0, "dropout", self.dropout, "must be in [0, 1)")


class _Block(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.heads = cfg.num_heads
        self.dropout = cfg.dropout
        self.ln_1 = nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.ln_2 = nn.LayerNorm(cfg.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.d_model, cfg.mlp_ratio * cfg.d_model),
            nn.GELU(),
            nn.Linear(cfg.mlp_ratio * cfg.d_model, cfg.d_model),
            nn.Dropout(cfg.dropout),
        )

    def forward(self, h, past_k=None, past_v=None, mask=None):
        """h: (B, L, D). With a cache, ``mask`` (B, 1, L, N+L) says which keys each query sees."""
        B, L, D = h.shape
        q, k, v = self.qkv(self.ln_1(h)).split(D, dim=-1)
        q, k, v = (t.view(B, L, self.heads, -1).transpose(1, 2) for t in (q, k, v))  # (B, H, L, Dh)
        if past_k is not None:
            k, v = torch.cat([past_k, k], dim=2), torch.cat([past_v, v], dim=2)
        p = self.dropout if self.training else 0.0
        if mask is None:
            att = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p)
        else:
            att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        h = h + F.dropout(self.proj(att.transpose(1, 2).reshape(B, L, D)), p, self.training)
        return h + self.mlp(self.ln_2(h)), k, v


class TransformerBackbone(nn.Module):
    """Causal Transformer with global position embeddings and a per-row KV cache."""

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        self.d_model = config.d_model
        if config.position_embedding == "learned":
            self.pos_emb = nn.Embedding(config.max_positions, config.d_model)
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.num_layers))
        self.ln_f = nn.LayerNorm(config.d_model)
        self.apply(_init_weights)

    # ---- state ---------------------------------------------------------------------------------
    def init_state(self, batch_size: int, device=None, dtype=None) -> State:
        p = next(self.parameters())
        device, dtype = device or p.device, dtype or p.dtype
        heads = self.config.num_heads
        head_dim = self.d_model // heads
        state: State = {
            "inputs": torch.zeros(batch_size, 0, self.d_model, device=device, dtype=dtype),
            "start": torch.zeros(batch_size, dtype=torch.long, device=device),
        }
        for i in range(self.config.num_layers):
            state[f"{i}.k"] = torch.zeros(batch_size, heads, 0, head_dim, device=device, dtype=dtype)
            state[f"{i}.v"] = torch.zeros(batch_size, heads, 0, head_dim, device=device, dtype=dtype)
        return state

    def reset_state(self, state: State, mask: torch.Tensor) -> State:
        """Rows of ``mask`` start a new episode: hide their cache and restart their positions."""
        mask = check_reset_mask(mask, state["start"].shape[0]).to(state["start"].device)
        length = state["inputs"].shape[1]
        return {**state, "start": torch.where(mask, torch.full_like(state["start"], length), state["start"])}

    def keep_rows(self, old: State, new: State, mask: torch.Tensor) -> State:
        """Rows of ``mask`` go back to ``old``, as if they had not stepped.

        The cache length is shared by all rows, so a kept row's cache is shifted right by the tokens
        the others gained, and its ``start`` moves by as much: the free slots at the front stay
        hidden, and positions (index - start) of its visible tokens do not change.
        """
        mask = check_reset_mask(mask, new["start"].shape[0]).to(new["start"].device)
        length = new["inputs"].shape[1]
        if old["inputs"].shape[1] > length:  # the window slid during the step: slide the kept rows too
            old = self._drop_oldest(old, keep=length)
        pad = length - old["inputs"].shape[1]
        merged: State = {"start": torch.where(mask, old["start"] + pad, new["start"])}
        for name, tensor in new.items():
            if name == "start":
                continue
            time_dim = 1 if name == "inputs" else 2  # inputs (B, L, D); keys / values (B, H, L, Dh)
            filler = list(tensor.shape)
            filler[time_dim] = pad
            shifted = torch.cat([tensor.new_zeros(filler), old[name]], dim=time_dim)
            merged[name] = torch.where(mask.view(-1, *([1] * (tensor.dim() - 1))), shifted, tensor)
        return merged

    # ---- forward -------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """x: (B, L, D). Without a state: causal self-attention over x (training)."""
        if state is None:
            return self._forward_fresh(x)
        if x.shape[1] > self.config.max_positions:
            raise ValueError(f"{x.shape[1]} tokens do not fit max_positions={self.config.max_positions}")
        if state["inputs"].shape[1] + x.shape[1] > self.config.max_positions:
            state = self._drop_oldest(state, keep=self._tokens_to_keep(x.shape[1]))
        return self._forward_cached(x, state)

    def _forward_fresh(self, x: torch.Tensor) -> tuple[torch.Tensor, State]:
        B, L, _ = x.shape
        if L > self.config.max_positions:
            raise ValueError(f"sequence of {L} tokens exceeds max_positions={self.config.max_positions}")
        positions = torch.arange(L, device=x.device).expand(B, L)
        h = x + self._positions(positions, x.dtype)
        state: State = {"inputs": x, "start": torch.zeros(B, dtype=torch.long, device=x.device)}
        for i, block in enumerate(self.blocks):
            h, state[f"{i}.k"], state[f"{i}.v"] = block(h)
        return self.ln_f(h), state

    def _forward_cached(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        B, L, _ = x.shape
        past = state["inputs"].shape[1]
        index = past + torch.arange(L, device=x.device)  # absolute cache index of each new token
        start = state["start"]
        positions = (index.unsqueeze(0) - start.unsqueeze(1)).clamp_min(0)  # (B, L)
        keys = torch.arange(past + L, device=x.device)
        # a query sees keys at or after its row's episode start and not after itself
        mask = (keys.view(1, 1, -1) >= start.view(B, 1, 1)) & (keys.view(1, 1, -1) <= index.view(1, L, 1))
        mask = mask.unsqueeze(1)  # (B, 1, L, past+L)
        h = x + self._positions(positions, x.dtype)
        new_state: State = {"inputs": torch.cat([state["inputs"], x], dim=1), "start": start}
        for i, block in enumerate(self.blocks):
            h, new_state[f"{i}.k"], new_state[f"{i}.v"] = block(h, state[f"{i}.k"], state[f"{i}.v"], mask)
        return self.ln_f(h), new_state

    def _tokens_to_keep(self, incoming: int) -> int:
        """Keep half the window, a multiple of the chunk size so timesteps stay aligned."""
        keep = self.config.max_positions // 2
        return max(0, min(keep - keep % incoming, self.config.max_positions - incoming))

    def _drop_oldest(self, state: State, keep: int) -> State:
        """Slide the window: keep the newest ``keep`` tokens and re-encode them from position 0."""
        inputs = state["inputs"]
        dropped = inputs.shape[1] - keep
        start = (state["start"] - dropped).clamp_min(0)
        empty = {**self.init_state(inputs.shape[0], inputs.device, inputs.dtype), "start": start}
        if keep == 0:
            return empty
        _, refilled = self._forward_cached(inputs[:, dropped:], empty)
        return refilled

    def _positions(self, positions: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        if self.config.position_embedding == "learned":
            return self.pos_emb(positions)
        return _sinusoidal(positions, self.d_model).to(dtype)


def _sinusoidal(positions: torch.Tensor, dim: int) -> torch.Tensor:
    freqs = torch.exp(torch.arange(0, dim, 2, device=positions.device) * (-math.log(10000.0) / dim))
    angles = positions.unsqueeze(-1).float() * freqs
    emb = torch.zeros(*positions.shape, dim, device=positions.device)
    emb[..., 0::2], emb[..., 1::2] = torch.sin(angles), torch.cos(angles)
    return emb


def _init_weights(module: nn.Module) -> None:
    """GPT-2 initialisation: N(0, 0.02) weights, zero biases."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
