"""The mLSTM cell over a chunk of tokens, starting from a recurrent state.

The `xlstm` package computes the mLSTM either in parallel from an empty state (training) or one token
at a time (``step``). For inference we want one timestep's tokens (3 of them) in one pass from the
carried state, and for training the same function from the empty state; this module is that function.
It follows the stabilised formulation of the xLSTM paper:

    C_t = f_t C_{t-1} + i_t k_t v_t^T,   n_t = f_t n_{t-1} + i_t k_t,   h_t = C_t^T q_t / max(|n_t^T q_t|, e^{-m_t})

with log-space gates and the stabiliser m_t = max over all log weights contributing to step t.
An *empty* state has m = -inf, so nothing from before the chunk contributes; this matches the
package's parallel form exactly. (The package's own ``step`` starts from m = 0, which changes the
e^{-m} floor slightly on the first tokens.)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lram_agents.backbones.base import compiled as compiled_fn

MState = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # C (B,NH,DH,DH), n (B,NH,DH), m (B,NH)


def empty_mlstm_state(batch: int, heads: int, head_dim: int, device=None, dtype=None) -> MState:
    """C = 0, n = 0, m = -inf: a state that contributes nothing."""
    c = torch.zeros(batch, heads, head_dim, head_dim, device=device, dtype=dtype)
    n = torch.zeros(batch, heads, head_dim, device=device, dtype=dtype)
    m = torch.full((batch, heads), float("-inf"), device=device, dtype=dtype)
    return c, n, m


def chunk_output(q, k, v, igate, fgate, state: MState | None, eps: float = 1e-6):
    """The chunk's outputs h (B, NH, L, DH), with the cumulative log forget gates and the last stabiliser that
    :func:`final_state` needs."""
    L, DH = q.shape[-2], q.shape[-1]
    k = k / math.sqrt(DH)
    log_f_cum = F.logsigmoid(fgate).cumsum(-1)  # b_t = sum_{s<=t} log f_s            (B,NH,L)
    # log weight of token s in the output of token t: b_t - b_s + i_s, for s <= t
    log_w = log_f_cum.unsqueeze(-1) - log_f_cum.unsqueeze(-2) + igate.unsqueeze(-2)  # (B,NH,L,L)
    future = torch.ones(L, L, dtype=torch.bool, device=q.device).triu(1)  # token s after token t
    log_w = log_w.masked_fill(future, float("-inf"))
    m = log_w.amax(-1)  # (B,NH,L)
    if state is not None:
        c0, n0, m0 = state
        log_w0 = log_f_cum + m0.unsqueeze(-1)  # weight of the carried state at token t
        m = torch.maximum(m, log_w0)
    scores = (q @ k.transpose(-1, -2)) * torch.exp(log_w - m.unsqueeze(-1))  # (B,NH,L,L)
    num = scores @ v
    den = scores.sum(-1)
    if state is not None:
        w0 = torch.exp(log_w0 - m)  # (B,NH,L)
        num = num + w0.unsqueeze(-1) * (q @ c0)
        den = den + w0 * (q @ n0.unsqueeze(-1)).squeeze(-1)
    h = num / (torch.maximum(den.abs(), torch.exp(-m)) + eps).unsqueeze(-1)
    return h, log_f_cum, m[..., -1]


def final_state(k, v, igate, log_f_cum, m_last, state: MState | None) -> MState:
    """The state after the last token of the chunk (stabiliser m_last); k unscaled, as :func:`chunk_output` takes it."""
    k = k / math.sqrt(k.shape[-1])
    w = torch.exp(log_f_cum[..., -1:] - log_f_cum + igate - m_last.unsqueeze(-1))  # (B,NH,L)
    kw = k * w.unsqueeze(-1)
    n = kw.sum(-2)  # (B,NH,DH)
    if state is None:
        return kw.transpose(-1, -2) @ v, n, m_last
    c0, n0, m0 = state
    w0 = torch.exp(log_f_cum[..., -1] + m0 - m_last)  # (B,NH)
    return _decay_and_add(c0, w0, kw, v), n + w0[..., None] * n0, m_last


#: Largest state (elements of C) whose compiled update is inductor's fused element-wise sum. Above it the matmul
#: form is faster: 16M xLSTM [1:0] compiled step, 3 tokens, one thread: batch 1 (262K elements per block) 10.3 ms
#: fused vs 12.0 ms matmul; batch 16 (4.2M) 133 ms fused vs 103 ms matmul.
FUSED_UPDATE_MAX_ELEMENTS = 2**20


def _decay_and_add(c0: torch.Tensor, w0: torch.Tensor, kw: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """C = w0 C0 + sum_s kw_s v_s^T. The matrix state is the largest thing a step touches, so this is
    one pass over it: under ``torch.compile`` an element-wise sum over the chunk's few tokens, which
    inductor fuses into a single read and write of C; in eager mode the decayed C is written once and the
    new outer products are added to it in place (``baddbmm`` into a fresh tensor would first copy its input:
    at batch 16 of the 16M preset that copy took as long as the rest of the update)."""
    if torch.compiler.is_compiling() and kw.shape[-2] <= 8 and c0.numel() <= FUSED_UPDATE_MAX_ELEMENTS:
        return w0[..., None, None] * c0 + (kw.unsqueeze(-1) * v.unsqueeze(-2)).sum(-3)
    c = w0[..., None, None] * c0
    if not c.requires_grad:  # inference: in place, on the tensor just made
        c.flatten(0, 1).baddbmm_(kw.transpose(-1, -2).flatten(0, 1), v.flatten(0, 1))
        return c
    c = torch.baddbmm(c.flatten(0, 1), kw.transpose(-1, -2).flatten(0, 1), v.flatten(0, 1))
    return c.view_as(c0)


def mlstm_chunkwise(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    igate: torch.Tensor,
    fgate: torch.Tensor,
    state: MState | None,
    chunk_size: int,
    compiled: bool = False,
) -> tuple[torch.Tensor, MState]:
    """A long sequence as consecutive chunks of ``chunk_size`` tokens (memory O(L * chunk_size)).

    ``compiled``: each chunk through ``torch.compile`` (one graph per chunk shape, shared by every block). Its
    outputs and the state after it are two compiled functions, not one: a graph's backward runs for all of its
    outputs, so the final state's (two L x DH x DH matmuls per head) ran in every training step although the
    loss never reads it (16M xLSTM [1:0], one thread: ~150 of ~2,000 ms per step).
    """
    output, state_after = (compiled_fn(chunk_output), compiled_fn(final_state)) if compiled else (chunk_output, final_state)
    if q.shape[-2] <= chunk_size:  # an inference step: no splitting
        h, log_f_cum, m_last = output(q, k, v, igate, fgate, state)
        return h, state_after(k, v, igate, log_f_cum, m_last, state)
    outputs = []
    # split, not slice: the backward of a slice zero-fills a gradient of the whole sequence per chunk
    chunks = zip(*(t.split(chunk_size, dim=-2) for t in (q, k, v)), igate.split(chunk_size, -1), fgate.split(chunk_size, -1))
    for q_c, k_c, v_c, i_c, f_c in chunks:
        h, log_f_cum, m_last = output(q_c, k_c, v_c, i_c, f_c, state)
        state = state_after(k_c, v_c, i_c, log_f_cum, m_last, state)
        outputs.append(h)
    return torch.cat(outputs, dim=-2), state
