"""The mLSTM cell over a chunk of tokens, starting from a recurrent state.

The `xlstm` package computes the mLSTM either in parallel from an empty state (training) or one token
at a time (``step``). For inference we want one timestep's tokens (3 of them) in one pass from the
carried state, and for training the same function from the empty state; this module is that function.
It follows the stabilised formulation of the xLSTM paper:

    C_t = f_t C_{t-1} + i_t k_t v_t^T,   n_t = f_t n_{t-1} + i_t k_t,   h_t = C_t^T q_t / max(|n_t^T q_t|, e^{-m_t})

with log-space gates and the stabiliser m_t = max over all log weights contributing to step t.
The stabilisers carry no gradient (``detach``): every output is the same function of the inputs for any value
of m (C, n and the e^{-m} floor all scale by e^{-m}; only the eps added to the denominator does not, so the input
gate's gradient moves by ~eps, 1e-6 relative), so their gradient through m is zero, and a state
(C, n, m) passed on is only ever read as C e^m, n e^m. Autograd would still run the max's backward (masks of
the argmax over every L x L log weight) and the sums that cancel (Dark-Room xLSTM [1:0], 16 x 600 tokens, one
thread: the mLSTM's forward + backward 49.6 -> 43.0 ms per block; gradients equal to ~1e-6 in float32).
An *empty* state has m = -inf, so nothing from before the chunk contributes; this matches the
package's parallel form exactly. (The package's own ``step`` starts from m = 0, which changes the
e^{-m} floor slightly on the first tokens.)

The matrix memory is kept transposed, C^T = sum_t v_t k_t^T (rows indexed by the value dimension): the
readout C^T q is then one contiguous dot product per row, the same row-by-row pass over the memory as its
update, so a compiled step that may update the state in place (:func:`lram_agents.backbones.base.donating_state`)
reads and writes each row once, in one loop (16M xLSTM [1:0], batch 16, one block's 16.8 MB memory, one thread:
3.1 ms against 14.4 ms for a matmul readout and a separate update of C).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from lram_agents.backbones.base import compiled as compiled_fn
from lram_agents.backbones.base import state_is_donated, traced_step

MState = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # C^T (B,NH,DHv,DHk), n (B,NH,DHk), m (B,NH)

def empty_mlstm_state(batch: int, heads: int, head_dim: int, device=None, dtype=None) -> MState:
    """C^T = 0, n = 0, m = -inf: a state that contributes nothing."""
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
    m = log_w.detach().amax(-1)  # (B,NH,L)
    if state is not None:
        ct0, n0, m0 = state
        log_w0 = log_f_cum + m0.unsqueeze(-1)  # weight of the carried state at token t
        m = torch.maximum(m, log_w0.detach())
    scores = (q @ k.transpose(-1, -2)) * torch.exp(log_w - m.unsqueeze(-1))  # (B,NH,L,L)
    num = scores @ v
    den = scores.sum(-1)
    if state is not None:
        w0 = torch.exp(log_w0 - m)  # (B,NH,L)
        num = num + w0.unsqueeze(-1) * _readout(q, ct0)
        den = den + w0 * (q @ n0.unsqueeze(-1)).squeeze(-1)
    h = num / (torch.maximum(den.abs(), torch.exp(-m)) + eps).unsqueeze(-1)
    return h, log_f_cum, m[..., -1]


def final_state(k, v, igate, log_f_cum, m_last, state: MState | None) -> MState:
    """The state after the last token of the chunk (stabiliser m_last); k unscaled, as :func:`chunk_output` takes it."""
    # each token's weight in the new state, with k's 1 / sqrt(DH): (B,NH,L)
    w = torch.exp(log_f_cum[..., -1:] - log_f_cum + igate - m_last.unsqueeze(-1)) / math.sqrt(k.shape[-1])
    kw = k * w.unsqueeze(-1)
    n = kw.sum(-2)  # (B,NH,DH)
    if state is None:
        return v.transpose(-1, -2) @ kw, n, m_last
    ct0, n0, m0 = state
    w0 = torch.exp(log_f_cum[..., -1] + m0 - m_last)  # (B,NH)
    return _decay_and_add(ct0, w0, k, w, kw, v), n + w0[..., None] * n0, m_last


def _readout(q: torch.Tensor, ct: torch.Tensor) -> torch.Tensor:
    """C^T q_t for each query of the chunk: (B,NH,L,DHk), (B,NH,DHv,DHk) -> (B,NH,L,DHv). Compiled, for a step's
    few tokens, one dot product per row of C^T and token: a reduction along the rows that inductor runs in the same
    loop as the update of those rows (MKL's matmul of 3 rows read the memory at a third of the bandwidth)."""
    if traced_step(q.shape[-2]):
        return torch.stack([(q[..., t, None, :] * ct).sum(-1) for t in range(q.shape[-2])], dim=-2)
    return q @ ct.transpose(-1, -2)


def _decay_and_add(ct0: torch.Tensor, w0: torch.Tensor, k: torch.Tensor, w: torch.Tensor, kw: torch.Tensor,
                   v: torch.Tensor) -> torch.Tensor:
    """C^T = w0 C0^T + sum_s v_s kw_s^T, kw_s = w_s k_s (``kw``: the caller's product, which eager mode uses).
    The matrix state is the largest thing a step touches, so this is one pass over it: under ``torch.compile`` an element-wise sum over the chunk's few tokens, which inductor
    fuses into a single read and write of each row, written back into ``ct0`` when the state is donated. There the
    token weight w_s goes with v_s, one number per row: inductor recomputes whatever multiplies k_s for every row,
    and with it on k (scaled by a division) the loop spent more time dividing than reading the memory. In
    eager mode the decayed memory is written once and the new outer products are added to it in place
    (``baddbmm`` into a fresh tensor would first copy its input: at batch 16 of the 16M preset that copy took as
    long as the rest of the update)."""
    if traced_step(k.shape[-2]):
        ct = w0[..., None, None] * ct0
        for s in range(k.shape[-2]):
            ct = ct + (v[..., s, :, None] * w[..., s, None, None]) * k[..., s, None, :]
        return ct0.copy_(ct) if state_is_donated() else ct
    ct = w0[..., None, None] * ct0
    if not ct.requires_grad:  # inference: in place, on the tensor just made
        ct.flatten(0, 1).baddbmm_(v.transpose(-1, -2).flatten(0, 1), kw.flatten(0, 1))
        return ct
    ct = torch.baddbmm(ct.flatten(0, 1), v.transpose(-1, -2).flatten(0, 1), kw.flatten(0, 1))
    return ct.view_as(ct0)


def mlstm_chunkwise(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    igate: torch.Tensor,
    fgate: torch.Tensor,
    state: MState | None,
    chunk_size: int,
    compiled: bool = False,
    final: bool = True,
) -> tuple[torch.Tensor, MState | None]:
    """A long sequence as consecutive chunks of ``chunk_size`` tokens (memory O(L * chunk_size)).

    ``final=False``: the caller does not read the state after the last chunk; a sequence of one chunk then returns
    None for it and skips computing it.

    ``compiled`` (training): the whole chunks at once through :func:`chunks_in_parallel`, the rest as one more
    chunk, each through ``torch.compile``. A chunk's outputs and the state after it are two compiled functions,
    not one: a graph's backward runs for all of its outputs, so the final state's (two L x DH x DH matmuls per
    head) ran in every training step although the loss never reads it (16M xLSTM [1:0], one thread: ~150 of
    ~2,000 ms per step).
    """
    output, state_after = (compiled_fn(chunk_output), compiled_fn(final_state)) if compiled else (chunk_output, final_state)

    def one_chunk(q, k, v, igate, fgate, state):
        h, log_f_cum, m_last = output(q, k, v, igate, fgate, state)
        return h, state_after(k, v, igate, log_f_cum, m_last, state)

    length = q.shape[-2]
    if length <= chunk_size:  # one chunk: an inference step, or a training window no longer than a chunk
        if not final:
            return output(q, k, v, igate, fgate, state)[0], None
        return one_chunk(q, k, v, igate, fgate, state)
    if compiled:  # training: the whole chunks at once, then the rest (shorter than a chunk), if any
        chunk_size = dividing_chunk_size(length, chunk_size)
        whole = length // chunk_size * chunk_size
        if whole == length:
            return compiled_fn(chunks_in_parallel)(q, k, v, igate, fgate, state, chunk_size)
        sizes = [whole, length - whole]
        (q0, q1), (k0, k1), (v0, v1) = (t.split(sizes, dim=-2) for t in (q, k, v))
        (i0, i1), (f0, f1) = (t.split(sizes, dim=-1) for t in (igate, fgate))
        h0, state = compiled_fn(chunks_in_parallel)(q0, k0, v0, i0, f0, state, chunk_size)
        h1, state = one_chunk(q1, k1, v1, i1, f1, state)
        return torch.cat([h0, h1], dim=-2), state
    outputs = []
    # split, not slice: the backward of a slice zero-fills a gradient of the whole sequence per chunk
    chunks = zip(*(t.split(chunk_size, dim=-2) for t in (q, k, v)), igate.split(chunk_size, -1), fgate.split(chunk_size, -1))
    for parts in chunks:
        h, state = one_chunk(*parts, state)
        outputs.append(h)
    return torch.cat(outputs, dim=-2), state


def dividing_chunk_size(length: int, chunk_size: int) -> int:
    """The largest chunk size in [chunk_size / 2, chunk_size] that divides ``length``, else ``chunk_size``.

    A remainder chunk costs two more compiled graphs (its outputs and its state, forward and backward) and the
    split/concatenation around them in every training step (Dark-Room xLSTM [1:0], 600 tokens, one thread, steps
    interleaved: chunks of 32 (18 + a rest of 24) 1.84x the Transformer's step, chunks of 30 1.66x). Chunks of
    c ~ DH balance the work inside and across chunks (see ``XLSTMConfig.chunk_size``), so only sizes down to
    half of the chosen one are taken.
    """
    if length <= chunk_size or length % chunk_size == 0:
        return chunk_size
    return next((c for c in range(chunk_size, (chunk_size + 1) // 2 - 1, -1) if length % c == 0), chunk_size)


def chunks_in_parallel(q, k, v, igate, fgate, state: MState | None, chunk_size: int, eps: float = 1e-6):
    """Every chunk of a sequence at once (L a multiple of ``chunk_size``): the training form of
    :func:`mlstm_chunkwise`, the same function of the inputs.

    The loop over chunks costs ~10 small matmuls per chunk, block and direction (Dark-Room, 19 chunks of 32 tokens:
    ~800 calls per training step, most of their time call overhead). Here the only sequential part, the state
    passed from chunk to chunk, is solved in closed form: with G_j the summed log forget gates through chunk j,
    a_j the largest log weight of chunk j's own tokens in the state after it, and U_j their outer products
    scaled by e^{-a_j}, the state after chunk j is sum_{i<=j} e^{G_j - G_i + a_i - m_j} U_i (plus the carried
    state's term), with the stabiliser m_j = G_j + max(m_0, max_{i<=j} a_i - G_i). That is one batched matmul
    of an NC x NC weight matrix; the outputs of all chunks are then batched matmuls too.
    """
    B, NH, L, DH = q.shape
    nc, c = L // chunk_size, chunk_size
    qc, vc = q.view(B, NH, nc, c, DH), v.view(B, NH, nc, c, -1)
    kc = (k / math.sqrt(DH)).view(B, NH, nc, c, DH)
    ic = igate.view(B, NH, nc, c)
    b = F.logsigmoid(fgate).view(B, NH, nc, c).cumsum(-1)  # log forget through token t, within its chunk
    g_cum = b[..., -1].cumsum(-1)  # G_j (B,NH,NC)
    log_u = b[..., -1:] - b + ic  # log weight of token s in the state after its own chunk
    a = log_u.detach().amax(-1)  # stabilisers: no gradient (see the module's docstring)
    run_max = torch.cummax(a - g_cum.detach(), dim=-1).values
    if state is not None:
        ct0, n0, m0 = state
        run_max = torch.maximum(run_max, m0.unsqueeze(-1))
    m_after = g_cum.detach() + run_max  # stabiliser of the state after each chunk (B,NH,NC)
    kw = kc * torch.exp(log_u - a.unsqueeze(-1)).unsqueeze(-1)
    log_mix = g_cum.unsqueeze(-1) - g_cum.unsqueeze(-2) + a.unsqueeze(-2) - m_after.unsqueeze(-1)  # (B,NH,NC,NC)
    earlier = torch.ones(nc, nc, dtype=torch.bool, device=q.device).tril()
    mix = torch.exp(log_mix.masked_fill(~earlier, float("-inf")))
    ct_after = (mix @ (vc.transpose(-1, -2) @ kw).flatten(-2)).view(B, NH, nc, -1, DH)  # C^T after each chunk
    n_after = mix @ kw.sum(-2)
    if state is not None:
        w0 = torch.exp(g_cum + m0.unsqueeze(-1) - m_after)
        ct_after = ct_after + w0[..., None, None] * ct0.unsqueeze(2)
        n_after = n_after + w0[..., None] * n0.unsqueeze(2)
        ct_in, n_in, m_in = (torch.cat([s0.unsqueeze(2), s[:, :, :-1]], dim=2) for s0, s in ((ct0, ct_after), (n0, n_after), (m0, m_after)))
    else:  # the empty state enters the first chunk: C = 0, m = -inf
        ct_in = F.pad(ct_after[:, :, :-1], (0, 0, 0, 0, 1, 0))
        n_in = F.pad(n_after[:, :, :-1], (0, 0, 1, 0))
        m_in = F.pad(m_after[..., :-1], (1, 0), value=float("-inf"))
    # outputs: the chunk's own tokens plus the state entering it, as in chunk_output
    log_w = b.unsqueeze(-1) - b.unsqueeze(-2) + ic.unsqueeze(-2)  # (B,NH,NC,c,c)
    future = torch.ones(c, c, dtype=torch.bool, device=q.device).triu(1)
    log_w = log_w.masked_fill(future, float("-inf"))
    log_w0 = b + m_in.unsqueeze(-1)
    m = torch.maximum(log_w.detach().amax(-1), log_w0.detach())
    scores = (qc @ kc.transpose(-1, -2)) * torch.exp(log_w - m.unsqueeze(-1))
    w0 = torch.exp(log_w0 - m)
    num = scores @ vc + w0.unsqueeze(-1) * (qc @ ct_in.transpose(-1, -2))
    den = scores.sum(-1) + w0 * (qc @ n_in.unsqueeze(-1)).squeeze(-1)
    h = num / (torch.maximum(den.abs(), torch.exp(-m)) + eps).unsqueeze(-1)
    return h.view(B, NH, L, -1), (ct_after[:, :, -1], n_after[:, :, -1], m_after[..., -1])
