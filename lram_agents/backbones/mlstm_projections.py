"""The mLSTM layer's work around its cell, written so that ``torch.compile`` fuses it (training path).

The `xlstm` package projects q, k and v with block-diagonal weights of tiny blocks (``qkv_proj_blocksize=4``:
an einsum that runs as batched 4 x 4 matmuls after a copy of its input), feeds both gates the concatenation of
q, k and v, and normalises each head with ``group_norm``. On CPU these small-inner-dimension matmuls, copies and
the group norm's backward took ~40% of the Dark-Room xLSTM [1:0]'s training step (profile, one thread: the
headwise bmm and its copies ~170 ms, the gates' k = 4 matmuls, concatenation and its gradient ~140 ms, the group
norm ~55 ms, of ~850 ms). Here the projections are element-wise products and sums over the few inputs of each
output, which inductor turns into a handful of loops over the activations, forward and backward; the gates read
the projections' inputs through weights folded through the blocks; the norm is a layer norm over each head.

The package's own modules stay the plain path (``kernel="torch"``); the tests hold the two together, outputs and
gradients.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lram_agents.backbones.base import compiled as compiled_fn


def _headwise(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    heads, _, d_in = weight.shape
    return (x.unflatten(-1, (heads, 1, d_in)) * weight).sum(-1).flatten(-2)


def _head_major(t: torch.Tensor, heads: int) -> torch.Tensor:
    """(..., NH * D) -> (NH, D, N) contiguous, N = all leading positions."""
    return t.reshape(-1, t.shape[-1]).t().contiguous().view(heads, -1, t.numel() // t.shape[-1])


class _HeadwiseLinear(torch.autograd.Function):
    """Block-diagonal projection with a backward written for small blocks: the input's gradient is the same
    fused product-sum with the transposed blocks; the weight's gradient one batched matmul over positions on
    head-major copies (inductor's own reduction over the 1,200-9,600 positions ran 3-5x slower; measured at
    the 16M and Dark-Room shapes: 11-17 ms vs 3.7 ms)."""

    @staticmethod
    def forward(ctx, x, weight):
        ctx.save_for_backward(x, weight)
        return _headwise(x, weight)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        heads = weight.shape[0]
        grad_x = _headwise(grad, weight.transpose(1, 2))
        grad_weight = torch.bmm(_head_major(grad, heads), _head_major(x, heads).transpose(1, 2))
        return grad_x, grad_weight


class _SmallOutputLinear(torch.autograd.Function):
    """x (..., C) @ weight (J, C)^T for a few outputs J (the gates: 2 NH). The input's gradient, a matmul of
    inner dimension J that BLAS runs slowly, is a fused product-sum instead; the weight's is a plain matmul."""

    @staticmethod
    def forward(ctx, x, weight):
        ctx.save_for_backward(x, weight)
        return x @ weight.t()

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad_x = (grad.unsqueeze(-1) * weight).sum(-2)
        grad_weight = grad.reshape(-1, grad.shape[-1]).t() @ x.reshape(-1, x.shape[-1])
        return grad_x, grad_weight


def headwise_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The package's ``LinearHeadwiseExpand``: x (..., NH * DI), weight (NH, DO, DI) -> (..., NH * DO)."""
    y = _HeadwiseLinear.apply(x, weight)
    return y if bias is None else y + bias


def heads_first_projection(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, heads: int) -> torch.Tensor:
    """:func:`headwise_linear` of x (B, L, F), written out as the cell reads it: (B, heads, L, F / heads),
    contiguous (the transposed copy is fused into the projection, forward and backward)."""
    y = headwise_linear(x, weight, bias)
    return y.unflatten(-1, (heads, -1)).transpose(-3, -2).contiguous()


def small_output_linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x (..., C) @ weight (J, C)^T for a few outputs J, with :class:`_SmallOutputLinear`'s backward."""
    return _SmallOutputLinear.apply(x, weight)


def _gate_weight_on_input(gate_part: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
    """A gate weight's columns that read a headwise projection's output (J, NH * DO), moved onto that
    projection's input: (J, NH * DI) and the bias it contributes (J,)."""
    heads, d_out, d_in = weight.shape
    folded = torch.einsum("jho,hod->jhd", gate_part.view(-1, heads, d_out), weight).flatten(1)
    return folded, (gate_part @ bias if bias is not None else gate_part.new_zeros(gate_part.shape[0]))


def qkv_and_gates(x_conv: torch.Tensor, x_mlstm: torch.Tensor, heads: int, q_w, q_b, k_w, k_b, v_w, v_b, i_w, i_b, f_w, f_b):
    """q, k, v (B, NH, L, DH), NH = ``heads``, and the input and forget gates' pre-activations (B, NH, L), each
    projection a compiled function of its own (compiled as one graph, inductor fused them into loops 2x slower).

    The gates read [q, k, v] through an (NH, 3 * inner) weight each. q, k and v are linear in x_conv and x_mlstm,
    so the gates are computed from those directly, with the gate weights folded through the (small) q, k, v
    weights: no concatenation, and q, k, v's gradients do not pass through the gates.
    """
    project = compiled_fn(heads_first_projection)
    q, k, v = project(x_conv, q_w, q_b, heads), project(x_conv, k_w, k_b, heads), project(x_mlstm, v_w, v_b, heads)
    on_q, on_k, on_v = torch.cat([i_w, f_w]).chunk(3, dim=1)  # (2 NH, inner) each: both gates at once
    (a_q, c_q), (a_k, c_k), (a_v, c_v) = (_gate_weight_on_input(g, w, b) for g, w, b in
                                          ((on_q, q_w, q_b), (on_k, k_w, k_b), (on_v, v_w, v_b)))
    gate = compiled_fn(small_output_linear)
    gates = gate(x_conv, a_q + a_k) + gate(x_mlstm, a_v) + (c_q + c_k + c_v + torch.cat([i_b, f_b]))
    igate, fgate = gates.transpose(1, 2).chunk(2, dim=1)
    return q, k, v, igate, fgate


def normed_gated_output(h: torch.Tensor, x_conv: torch.Tensor, z: torch.Tensor, norm_weight: torch.Tensor,
                        norm_bias: torch.Tensor | None, eps: float, skip: torch.Tensor) -> torch.Tensor:
    """The cell's output h (B, NH, L, DH), normalised per head (the package's ``MultiHeadLayerNorm``: a group
    norm with one group per head, i.e. a layer norm over DH), plus the learnable skip of the convolved input,
    gated by SiLU(z): (B, L, NH * DH)."""
    B, NH, L, DH = h.shape
    h = F.layer_norm(h, (DH,), eps=eps) * norm_weight.view(NH, 1, DH)
    if norm_bias is not None:
        h = h + norm_bias.view(NH, 1, DH)
    h = h.transpose(1, 2).reshape(B, L, NH * DH)
    return (h + skip * x_conv) * F.silu(z)
