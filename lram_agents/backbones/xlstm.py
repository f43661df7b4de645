"""xLSTM backbone on the `xlstm` package's block stack (mLSTM blocks, optionally sLSTM blocks).

Parameters live in ``xlstm.xLSTMBlockStack`` (so names and initialisation are the package's). The
forward pass is ours so that it can start from a carried state: mLSTM blocks run
:func:`mlstm_chunkwise`, sLSTM blocks run the package's layer with ``return_last_state``. The
package's own token-by-token ``step`` is kept as the plain reference path (:meth:`step_reference`).

Variants: ``slstm_at=[]`` is xLSTM [1:0]; ``slstm_at=[1]`` (16M) ... is the LRAM paper's [7:1].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn
from xlstm import (
    FeedForwardConfig,
    mLSTMBlockConfig,
    mLSTMLayerConfig,
    sLSTMBlockConfig,
    sLSTMLayerConfig,
    xLSTMBlockStack,
    xLSTMBlockStackConfig,
)

from lram_agents.backbones.base import State, causal_conv, final_state_read, linear, plain_linear, reset_to_empty, traced_step
from lram_agents.backbones.base import compiled as compiled_fn
from lram_agents.backbones.mlstm_chunk import empty_mlstm_state, mlstm_chunkwise
from lram_agents.backbones.mlstm_projections import headwise_linear, normed_gated_output, qkv_and_gates
from lram_agents.backbones.slstm import slstm_layer_forward
from lram_agents.config_utils import require


@dataclass
class XLSTMConfig:
    """Hyper-parameters of the xLSTM backbone (names as in the `xlstm` package)."""

    d_model: int = 512
    num_blocks: int = 8
    num_heads: int = 4
    slstm_at: list[int] = field(default_factory=list)
    proj_factor: float = 2.0  # mLSTM up-projection
    conv1d_kernel_size: int = 4
    qkv_proj_blocksize: int = 4
    ffn_proj_factor: float = 1.3  # feed-forward of the sLSTM blocks
    slstm_backend: Literal["vanilla", "cuda"] = "vanilla"
    # "compiled": while gradients are recorded, the mLSTM chunks, the projections around them
    # (mlstm_projections.py) and the sLSTM recurrence run through
    # torch.compile (fused calls; each new shape compiles once, ~30 s on CPU). "torch": plain eager PyTorch.
    kernel: Literal["torch", "compiled"] = "torch"
    # tokens per chunk in the chunkwise mLSTM (training memory ~ L * chunk_size); 0: the head dimension (at
    # least 16). Per token a chunk costs ~4 c DH inside it and ~4 DH^2 across chunks, so c ~ DH balances them.
    # Training step, one thread, x the Transformer's (with the loop over chunks, before chunks_in_parallel):
    # Dark-Room (DH 32) chunk 16/32/64/128: 2.01/1.88/2.25/2.91; 16M (DH 256, 150 tokens) 32/64/150: 2.06/1.89/1.83.
    chunk_size: int = 0
    context_tokens: int = 256  # size of the package's causal mask, used by its parallel forward only
    dropout: float = 0.0
    type: Literal["xlstm"] = "xlstm"

    def __post_init__(self):
        require(self.type == "xlstm", "type", self.type, "must be 'xlstm'")
        for name in ("d_model", "num_blocks", "num_heads", "conv1d_kernel_size", "context_tokens"):
            require(getattr(self, name) >= 1, name, getattr(self, name), "must be >= 1")
        require(self.chunk_size >= 0, "chunk_size", self.chunk_size, "must be >= 1, or 0 for the head dimension")
        require(self.d_model % self.num_heads == 0, "d_model", self.d_model, f"must be divisible by num_heads={self.num_heads}")
        self.slstm_at = list(self.slstm_at)
        bad = [i for i in self.slstm_at if not 0 <= i < self.num_blocks]
        require(not bad, "slstm_at", self.slstm_at, f"positions must lie in [0, {self.num_blocks - 1}]")
        require(self.slstm_backend in ("vanilla", "cuda"), "slstm_backend", self.slstm_backend, "must be 'vanilla' or 'cuda'")
        require(self.kernel in ("torch", "compiled"), "kernel", self.kernel, "must be 'torch' or 'compiled'")
        require(0.0 <= self.dropout < 1.0, "dropout", self.dropout, "must be in [0, 1)")
        require(self.proj_factor > 0 and self.ffn_proj_factor > 0, "proj_factor", self.proj_factor, "must be > 0")

    @property
    def mlstm_chunk_size(self) -> int:
        """Tokens per chunk of the mLSTM: ``chunk_size``, or the mLSTM's head dimension (at least 16) if 0."""
        return self.chunk_size or max(16, round(self.proj_factor * self.d_model) // self.num_heads)

    @property
    def variant(self) -> str:
        """The paper's notation: [mLSTM:sLSTM] ratio, '1:0' or '7:1'."""
        return "1:0" if not self.slstm_at else "7:1"


def _stack_config(cfg: XLSTMConfig) -> xLSTMBlockStackConfig:
    mlstm = mLSTMBlockConfig(
        mlstm=mLSTMLayerConfig(
            conv1d_kernel_size=cfg.conv1d_kernel_size,
            qkv_proj_blocksize=cfg.qkv_proj_blocksize,
            num_heads=cfg.num_heads,
            proj_factor=cfg.proj_factor,
        )
    )
    slstm = sLSTMBlockConfig(
        slstm=sLSTMLayerConfig(
            backend=cfg.slstm_backend,
            num_heads=cfg.num_heads,
            conv1d_kernel_size=cfg.conv1d_kernel_size,
            bias_init="powerlaw_blockdependent",
        ),
        feedforward=FeedForwardConfig(proj_factor=cfg.ffn_proj_factor, act_fn="gelu"),
    )
    return xLSTMBlockStackConfig(
        mlstm_block=mlstm,
        slstm_block=slstm if cfg.slstm_at else None,
        context_length=cfg.context_tokens,
        num_blocks=cfg.num_blocks,
        embedding_dim=cfg.d_model,
        slstm_at=list(cfg.slstm_at),
        dropout=cfg.dropout,
    )


def _step_gates(gate_in: torch.Tensor, igate: nn.Linear, fgate: nn.Linear) -> tuple[torch.Tensor, torch.Tensor]:
    """Both gates' pre-activations (B, NH, L) of a compiled step's few tokens, as one product-sum over (2 NH, 3 inner)
    weights: a vectorised reduction, where a frozen step's GEMM kernel for NH = 4 outputs read its 48 KB in 21 us
    per gate and block (16M xLSTM [1:0], batch 1, one thread: 0.965x of the step's CPU time, interleaved in one run)."""
    weight = torch.cat([igate.weight, fgate.weight])
    gates = (gate_in.unsqueeze(-2) * weight).sum(-1)
    if igate.bias is not None:
        gates = gates + torch.cat([igate.bias, fgate.bias])
    return gates.transpose(1, 2).chunk(2, dim=1)


def _weights(*modules: nn.Module) -> list[torch.Tensor | None]:
    """(weight, bias) of each module, flattened: what the compiled functions take instead of the modules."""
    return [t for m in modules for t in (m.weight, m.bias)]


class XLSTMBackbone(nn.Module):
    """xLSTM block stack with a state-carrying forward: ``forward(x, state) -> (y, state)``."""

    #: A compiled step inside :func:`~lram_agents.backbones.base.donating_state` writes the new matrix memories
    #: into the given state's tensors (:mod:`lram_agents.backbones.mlstm_chunk`).
    state_donation = True

    def __init__(self, config: XLSTMConfig):
        super().__init__()
        self.config = config
        self.d_model = config.d_model
        self.stack = xLSTMBlockStack(_stack_config(config))
        self._is_slstm = [i in config.slstm_at for i in range(config.num_blocks)]

    # ---- state ---------------------------------------------------------------------------------
    def init_state(self, batch_size: int, device=None, dtype=None) -> State:
        p = next(self.parameters())
        device, dtype = device or p.device, dtype or p.dtype
        state: State = {}
        for i, block in enumerate(self.stack.blocks):
            layer = block.xlstm
            if self._is_slstm[i]:
                hidden = layer.config.embedding_dim
                state[f"{i}.slstm"] = torch.zeros(batch_size, layer.config.num_states, hidden, device=device, dtype=dtype)
                state[f"{i}.conv"] = torch.zeros(batch_size, self.config.conv1d_kernel_size - 1, hidden, device=device, dtype=dtype)
            else:
                inner, heads = layer.config._inner_embedding_dim, layer.config.num_heads
                c, n, m = empty_mlstm_state(batch_size, heads, inner // heads, device, dtype)
                state.update({f"{i}.CT": c, f"{i}.n": n, f"{i}.m": m})  # CT: the memory C transposed
                state[f"{i}.conv"] = torch.zeros(batch_size, self.config.conv1d_kernel_size - 1, inner, device=device, dtype=dtype)
        return state

    def reset_state(self, state: State, mask: torch.Tensor) -> State:
        """Empty the rows of ``mask`` (True = episode starts). Returns a new state dict."""
        return reset_to_empty(self, state, mask)

    # ---- forward -------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """x: (B, L, D) -> y: (B, L, D); ``state=None`` starts from the empty state."""
        new_state: State = {}
        for i, block in enumerate(self.stack.blocks):
            run = self._slstm_block if self._is_slstm[i] else self._mlstm_block
            x = run(block, i, x, state, new_state)
        return self.stack.post_blocks_norm(x), new_state

    def _mlstm_block(self, block, i: int, x: torch.Tensor, state: State | None, out: State) -> torch.Tensor:
        layer = block.xlstm
        cell = layer.mlstm_cell
        B, L, _ = x.shape
        inner = layer.config._inner_embedding_dim
        x_mlstm, z = linear(layer.proj_up, block.xlstm_norm(x)).split(inner, dim=-1)
        conv_state = state[f"{i}.conv"] if state is not None else x_mlstm.new_zeros(B, self.config.conv1d_kernel_size - 1, inner)
        compiled = self.config.kernel == "compiled" and torch.is_grad_enabled()
        x_conv, out[f"{i}.conv"] = causal_conv(layer.conv1d.conv, x_mlstm, conv_state, compiled)
        x_conv = layer.conv_act_fn(x_conv)
        q, k, v, igate, fgate = self._qkv_and_gates(layer, x_conv, x_mlstm, compiled)
        mstate = (state[f"{i}.CT"], state[f"{i}.n"], state[f"{i}.m"]) if state is not None else None
        h, memory = mlstm_chunkwise(q, k, v, igate, fgate, mstate, self.config.mlstm_chunk_size, compiled, final_state_read())
        if memory is not None:
            out[f"{i}.CT"], out[f"{i}.n"], out[f"{i}.m"] = memory
        if compiled:
            norm = cell.outnorm
            h = compiled_fn(normed_gated_output)(h, x_conv, z, norm.weight_proxy, norm.bias, norm.eps, layer.learnable_skip)
        else:
            h = cell.outnorm(h).transpose(1, 2).reshape(B, L, inner)
            h = (h + layer.learnable_skip * x_conv) * layer.ogate_act_fn(z)
        return x + layer.dropout(linear(layer.proj_down, h))

    @staticmethod
    def _qkv_and_gates(layer, x_conv: torch.Tensor, x_mlstm: torch.Tensor, compiled: bool):
        """q, k, v (B, NH, L, DH) and the gates' pre-activations (B, NH, L): the package's modules (plain path)
        or :func:`mlstm_projections.qkv_and_gates` on their weights (compiled training path)."""
        cell, heads = layer.mlstm_cell, layer.config.num_heads
        plain_gates = plain_linear(cell.igate) and plain_linear(cell.fgate)  # LoRA-adapted gates run as modules
        if compiled and plain_gates:
            return qkv_and_gates(x_conv, x_mlstm, heads, *_weights(layer.q_proj, layer.k_proj, layer.v_proj, cell.igate, cell.fgate))
        if torch.compiler.is_compiling():
            # a compiled step: the block-diagonal projections as product-sums, whose outputs inductor writes row-major;
            # the package's einsum leaves them in its batched matmul's block-major layout, and the loop over the matrix
            # memory that reads k and v then ran scalar (16M xLSTM, batch 16: ~4x slower)
            q, k, v = (headwise_linear(x, p.weight, p.bias) for x, p in ((x_conv, layer.q_proj), (x_conv, layer.k_proj), (x_mlstm, layer.v_proj)))
        else:
            q, k, v = layer.q_proj(x_conv), layer.k_proj(x_conv), layer.v_proj(x_mlstm)
        gate_in = torch.cat([q, k, v], dim=-1)
        B, L, _ = q.shape
        if traced_step(L) and plain_gates:
            igate, fgate = _step_gates(gate_in, cell.igate, cell.fgate)
        else:
            igate = cell.igate(gate_in).transpose(1, 2)  # (B, NH, L)
            fgate = cell.fgate(gate_in).transpose(1, 2)
        q, k, v = (t.view(B, L, heads, -1).transpose(1, 2) for t in (q, k, v))
        return q, k, v, igate, fgate

    def _slstm_block(self, block, i: int, x: torch.Tensor, state: State | None, out: State) -> torch.Tensor:
        conv = state[f"{i}.conv"] if state is not None else None
        cell_state = state[f"{i}.slstm"] if state is not None else None
        if self.config.slstm_backend == "vanilla":
            compiled = self.config.kernel == "compiled" and torch.is_grad_enabled()
            y, out[f"{i}.conv"], out[f"{i}.slstm"] = slstm_layer_forward(
                block.xlstm, block.xlstm_norm(x), conv, cell_state, compiled=compiled
            )
        else:
            y, out[f"{i}.conv"], out[f"{i}.slstm"] = self._slstm_package(block, x, conv, cell_state)
        x = x + y
        return x + block.ffn(block.ffn_norm(x))

    @staticmethod
    def _slstm_package(block, x: torch.Tensor, conv: torch.Tensor | None, cell_state: torch.Tensor | None):
        """The package's own sLSTM layer (its CUDA backend; the reference for :func:`slstm_layer_forward`)."""
        # the package keeps the sLSTM state as (num_states, B, H); ours is batch-first
        cell_state = cell_state.transpose(0, 1).contiguous() if cell_state is not None else None
        y, last = block.xlstm(block.xlstm_norm(x), conv_state=conv, slstm_state=cell_state, return_last_state=True)
        return y, last["conv_state"], last["slstm_state"].transpose(0, 1)

    # ---- plain reference path --------------------------------------------------------------------
    @torch.no_grad()
    def step_reference(self, x: torch.Tensor, state: dict | None = None) -> tuple[torch.Tensor, dict]:
        """The `xlstm` package's own recurrent ``step``, one token at a time (slow; for tests)."""
        outputs = []
        for t in range(x.shape[1]):
            y, state = self.stack.step(x[:, t : t + 1], state)
            outputs.append(y)
        return torch.cat(outputs, dim=1), state
