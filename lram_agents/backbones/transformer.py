"""GPT-2 style causal Transformer (the Decision-Transformer baseline) with a KV cache.

Training runs the whole sequence with a causal mask. Inference writes each timestep's keys and values
into a preallocated per-layer cache (in place), so cached keys are never recomputed or copied. Episode starts are handled per row
without touching the cache: a row's ``start`` index hides everything before it and its positions
restart at 0. When the cache is full, the oldest half is dropped and the kept tokens are re-encoded
with fresh positions (a sliding window whose cost is amortised over ``max_positions / 2`` steps),
which matches how the model was trained: on windows whose positions start at 0.

Positions (``position_embedding``): ``learned`` (GPT-2) and ``sinusoidal`` vectors are added to the
tokens; ``alibi`` adds no vector but a per-head penalty on the attention to a key, linear in how far
back it is (Press et al. 2022); ``rope`` rotates queries and keys by their position (Su et al. 2021).
The last two are relative: a window that starts later changes nothing, which suits in-context RL,
where what matters is how recent an episode is, not where the window happens to start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from lram_agents.backbones.base import State, check_reset_mask, linear
from lram_agents.config_utils import require


POSITION_EMBEDDINGS = ("learned", "sinusoidal", "alibi", "rope")


@dataclass
class TransformerConfig:
    """Hyper-parameters of the causal Transformer (LRAM Table 6 names: layers, hidden dim, heads)."""

    d_model: int = 512
    num_layers: int = 4
    num_heads: int = 8
    mlp_ratio: int = 4
    max_positions: int = 1024  # tokens; the KV cache holds at most this many
    position_embedding: Literal["learned", "sinusoidal", "alibi", "rope"] = "learned"
    dropout: float = 0.0  # LRAM disables dropout for DT (appendix D.2)
    type: Literal["transformer"] = "transformer"

    def __post_init__(self):
        require(self.type == "transformer", "type", self.type, "must be 'transformer'")
        for name in ("d_model", "num_layers", "num_heads", "mlp_ratio"):
            require(getattr(self, name) >= 1, name, getattr(self, name), "must be >= 1")
        require(self.max_positions >= 2, "max_positions", self.max_positions, "must be >= 2")
        require(self.d_model % self.num_heads == 0, "d_model", self.d_model, f"must be divisible by num_heads={self.num_heads}")
        require(self.position_embedding in POSITION_EMBEDDINGS, "position_embedding", self.position_embedding,
                f"must be one of {POSITION_EMBEDDINGS}")
        require(self.position_embedding != "rope" or (self.d_model // self.num_heads) % 2 == 0, "d_model", self.d_model,
                "rope needs an even head dimension (d_model / num_heads)")
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

    def forward(self, h, bias=None, rotary=None):
        """Causal self-attention over h (B, L, D); also returns this layer's keys and values.

        ``bias``: an additive (.., L, L) attention bias that includes the causal mask (ALiBi); ``rotary``:
        the (cos, sin) of the tokens' positions (RoPE)."""
        q, k, v = self._qkv(h, rotary)
        dropout = self.dropout if self.training else 0.0
        if bias is None:
            att = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout)
        else:
            att = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, dropout_p=dropout)
        return self._finish(h, att), k, v

    def attend_cached(self, h, cache_k, cache_v, past: int | torch.Tensor, mask, rotary=None):
        """Write this chunk's keys/values at ``past`` in the cache and attend over the cache.

        ``past`` an int: attention over the filled part only (the plain path). ``past`` a tensor of the cache
        indices of the chunk's tokens: written with ``index_copy_`` and attention over the whole preallocated
        cache, unfilled slots masked: the same result with shapes that do not change from step to step, so
        that ``torch.compile`` makes one graph for every step. ``mask``: bool (True = may attend) or an
        additive bias; ``rotary`` as in :meth:`forward` (cached keys keep the rotation of their own position).
        """
        q, k, v = self._qkv(h, rotary)
        if isinstance(past, torch.Tensor):
            cache_k.index_copy_(2, past, k)
            cache_v.index_copy_(2, past, v)
            att = F.scaled_dot_product_attention(q, cache_k, cache_v, attn_mask=mask)
            return self._finish(h, att)
        end = past + h.shape[1]
        cache_k[:, :, past:end] = k
        cache_v[:, :, past:end] = v
        att = F.scaled_dot_product_attention(q, cache_k[:, :, :end], cache_v[:, :, :end], attn_mask=mask)
        return self._finish(h, att)

    def attend_prefix(self, h, past_k, past_v, mask):
        """Attention over given keys/values (e.g. RATE's Transformer-XL cache) followed by the chunk's own."""
        q, k, v = self._qkv(h)
        att = F.scaled_dot_product_attention(q, torch.cat([past_k, k], dim=2), torch.cat([past_v, v], dim=2), attn_mask=mask)
        return self._finish(h, att)

    def _qkv(self, h, rotary=None):
        B, L, D = h.shape
        q, k, v = (t.view(B, L, self.heads, -1).transpose(1, 2) for t in linear(self.qkv, self.ln_1(h)).split(D, dim=-1))
        if rotary is not None:
            q, k = _rotate(q, *rotary), _rotate(k, *rotary)
        return q, k, v  # (B, H, L, Dh)

    def _finish(self, h, att):
        B, _, L, _ = att.shape
        out = linear(self.proj, att.transpose(1, 2).reshape(B, L, -1))
        h = h + F.dropout(out, self.dropout, self.training)
        up, act, down, dropout = self.mlp
        return h + dropout(linear(down, act(linear(up, self.ln_2(h)))))


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
        """An empty cache with room for ``max_positions`` tokens, preallocated (written in place)."""
        p = next(self.parameters())
        device, dtype = device or p.device, dtype or p.dtype
        heads, cap = self.config.num_heads, self.config.max_positions
        head_dim = self.d_model // heads
        state: State = {
            "inputs": torch.zeros(batch_size, cap, self.d_model, device=device, dtype=dtype),
            "start": torch.zeros(batch_size, dtype=torch.long, device=device),
            "length": torch.zeros(batch_size, dtype=torch.long, device=device),
            "chunk": torch.zeros(batch_size, dtype=torch.long, device=device),  # tokens of the last step
        }
        for i in range(self.config.num_layers):
            state[f"{i}.k"] = torch.zeros(batch_size, heads, cap, head_dim, device=device, dtype=dtype)
            state[f"{i}.v"] = torch.zeros(batch_size, heads, cap, head_dim, device=device, dtype=dtype)
        return state

    def reset_state(self, state: State, mask: torch.Tensor) -> State:
        """Rows of ``mask`` start a new episode: hide their cache and restart their positions."""
        mask = check_reset_mask(mask, state["start"].shape[0]).to(state["start"].device)
        return {**state, "start": torch.where(mask, state["length"], state["start"])}

    def keep_rows(self, old: State, new: State, mask: torch.Tensor) -> State:
        """Rows of ``mask`` go back to how they were before the last step, as if they had not stepped.

        The cache is written in place, so ``old`` shares its buffers with ``new``; what the step
        wrote is the last ``chunk`` tokens of every row. A kept row's earlier tokens are shifted right
        over them and its ``start`` moves by as much: the slots in front stay hidden, and positions
        (index - start) of its visible tokens do not change. (If the window slid in that step, the
        kept row was slid with the others.)
        """
        mask = check_reset_mask(mask, new["start"].shape[0]).to(new["start"].device)
        chunk, length = int(new["chunk"][0]), _length(new)
        start = new["start"].clone()
        for row in mask.nonzero().flatten().tolist():
            first = int(start[row])
            if first < length - chunk:
                for name, tensor in new.items():
                    if name == "inputs":
                        tensor[row, first + chunk : length] = tensor[row, first : length - chunk].clone()
                    elif name.endswith((".k", ".v")):
                        tensor[row, :, first + chunk : length] = tensor[row, :, first : length - chunk].clone()
            start[row] = min(first + chunk, length)
        return {**new, "start": start}

    # ---- forward -------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """x: (B, L, D). Without a state: causal self-attention over x (training).

        With a state, the new tokens' keys and values are written into the preallocated cache in
        place and the same dict is returned: keep a ``{k: v.clone()}`` copy to go back to a state.
        """
        L = x.shape[1]
        if state is None:
            return self._forward_fresh(x)
        state = self._make_room(state, L)
        return self._forward_cached(x, state, static=torch.compiler.is_compiling())

    @torch.compiler.disable
    def _make_room(self, state: State, incoming: int) -> State:
        """The preallocated cache, slid if ``incoming`` tokens would not fit. Decided on the cache's length
        (a Python number), so it runs outside a compiled graph: compiled steps break the graph here once."""
        if incoming > self.config.max_positions:
            raise ValueError(f"{incoming} tokens do not fit max_positions={self.config.max_positions}")
        state = self._with_full_capacity(state)
        if _length(state) + incoming > self.config.max_positions:
            state = self._drop_oldest(state, keep=self._tokens_to_keep(incoming))
        return state

    def _forward_fresh(self, x: torch.Tensor) -> tuple[torch.Tensor, State]:
        B, L, _ = x.shape
        if L > self.config.max_positions:
            raise ValueError(f"sequence of {L} tokens exceeds max_positions={self.config.max_positions}")
        positions = torch.arange(L, device=x.device).expand(B, L)
        h = x + self._positions(positions, x.dtype)
        rotary = self._rotary(positions, x.dtype)
        bias = None
        if self.config.position_embedding == "alibi":
            causal = positions[0].view(-1, 1) >= positions[0].view(1, -1)
            bias = self._alibi(causal, positions[:1], positions[0], x.dtype)[0]  # (H, L, L)
        keys, values = [], []
        for block in self.blocks:
            h, k, v = block(h, bias, rotary)
            keys.append(k)
            values.append(v)
        return self.ln_f(h), self._state_from(x, keys, values)

    def _state_from(self, x, keys, values) -> State:
        """A compact cache of a fresh forward's tokens (no copy; grown when stepping continues)."""
        B, L, _ = x.shape
        state: State = {
            "inputs": x.detach(),
            "start": torch.zeros(B, dtype=torch.long, device=x.device),
            "length": torch.full((B,), L, dtype=torch.long, device=x.device),
            "chunk": torch.full((B,), L, dtype=torch.long, device=x.device),
        }
        for i, (k, v) in enumerate(zip(keys, values)):
            state[f"{i}.k"], state[f"{i}.v"] = k.detach(), v.detach()
        return state

    def _with_full_capacity(self, state: State) -> State:
        """The state itself if preallocated, else a preallocated copy of it."""
        if state["inputs"].shape[1] == self.config.max_positions:
            return state
        inputs = state["inputs"]
        full = self.init_state(inputs.shape[0], inputs.device, inputs.dtype)
        n = _length(state)
        for name, tensor in state.items():
            if name in ("start", "length", "chunk"):
                full[name] = tensor.clone()
            elif name == "inputs":
                full[name][:, :n] = tensor[:, :n]
            else:
                full[name][:, :, :n] = tensor[:, :, :n]
        return full

    def _forward_cached(self, x: torch.Tensor, state: State, static: bool = False) -> tuple[torch.Tensor, State]:
        """The chunk x written into the cache and attended over it.

        ``static`` (under ``torch.compile``): the cache's length stays a tensor, keys/values are written with
        ``index_copy_`` and attention runs over the whole preallocated cache, the unfilled part masked, so
        every step has the same shapes. Otherwise the length is read as a number and attention covers only
        the filled part."""
        B, L, _ = x.shape
        past = state["length"][0] if static else _length(state)
        index = past + torch.arange(L, device=x.device)  # cache index of each new token
        start = state["start"]
        positions = (index.unsqueeze(0) - start.unsqueeze(1)).clamp_min(0)  # (B, L)
        keys = torch.arange(self.config.max_positions if static else past + L, device=x.device)
        # a query sees keys at or after its row's episode start and not after itself
        mask = (keys.view(1, 1, -1) >= start.view(B, 1, 1)) & (keys.view(1, 1, -1) <= index.view(1, L, 1))
        mask = mask.unsqueeze(1)  # (B, 1, L, keys)
        if self.config.position_embedding == "alibi":
            mask = self._alibi(mask, index.unsqueeze(0), keys, x.dtype)
        rotary = self._rotary(positions, x.dtype)
        h = x + self._positions(positions, x.dtype)
        if static:
            state["inputs"].index_copy_(1, index, x)
        else:
            state["inputs"][:, past : past + L] = x
        for i, block in enumerate(self.blocks):
            h = block.attend_cached(h, state[f"{i}.k"], state[f"{i}.v"], index if static else past, mask, rotary)
        state = {**state, "length": state["length"] + L, "chunk": torch.full_like(state["length"], L)}
        return self.ln_f(h), state

    def _tokens_to_keep(self, incoming: int) -> int:
        """Keep half the window, a multiple of the chunk size so timesteps stay aligned."""
        keep = self.config.max_positions // 2
        return max(0, min(keep - keep % incoming, self.config.max_positions - incoming))

    def _drop_oldest(self, state: State, keep: int) -> State:
        """Slide the window: keep the newest ``keep`` tokens, re-encoded from position 0 in place."""
        length = _length(state)
        dropped = length - keep
        kept = state["inputs"][:, dropped:length].clone()
        state = {**state, "start": (state["start"] - dropped).clamp_min(0), "length": torch.zeros_like(state["length"])}
        if keep:
            _, state = self._forward_cached(kept, state)
        return state

    def _positions(self, positions: torch.Tensor, dtype: torch.dtype) -> torch.Tensor | float:
        """The vectors added to the tokens (0 for the relative kinds)."""
        kind = self.config.position_embedding
        if kind == "learned":
            return self.pos_emb(positions)
        if kind == "sinusoidal":
            return _sinusoidal(positions, self.d_model).to(dtype)
        return 0.0

    def _rotary(self, positions: torch.Tensor, dtype: torch.dtype):
        """RoPE's (cos, sin), (B, 1, L, Dh/2), or None for the other kinds."""
        if self.config.position_embedding != "rope":
            return None
        half = self.d_model // self.config.num_heads // 2
        freqs = torch.exp(torch.arange(half, device=positions.device) * (-math.log(10000.0) / half))
        angles = (positions.unsqueeze(-1).float() * freqs).unsqueeze(1)
        return angles.cos().to(dtype), angles.sin().to(dtype)

    def _alibi(self, allowed: torch.Tensor, query_index: torch.Tensor, key_index: torch.Tensor, dtype) -> torch.Tensor:
        """ALiBi's additive bias: -slope_h · (query - key) where ``allowed``, -inf elsewhere; (B, H, L, keys).

        Slopes 2^(-8h/H), h = 1..H (the paper's geometric sequence): the steepest head looks a few tokens
        back, the flattest over the whole window."""
        heads = self.config.num_heads
        slopes = torch.pow(2.0, -8.0 * torch.arange(1, heads + 1, device=allowed.device) / heads).to(dtype)
        distance = (query_index.unsqueeze(-1) - key_index.view(1, 1, -1)).to(dtype).unsqueeze(1)  # (B, 1, L, keys)
        bias = -slopes.view(1, -1, 1, 1) * distance
        return bias.masked_fill(~allowed, float("-inf"))


def _length(state: State) -> int:
    return int(state["length"][0])


def _sinusoidal(positions: torch.Tensor, dim: int) -> torch.Tensor:
    freqs = torch.exp(torch.arange(0, dim, 2, device=positions.device) * (-math.log(10000.0) / dim))
    angles = positions.unsqueeze(-1).float() * freqs
    emb = torch.zeros(*positions.shape, dim, device=positions.device)
    emb[..., 0::2], emb[..., 1::2] = torch.sin(angles), torch.cos(angles)
    return emb


def _rotate(t: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """RoPE on (B, H, L, Dh): each pair (first half, second half) of the head's features turned by its angle."""
    a, b = t.chunk(2, dim=-1)
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


def _init_weights(module: nn.Module) -> None:
    """GPT-2 initialisation: N(0, 0.02) weights, zero biases."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
