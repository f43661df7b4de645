"""The sLSTM layer's forward over the `xlstm` package's parameters, without its quadratic copy.

The package's vanilla sLSTM writes each token's state into a preallocated (L+1)-row buffer, so
autograd saves and copies the whole buffer once per token: a training step's cost grows with L².
This forward computes the same function from the same parameters (``conv1d``, ``fgate``, ``igate``,
``zgate``, ``ogate``, ``slstm_cell._recurrent_kernel_``, ``slstm_cell._bias_``, ``group_norm``), so every
checkpoint loads unchanged; it keeps the token outputs in a list and concatenates them once. The state
is kept head-major inside the loop so that each token is one ``baddbmm`` (recurrent matmul + input)
and a few element-wise ops; ``compiled=True`` runs chunks of tokens through ``torch.compile``. The package's layer stays the reference (tests compare outputs, states
and gradients) and the only path for the CUDA backend.

One difference, by design: a row reset to the empty state (n = 0) in a batch whose other rows carry on
starts here like an empty state (m = i~); the package does that only when *every* row is empty. Outputs
h and the ratio c / n are the same either way; m and the common scale of c and n differ until the
stabiliser catches up.

Cell (xLSTM paper, eqs. 8-17, stabilised): with pre-activations i~, f~, z~, o~ (input + R h_{t-1} + b),
m_t = max(i~, m_{t-1} + log σ(f~)), i = exp(i~ - m_t), f = exp(m_{t-1} + log σ(f~) - m_t),
c_t = f c_{t-1} + i tanh z~, n_t = f n_{t-1} + i, h_t = σ(o~) c_t / n_t.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lram_agents.backbones.base import causal_conv
from lram_agents.backbones.base import compiled as compiled_fn

NUM_STATES = 4  # h, c, n, m


def slstm_layer_forward(
    layer: nn.Module, x: torch.Tensor, conv_state: torch.Tensor | None, cell_state: torch.Tensor | None,
    compiled: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The package's ``sLSTMLayer.forward(x, conv_state, slstm_state, return_last_state=True)``.

    Args:
        layer: an ``xlstm`` ``sLSTMLayer`` (vanilla backend).
        x: (B, L, H).  conv_state: (B, K-1, H) or None (zeros).  cell_state: (B, 4, H) or None (empty).
        compiled: run the recurrence through ``torch.compile`` (fewer, fused calls per token).
    Returns:
        y (B, L, H), the new conv state (B, K-1, H) and the new cell state (B, 4, H) (h, c, n, m).
    """
    cfg = layer.config
    B, L, H = x.shape
    heads, head_dim = cfg.num_heads, H // cfg.num_heads
    if cfg.conv1d_kernel_size > 0:
        if conv_state is None:
            conv_state = x.new_zeros(B, cfg.conv1d_kernel_size - 1, H)
        x_conv, conv_state = causal_conv(layer.conv1d.conv, x, conv_state, compiled)
        x_conv = layer.conv_act_fn(x_conv)
    else:
        x_conv = x
    # the package feeds fgate's output in as the input gate and igate's as the forget gate; kept, so that
    # its checkpoints mean the same thing here
    gates = torch.stack([layer.fgate(x_conv), layer.igate(x_conv), layer.zgate(x), layer.ogate(x)], dim=2)  # (B,L,4,H)
    bias = layer.slstm_cell._bias.view(4, H)  # gate-major, as the package's vanilla cell keeps it
    pre = (gates + bias).view(B, L, 4, heads, head_dim).permute(1, 3, 0, 2, 4)  # (L, NH, B, 4, DH)
    recurrent = layer.slstm_cell._recurrent_kernel.transpose(1, 2)  # (NH, DH, 4*DH)
    hs, (h, c, n, m) = _recurrence(pre.reshape(L, heads, B, 4 * head_dim), recurrent, _head_major(cell_state, heads), compiled)
    y = layer.dropout(torch.cat(hs, dim=0).permute(1, 2, 0, 3))  # (NH, B, L, DH)
    out = layer.group_norm(y.transpose(0, 1))  # (B, NH, L, DH)
    out = out.transpose(1, 2).reshape(B, L, H)
    new_state = torch.stack([h, c, n, m], dim=0).permute(2, 0, 1, 3).reshape(B, NUM_STATES, H)
    return out, conv_state, new_state


def _head_major(cell_state: torch.Tensor | None, heads: int) -> tuple[torch.Tensor, ...] | None:
    """(B, 4, H) -> four (NH, B, DH) tensors h, c, n, m."""
    if cell_state is None:
        return None
    B, _, H = cell_state.shape
    return tuple(cell_state.view(B, NUM_STATES, heads, H // heads).permute(1, 2, 0, 3).unbind(0))


def _recurrence(pre: torch.Tensor, recurrent: torch.Tensor, state: tuple[torch.Tensor, ...] | None, compiled: bool):
    """The cell over L tokens. pre: (L, NH, B, 4*DH) input pre-activations + bias; recurrent: (NH, DH, 4*DH).

    Returns the outputs h_t as a list of (T, NH, B, DH) pieces and the final (h, c, n, m). The first token runs
    apart (it alone may start from an empty state); the rest in chunks, compiled if ``compiled``.
    """
    L, heads, B, four_dh = pre.shape
    head_dim = four_dh // 4
    if state is None:
        zeros = pre.new_zeros(heads, B, head_dim)
        h, c, n, m = zeros, zeros, zeros, zeros
    else:
        h, c, n, m = state
    h, c, n, m = _cell(torch.baddbmm(pre[0], h, recurrent), c, n, m, "empty" if state is None else "carried")
    outputs = [h.unsqueeze(0)]
    run = compiled_fn(run_tokens, fullgraph=True) if compiled else run_tokens
    for part in pre[1:].split(COMPILED_CHUNK) if pre.shape[0] > 1 else ():
        hs, (h, c, n, m) = run(part, recurrent, h, c, n, m)
        outputs.append(hs)
    return outputs, (h, c, n, m)


#: Tokens per call of the compiled recurrence (unrolled; compile time grows with it). Dark-Room xLSTM [7:1], training
#: step (one thread, CPU time): eager 894 ms, compiled chunks of 8 / 16 tokens 796 / 770 ms (the Transformer: 297).
COMPILED_CHUNK = 16


def run_tokens(pre: torch.Tensor, recurrent: torch.Tensor, h, c, n, m):
    """The cell over the tokens of ``pre`` (T, NH, B, 4*DH) from a running state; outputs stacked (T, NH, B, DH)."""
    hs = []
    for t in range(pre.shape[0]):
        h, c, n, m = _cell(torch.baddbmm(pre[t], h, recurrent), c, n, m, "running")
        hs.append(h)
    return torch.stack(hs), (h, c, n, m)


def _cell(raw: torch.Tensor, c: torch.Tensor, n: torch.Tensor, m: torch.Tensor, first: str):
    """One token's gates and state update from its pre-activations raw (NH, B, 4*DH)."""
    heads, B, four_dh = raw.shape
    i_raw, f_raw, z_raw, o_raw = raw.view(heads, B, 4, four_dh // 4).unbind(2)
    log_f_plus_m = m + F.logsigmoid(f_raw)
    if first == "empty":
        m_new = i_raw  # empty state: nothing to decay (the package's rule when all n == 0)
    elif first == "carried":
        # rows reset to the empty state (n == 0) start like an empty state; the rest as always
        m_new = torch.where(n == 0, i_raw, torch.maximum(i_raw, log_f_plus_m))
    else:
        m_new = torch.maximum(i_raw, log_f_plus_m)
    i_gate = torch.exp(i_raw - m_new)
    f_gate = torch.exp(log_f_plus_m - m_new)
    c = torch.addcmul(f_gate * c, i_gate, torch.tanh(z_raw))
    n = torch.addcmul(i_gate, f_gate, n)
    return torch.sigmoid(o_raw) * c / n, c, n, m_new
