"""Mamba backbone (Gu and Dao, 2023): pre-norm residual blocks of selective state-space mixers.

Parameters are those of `mambapy`'s ``MambaBlock``, which uses mamba-ssm's names and shapes
(``in_proj``, ``conv1d``, ``x_proj``, ``dt_proj``, ``A_log``, ``D``, ``out_proj``), so one checkpoint
loads whichever kernel runs it. The kernel is chosen by ``MambaConfig.kernel``, never by whether an
import succeeds:

* ``"torch"`` (default, any device): the plain path below. The selective scan is mambapy's parallel
  scan, started from a carried SSM state, so a chunk of tokens (one timestep = 3 tokens) is one call;
  long sequences run in chunks (:func:`scan_chunk_tokens`) that carry the state.
* ``"compiled"`` (any device with a ``torch.compile`` backend): as ``"torch"``, but while gradients are
  recorded the scan runs :func:`scan_chunk_recurrent` compiled, which never writes the (B, L, ED, N)
  states to memory. Each new (batch, chunk) shape compiles once (~15 s on CPU).
* ``"cuda"``: mamba-ssm's ``selective_scan_fn`` and causal-conv1d's ``causal_conv1d_fn``
  (:mod:`lram_agents.backbones.mamba_cuda`); needs ``pip install 'lram_agents[cuda]'`` and CUDA tensors.

The recurrent state of each layer is its last ``d_conv - 1`` conv inputs and its SSM state
(``{i}.conv``: (B, d_conv-1, d_inner), ``{i}.ssm``: (B, d_inner, d_state)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from mambapy.mamba import MambaBlock, RMSNorm
from mambapy.mamba import MambaConfig as _MambapyConfig
from mambapy.pscan import pscan
from torch import nn

from lram_agents.backbones.base import State, causal_conv, linear, reset_to_empty, traced_step
from lram_agents.backbones.base import compiled as compiled_fn
from lram_agents.config_utils import require

KERNELS = ("torch", "compiled", "cuda")


@dataclass
class MambaConfig:
    """Hyper-parameters of the Mamba backbone (names as in mamba-ssm's ``Mamba``).

    Attributes:
        d_model / num_layers: width and depth (LRAM Table 6: 8 x 512 ... 20 x 1280).
        d_state / d_conv / expand: SSM state size N, conv width, inner width = expand * d_model.
        dt_rank: rank of the step-size projection; ``None`` is mamba-ssm's "auto", ceil(d_model / 16).
        kernel: ``"torch"`` (plain PyTorch, any device), ``"compiled"`` (training scan compiled with
            ``torch.compile``, several times faster) or ``"cuda"`` (mamba-ssm kernels).
    """

    d_model: int = 512
    num_layers: int = 8
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    dt_rank: int | None = None
    norm_eps: float = 1e-5
    kernel: Literal["torch", "compiled", "cuda"] = "torch"
    type: Literal["mamba"] = "mamba"

    def __post_init__(self):
        require(self.type == "mamba", "type", self.type, "must be 'mamba'")
        for name in ("d_model", "num_layers", "d_state", "expand"):
            require(getattr(self, name) >= 1, name, getattr(self, name), "must be >= 1")
        require(self.d_conv >= 2, "d_conv", self.d_conv, "must be >= 2")
        require(self.dt_rank is None or self.dt_rank >= 1, "dt_rank", self.dt_rank, "must be >= 1 or None (auto)")
        require(self.norm_eps > 0, "norm_eps", self.norm_eps, "must be > 0")
        require(self.kernel in KERNELS, "kernel", self.kernel, f"must be one of {list(KERNELS)}")

    @property
    def d_inner(self) -> int:
        return self.expand * self.d_model

    @property
    def resolved_dt_rank(self) -> int:
        return self.dt_rank if self.dt_rank is not None else math.ceil(self.d_model / 16)


class MambaLayer(nn.Module):
    """``x + mixer(norm(x))``: mamba-ssm's ``Block`` with an RMSNorm (parameter names ``norm``, ``mixer``)."""

    def __init__(self, cfg: MambaConfig):
        super().__init__()
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)
        mixer_cfg = _MambapyConfig(
            d_model=cfg.d_model, n_layers=cfg.num_layers, dt_rank=cfg.resolved_dt_rank, d_state=cfg.d_state,
            expand_factor=cfg.expand, d_conv=cfg.d_conv, pscan=True, use_cuda=False,
        )
        self.mixer = MambaBlock(mixer_cfg)


class MambaBackbone(nn.Module):
    """Stack of Mamba layers with a state-carrying forward: ``forward(x, state) -> (y, state)``."""

    def __init__(self, config: MambaConfig):
        super().__init__()
        self.config = config
        self.d_model = config.d_model
        self.layers = nn.ModuleList(MambaLayer(config) for _ in range(config.num_layers))
        self.norm_f = RMSNorm(config.d_model, config.norm_eps)
        self._kernels = None
        if config.kernel == "cuda":
            from lram_agents.backbones import mamba_cuda

            self._kernels = mamba_cuda.load_kernels()

    # ---- state ---------------------------------------------------------------------------------
    def init_state(self, batch_size: int, device=None, dtype=None) -> State:
        p = next(self.parameters())
        device, dtype = device or p.device, dtype or p.dtype
        cfg = self.config
        state: State = {}
        for i in range(cfg.num_layers):
            state[f"{i}.conv"] = torch.zeros(batch_size, cfg.d_conv - 1, cfg.d_inner, device=device, dtype=dtype)
            state[f"{i}.ssm"] = torch.zeros(batch_size, cfg.d_inner, cfg.d_state, device=device, dtype=dtype)
        return state

    def reset_state(self, state: State, mask: torch.Tensor) -> State:
        """Empty the rows of ``mask`` (True = episode starts). Returns a new state dict."""
        return reset_to_empty(self, state, mask)

    # ---- forward -------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """x: (B, L, D) -> y: (B, L, D); ``state=None`` starts from the empty state."""
        if self._kernels is not None and x.device.type != "cuda":
            raise ValueError(f"MambaConfig.kernel='cuda' needs CUDA tensors, got device {x.device}; use kernel='torch'")
        new_state: State = {}
        for i, layer in enumerate(self.layers):
            conv = state[f"{i}.conv"] if state is not None else x.new_zeros(x.shape[0], self.config.d_conv - 1, self.config.d_inner)
            ssm = state[f"{i}.ssm"] if state is not None else None
            y, new_state[f"{i}.conv"], new_state[f"{i}.ssm"] = self._mix(layer.mixer, layer.norm(x), conv, ssm)
            x = x + y
        return self.norm_f(x), new_state

    def _mix(self, mixer: MambaBlock, u: torch.Tensor, conv_state: torch.Tensor, ssm_state: torch.Tensor | None):
        if self._kernels is not None:
            from lram_agents.backbones.mamba_cuda import mixer_forward_cuda

            return mixer_forward_cuda(self._kernels, mixer, u, conv_state, ssm_state)
        return mixer_forward(mixer, u, conv_state, ssm_state, compiled=self.config.kernel == "compiled")


def mixer_forward(mixer: MambaBlock, u: torch.Tensor, conv_state: torch.Tensor, ssm_state: torch.Tensor | None,
                  compiled: bool = False):
    """The plain-PyTorch Mamba mixer over a chunk u (B, L, D), continuing from its conv and SSM state.

    Returns (out (B, L, D), new conv state (B, d_conv-1, ED), new SSM state (B, ED, N)).
    ``ssm_state=None`` is the empty state (skips folding it in).
    """
    x, z = linear(mixer.in_proj, u).chunk(2, dim=-1)  # (B, L, ED) each
    x, new_conv = causal_conv(mixer.conv1d, x, conv_state, compiled and torch.is_grad_enabled())
    x = F.silu(x)
    delta, B, C = step_sizes_and_projections(mixer, x)
    A = -torch.exp(mixer.A_log.float())  # (ED, N)
    y, new_ssm = selective_scan(x, delta, A, B, C, mixer.D.float(), ssm_state, compiled=compiled and torch.is_grad_enabled())
    return linear(mixer.out_proj, y * F.silu(z)), new_conv, new_ssm


def step_sizes_and_projections(mixer: MambaBlock, x: torch.Tensor):
    """Input-dependent Δ (B, L, ED) (softplus applied), B and C (B, L, N) of the selective SSM."""
    cfg = mixer.config
    delta, B, C = mixer.x_proj(x).split([cfg.dt_rank, cfg.d_state, cfg.d_state], dim=-1)
    return F.softplus(mixer.dt_proj(delta)), B, C


#: Bytes of one (B, chunk, ED, N) temporary of the chunked scan. Chunks this small are reused by the allocator,
#: where whole-sequence temporaries (> 32 MB) came fresh from the OS at every step; pscan also pads a chunk, not
#: the sequence, to a power of two. Measured (forward + backward + AdamW, one thread, CPU time, one process per
#: setting, ratio to the Transformer's step): Dark-Room backbones at 16 x 600 tokens, whole sequence 9.9x,
#: chunks of 64 / 32 tokens 4.1 / 4.0x; 16M presets at 8 x 150 tokens, whole 12.6x, chunks of 64 (33.5 MB) /
#: 32 (16.8 MB) 7.0 / 4.1x. Recomputing chunks in the backward pass (torch.utils.checkpoint) was slower (4.6x
#: vs 3.7x at Dark-Room scale), so chunks are kept for autograd: no more memory than one whole-sequence scan.
SCAN_CHUNK_BYTES = 16 * 2**20
MAX_SCAN_CHUNK, MIN_SCAN_CHUNK = 64, 8


def scan_chunk_tokens(batch: int, d_inner: int, d_state: int, itemsize: int = 4) -> int:
    """Tokens per chunk: the largest power of two from 8 to 64 whose temporaries fit :data:`SCAN_CHUNK_BYTES`."""
    fits = SCAN_CHUNK_BYTES // max(1, batch * d_inner * d_state * itemsize)
    return max(MIN_SCAN_CHUNK, min(MAX_SCAN_CHUNK, 1 << max(0, int(fits).bit_length() - 1)))


def selective_scan(x, delta, A, B, C, D, h0: torch.Tensor | None, chunk: int | None = None, compiled: bool = False):
    """h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t x_t,  y_t = C_t h_t + D x_t, from h_{-1} = h0.

    Shapes: x, delta (B, L, ED); A (ED, N); B, C (B, L, N); D (ED); h0 (B, ED, N) or None (zeros).
    Returns y (B, L, ED) and h_{L-1} (B, ED, N). Runs on chunks of ``chunk`` tokens, each starting from the
    state the previous one ended in: :func:`scan_chunk` (default chunk :func:`scan_chunk_tokens`), or with
    ``compiled`` :func:`scan_chunk_recurrent` under ``torch.compile`` (default chunk :data:`COMPILED_SCAN_CHUNK`).
    """
    if traced_step(x.shape[1]):
        # a compiled inference step (traced as part of the whole step): the recurrence, which inductor fuses into one
        # pass over the SSM state; the parallel scan's (B, L, ED, N) temporaries and padding took 187 us of each 16M
        # layer's step at batch 1, a third of the step (one thread: 4.93 -> 4.22 ms CPU per step)
        return scan_chunk_recurrent(x, delta, A, B, C, D, h0)
    if compiled:
        run, chunk = compiled_fn(scan_chunk_recurrent, fullgraph=True), chunk or COMPILED_SCAN_CHUNK
    else:
        run, chunk = scan_chunk, chunk or scan_chunk_tokens(x.shape[0], x.shape[2], A.shape[1], delta.element_size())
    if x.shape[1] <= chunk:
        return run(x, delta, A, B, C, D, h0)
    ys, h = [], h0
    # split, not slice: the backward of a slice zero-fills a gradient of the whole sequence per chunk
    for x_c, delta_c, B_c, C_c in zip(*(t.split(chunk, dim=1) for t in (x, delta, B, C))):
        y, h = run(x_c, delta_c, A, B_c, C_c, D, h)
        ys.append(y)
    return torch.cat(ys, dim=1), h


def scan_chunk(x, delta, A, B, C, D, h0: torch.Tensor | None):
    """:func:`selective_scan` over one chunk with mambapy's parallel scan, which starts from zero: the carried
    state is folded into the first input, exp(Δ_0 A) h0 + Δ_0 B_0 x_0."""
    decay = torch.exp(delta.unsqueeze(-1) * A)  # (B, L, ED, N)
    inputs = (delta * x).unsqueeze(-1) * B.unsqueeze(2)  # (B, L, ED, N)
    if h0 is not None:
        inputs = torch.cat([inputs[:, :1] + decay[:, :1] * h0.unsqueeze(1), inputs[:, 1:]], dim=1)
    hs = pscan(decay, inputs)  # (B, L, ED, N)
    y = (hs @ C.unsqueeze(-1)).squeeze(-1) + D * x
    return y, hs[:, -1]


#: Tokens per compiled chunk. The recurrence is unrolled over them, so compile time grows with it; measured at
#: the 16M preset's shapes (one layer's scan, forward + backward, one thread, CPU time): pscan 464-520 ms,
#: compiled chunks of 8 / 16 / 32 tokens 69 / 81 / 99 ms, compiling in 16 / 32 / 67 s.
COMPILED_SCAN_CHUNK = 8


def scan_chunk_recurrent(x, delta, A, B, C, D, h0: torch.Tensor | None):
    """:func:`scan_chunk` as the recurrence itself, token by token (unrolled over a short chunk).

    Eager, this is many small ops; under ``torch.compile`` every op is element-wise over (B, ED, N) or a
    reduction over N, so inductor fuses the chunk into a kernel that keeps h_t in registers: the (B, L, ED, N)
    decays, inputs and states are never written to memory, which is what makes the parallel scan slow on CPU.
    """
    h, ys = h0, []
    for t in range(x.shape[1]):
        inputs = (delta[:, t] * x[:, t]).unsqueeze(-1) * B[:, t].unsqueeze(1)  # (B, ED, N)
        h = inputs if h is None else torch.exp(delta[:, t].unsqueeze(-1) * A) * h + inputs
        ys.append((h * C[:, t].unsqueeze(1)).sum(-1))
    return torch.stack(ys, dim=1) + D * x, h
