"""RATE, the Recurrent Action Transformer with Memory (Staroverov et al.): a causal Transformer over
segments of K timesteps, with M memory tokens carried from segment to segment.

Each segment is processed as ``[read memory, segment tokens, write memory]``:

* the read memory (M tokens) is the memory carried in; it attends to itself only;
* a segment token attends causally to the segment, to the read memory and to a Transformer-XL cache
  of the previous tokens' hidden states (per layer, ``cache_tokens`` long, gradient stopped);
* the write memory tokens start as copies of the read memory, attend to the read memory, the whole
  segment and themselves, and their outputs become the next segment's memory; or, with the memory
  retention valve (``mrv_heads`` > 0, the authors' code), the next memory is a cross-attention in
  which the carried memory queries the (ReLU of the) written one, so a segment that wrote nothing the
  old memory asks for leaves it largely as it was.

Positions are learned and restart with each segment; cached hidden states keep the positions of their
own segment, so a learned per-layer marker is added to them to tell "previous segment" from "this one".

The forward takes any number of tokens: a long sequence is cut into segments (training), and one
timestep's tokens at a time fill the current segment (inference). A partial segment is re-run from its
first token at every call (as the paper's inference re-runs its context window), so acting costs
O(segment) per step and equals the segment-wise training forward exactly. Memory is differentiable
inside one call; :mod:`lram_agents.segments` detaches it between segments as the paper does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from lram_agents.backbones.base import State, reset_to_empty
from lram_agents.backbones.transformer import _Block, _init_weights
from lram_agents.config_utils import require


@dataclass
class RATEConfig:
    """Hyper-parameters of RATE (names of its Table 5 where they exist).

    Attributes:
        segment_tokens: tokens per segment, K x tokens per timestep (K = 30 with 3 tokens: 90). The
            model checks that a segment holds whole timesteps of its token layout.
        num_memory_tokens: M (paper: 5 for T-Maze/ViZDoom/MuJoCo, 15 for Atari); 0 disables memory.
        cache_tokens: length of the Transformer-XL cache of previous hidden states (0: none).
        mrv_heads: heads of the memory retention valve's cross-attention (the authors' ``n_head_ca``);
            0: the written memory tokens are the next memory as they are.
        memory_noise: standard deviation of Gaussian noise added to the memory a segment passes on, in
            training only (not in the paper). The paper found noisy memory at inference to help on
            T-Maze; trained with it, a segment must restore what a noisy memory held, meant to keep the
            memory readable past the segments the curriculum trains (measured: T-Maze's rate-noise.json).
    """

    d_model: int = 128
    num_layers: int = 3
    num_heads: int = 1
    mlp_ratio: int = 4
    segment_tokens: int = 90
    num_memory_tokens: int = 5
    cache_tokens: int = 90
    mrv_heads: int = 0
    dropout: float = 0.0
    memory_noise: float = 0.0
    type: Literal["rate"] = "rate"

    def __post_init__(self):
        require(self.type == "rate", "type", self.type, "must be 'rate'")
        for name in ("d_model", "num_layers", "num_heads", "mlp_ratio", "segment_tokens"):
            require(getattr(self, name) >= 1, name, getattr(self, name), "must be >= 1")
        for name in ("num_memory_tokens", "cache_tokens", "mrv_heads"):
            require(getattr(self, name) >= 0, name, getattr(self, name), "must be >= 0")
        require(self.d_model % self.num_heads == 0, "d_model", self.d_model, f"must be divisible by num_heads={self.num_heads}")
        require(0.0 <= self.dropout < 1.0, "dropout", self.dropout, "must be in [0, 1)")
        require(self.memory_noise >= 0.0, "memory_noise", self.memory_noise, "must be >= 0")
        require(self.mrv_heads == 0 or self.d_model % self.mrv_heads == 0, "mrv_heads", self.mrv_heads,
                f"must divide d_model={self.d_model}")
        require(self.mrv_heads == 0 or self.num_memory_tokens > 0, "mrv_heads", self.mrv_heads, "needs memory tokens")


class RATEBackbone(nn.Module):
    """RATE with a state-carrying forward: ``forward(x, state) -> (y, state)``."""

    def __init__(self, config: RATEConfig):
        super().__init__()
        self.config = config
        self.d_model = config.d_model
        self.pos_emb = nn.Embedding(config.segment_tokens, config.d_model)
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.num_layers))
        self.ln_f = nn.LayerNorm(config.d_model)
        self.apply(_init_weights)
        # memory lives on the scale of the layer-normed input tokens
        self.memory_init = nn.Parameter(torch.randn(config.num_memory_tokens, config.d_model))
        self.cache_marker = nn.Parameter(torch.zeros(config.num_layers, config.d_model)) if config.cache_tokens else None
        self.valve = _MemoryValve(config.d_model, config.mrv_heads) if config.mrv_heads else None

    # ---- state ---------------------------------------------------------------------------------
    def init_state(self, batch_size: int, device=None, dtype=None) -> State:
        """Learned initial memory, an empty segment and an empty cache."""
        p = self.memory_init
        device, dtype = device or p.device, dtype or p.dtype
        cfg, B = self.config, batch_size
        state: State = {
            "memory": self.memory_init.to(device, dtype).unsqueeze(0).expand(B, -1, -1),
            "tokens": torch.zeros(B, cfg.segment_tokens, cfg.d_model, device=device, dtype=dtype),
            "count": torch.zeros(B, dtype=torch.long, device=device),
            "cache_valid": torch.zeros(B, cfg.cache_tokens, dtype=torch.bool, device=device),
        }
        for i in range(cfg.num_layers):
            state[f"cache.{i}"] = torch.zeros(B, cfg.cache_tokens, cfg.d_model, device=device, dtype=dtype)
        return state

    def reset_state(self, state: State, mask: torch.Tensor) -> State:
        """Rows of ``mask`` start a new episode: initial memory, a new segment, no cache."""
        return reset_to_empty(self, state, mask)

    # ---- forward -------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """x: (B, L, D) -> y: (B, L, D). Tokens fill segments; a full segment writes the memory."""
        if state is None:
            state = self.init_state(x.shape[0], x.device, x.dtype)
        outputs = []
        while x.shape[1] > 0:
            # the longest piece that completes no row's segment early (rows may be at different phases)
            room = int((self.config.segment_tokens - state["count"]).min())
            piece, x = x[:, :room], x[:, room:]
            y, state = self._segment_pass(piece, state)
            outputs.append(y)
        return torch.cat(outputs, dim=1), state

    def _segment_pass(self, piece: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """Append ``piece`` (B, n, D) to each row's segment and run [read mem, segment, write mem]."""
        B, n, D = piece.shape
        M, count = self.config.num_memory_tokens, state["count"]
        length = int(count.max()) + n  # segment positions to run (rows shorter than this are masked)
        index = count.unsqueeze(1) + torch.arange(n, device=piece.device)  # (B, n) positions of the piece
        tokens = state["tokens"].scatter(1, index.unsqueeze(-1).expand(B, n, D), piece)
        valid = torch.arange(length, device=piece.device).unsqueeze(0) < (count + n).unsqueeze(1)  # (B, length)
        segment = tokens[:, :length] + self.pos_emb(torch.arange(length, device=piece.device))
        h = torch.cat([state["memory"], segment, state["memory"]], dim=1)
        mask = self._attention_mask(valid, state["cache_valid"])
        layer_inputs = []
        for i, block in enumerate(self.blocks):
            layer_inputs.append(h[:, M : M + length])
            cached = state[f"cache.{i}"] if self.cache_marker is None else state[f"cache.{i}"] + self.cache_marker[i]
            past_k, past_v = self._cache_keys_values(block, cached)
            h = block.attend_prefix(h, past_k, past_v, mask)
        out = self.ln_f(h)
        y = out[:, M : M + length].gather(1, index.unsqueeze(-1).expand(B, n, D))
        written = out[:, M + length :]  # (B, M, D)
        return y, self._advance(state, tokens, count + n, written, layer_inputs)

    def _attention_mask(self, valid: torch.Tensor, cache_valid: torch.Tensor) -> torch.Tensor:
        """(B, 1, Q, C + Q) bool, True = may attend. Keys: [cache | read mem | segment | write mem]."""
        B, length = valid.shape
        M, C = self.config.num_memory_tokens, cache_valid.shape[1]
        Q = 2 * M + length
        pos = torch.arange(length, device=valid.device)
        causal = pos.view(1, -1, 1) >= pos.view(1, 1, -1)
        # invalid (not yet filled) positions see themselves only, so their discarded outputs stay finite
        seg_seg = causal & (valid.unsqueeze(1) | torch.eye(length, dtype=torch.bool, device=valid.device))
        mask = torch.zeros(B, Q, C + Q, dtype=torch.bool, device=valid.device)
        read, seg, write = slice(0, M), slice(M, M + length), slice(M + length, Q)
        k_read, k_seg, k_write = slice(C, C + M), slice(C + M, C + M + length), slice(C + M + length, C + Q)
        mask[:, read, k_read] = True
        mask[:, seg, :C] = cache_valid.unsqueeze(1)
        mask[:, seg, k_read] = True
        mask[:, seg, k_seg] = seg_seg
        mask[:, write, k_read] = True
        mask[:, write, k_seg] = valid.unsqueeze(1)
        mask[:, write, k_write] = True
        return mask.unsqueeze(1)

    def _cache_keys_values(self, block: _Block, cached: torch.Tensor):
        """Keys and values (B, H, C, Dh) of the cached hidden states, with the block's projection."""
        B, C, D = cached.shape
        _, k, v = block.qkv(block.ln_1(cached)).split(D, dim=-1)
        return (t.view(B, C, block.heads, D // block.heads).transpose(1, 2) for t in (k, v))

    def _advance(self, state: State, tokens, count, written, layer_inputs) -> State:
        """The state after a pass: rows whose segment is full take the written memory and the cache."""
        complete = count == self.config.segment_tokens
        if not bool(complete.any()):
            return {**state, "tokens": tokens, "count": count}
        rows = complete.view(-1, 1, 1)
        if self.valve is not None:  # the carried memory reads what the segment wrote (only when one completes)
            written = self.valve(state["memory"], F.relu(written))
        if self.training and self.config.memory_noise:
            written = written + self.config.memory_noise * torch.randn_like(written)
        return {
            "memory": torch.where(rows, written, state["memory"]),
            "tokens": torch.where(rows, torch.zeros_like(tokens), tokens),
            "count": torch.where(complete, torch.zeros_like(count), count),
            **self._advance_cache(state, complete, layer_inputs),
        }

    def _advance_cache(self, state: State, complete: torch.Tensor, layer_inputs: list[torch.Tensor]) -> State:
        """Transformer-XL: the cache takes the finished segment's layer inputs (without gradient)."""
        C = self.config.cache_tokens
        old = {k: v for k, v in state.items() if k.startswith("cache")}
        if C == 0:
            return old
        seen = torch.ones_like(complete).unsqueeze(1).expand(-1, layer_inputs[0].shape[1])
        new = {"cache_valid": torch.cat([old["cache_valid"], seen], dim=1)[:, -C:]}
        for i, hidden in enumerate(layer_inputs):
            new[f"cache.{i}"] = torch.cat([old[f"cache.{i}"], hidden.detach()], dim=1)[:, -C:]
        return {k: torch.where(complete.view(-1, *([1] * (v.dim() - 1))), new[k], v) for k, v in old.items()}


class _MemoryValve(nn.Module):
    """RATE's memory retention valve: multi-head cross-attention, queries from the carried memory, keys
    and values from the written one. Plain ``nn.Linear`` projections, so that LoRA adapts them too."""

    def __init__(self, d_model: int, heads: int):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(d_model, d_model)
        self.key_value = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, memory: torch.Tensor, written: torch.Tensor) -> torch.Tensor:
        """memory, written: (B, M, D) -> the next memory (B, M, D)."""
        B, M, D = memory.shape

        def split(t):
            return t.view(B, -1, self.heads, D // self.heads).transpose(1, 2)

        k, v = self.key_value(written).split(D, dim=-1)
        att = F.scaled_dot_product_attention(split(self.query(memory)), split(k), split(v))
        return self.out(att.transpose(1, 2).reshape(B, M, D))
