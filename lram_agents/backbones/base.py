"""The interface every sequence backbone implements.

A backbone maps token embeddings ``x`` of shape (B, L, D) to outputs of the same shape and carries a
recurrent state between calls:

* ``forward(x, state=None) -> (y, state)`` handles a whole training sequence (parallel / chunkwise)
  and a single timestep's tokens at inference with the same code; ``state=None`` means "empty".
* ``init_state(batch_size, device, dtype)`` builds the empty state.
* ``reset_state(state, mask)`` empties the rows whose episode starts (``mask``: (B,) bool).
* optional ``keep_rows(old, new, mask)``: rows of ``mask`` go back to ``old``, as if they had not
  stepped (an agent stepping only some of its envs, e.g. under Gymnasium's next-step autoreset).
  Backbones whose state tensors keep their shape across a step need not define it: the model falls
  back to :func:`keep_rows`.

States are flat ``dict[str, Tensor]`` whose tensors all have the batch as their first dimension, so
rows can be selected, reset and checkpointed without knowing the backbone.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Iterator, Protocol, runtime_checkable

import torch

State = dict[str, torch.Tensor]


@runtime_checkable
class Backbone(Protocol):
    d_model: int

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]: ...

    def init_state(
        self, batch_size: int, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> State: ...

    def reset_state(self, state: State, mask: torch.Tensor) -> State: ...


def select_rows(state: State, index: torch.Tensor) -> State:
    """The sub-state of the rows in ``index`` (a (B,) bool mask or integer indices)."""
    return {name: tensor[index] for name, tensor in state.items()}


def check_reset_mask(mask: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Validate an episode-start mask and return it as a (B,) bool tensor."""
    mask = torch.as_tensor(mask)
    if mask.shape != (batch_size,):
        raise ValueError(f"episode-start mask must have shape ({batch_size},), got {tuple(mask.shape)}")
    return mask.to(torch.bool)


def keep_rows(old: State, new: State, mask: torch.Tensor) -> State:
    """``new`` with the rows of ``mask`` taken from ``old``, for states whose tensors keep their shape."""
    batch = next(iter(new.values())).shape[0]
    mask = check_reset_mask(mask, batch).to(next(iter(new.values())).device)
    merged: State = {}
    for name, tensor in new.items():
        if old[name].shape != tensor.shape:
            raise ValueError(
                f"state tensor {name!r} changed shape in a step ({tuple(old[name].shape)} -> {tuple(tensor.shape)}): "
                "the backbone must define keep_rows(old, new, mask)"
            )
        merged[name] = torch.where(mask.view(-1, *([1] * (tensor.dim() - 1))), old[name], tensor)
    return merged


def reset_rows(state: State, empty: State, mask: torch.Tensor) -> State:
    """``state`` with the rows of ``mask`` replaced by those of ``empty`` (same keys and shapes)."""
    return {k: torch.where(mask.view(-1, *([1] * (v.dim() - 1))), empty[k], v) for k, v in state.items()}


def reset_to_empty(backbone: Backbone, state: State, mask: torch.Tensor) -> State:
    """``state`` with the rows of ``mask`` replaced by ``backbone.init_state``'s empty rows."""
    batch = next(iter(state.values())).shape[0]
    device, dtype = state_device_dtype(state)
    return reset_rows(state, backbone.init_state(batch, device, dtype), check_reset_mask(mask, batch).to(device))


def state_device_dtype(state: State) -> tuple[torch.device, torch.dtype]:
    """Device and floating dtype of a state (the first floating tensor's)."""
    floats = [t for t in state.values() if torch.is_floating_point(t)]
    t = floats[0] if floats else next(iter(state.values()))
    return t.device, t.dtype


def causal_conv(conv: torch.nn.Conv1d, x: torch.Tensor, conv_state: torch.Tensor,
                compiled_kernel: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Depth-wise causal convolution of x (B, L, D) continuing from the last K-1 inputs (B, K-1, D).

    Returns the convolution (B, L, D) and the new conv state (the last K-1 inputs). Written as K
    shifted multiply-adds: for the 3 tokens of an inference step this is several times cheaper than
    a convolution kernel call, and no slower at training lengths. ``compiled_kernel``: the same function
    through ``torch.compile`` (training: one fused loop instead of 2K element-wise passes and their
    gradients; Dark-Room xLSTM, 16 x 600 tokens: ~25 ms of eager passes per block and step).
    """
    run = compiled(_causal_conv) if compiled_kernel else _causal_conv
    return run(x, conv_state, conv.weight, conv.bias)


def _causal_conv(x: torch.Tensor, conv_state: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
    padded = torch.cat([conv_state, x], dim=1)  # (B, K-1+L, D)
    length = x.shape[1]
    taps = weight[:, 0, :].t()  # (K, D); tap K-1 multiplies the newest input
    if traced_step(length):
        # each tap's D weights in a row, as a frozen step's constant: inductor's loop over D, which fuses the
        # activation after the convolution, then vectorises instead of reading the weights with a stride of K
        taps = taps.contiguous()
    y = padded[:, :length] * taps[0]
    for k in range(1, taps.shape[0]):
        y = y + padded[:, k : k + length] * taps[k]
    if bias is not None:
        y = y + bias
    return y, padded[:, length:]


#: Up to this many rows (tokens x envs), :func:`linear` multiplies the weight by the transposed input.
SMALL_ROWS = 8


def linear(layer: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)``; for an inference step of a few rows on CPU computed as ``(W @ x^T)^T``.

    MKL's sgemm streams the weight much faster in that orientation when the input has few rows (4 MiB
    weight, 3 rows, caches flushed: 0.70 ms as ``x @ W^T``, 0.38 ms as ``W @ x^T``; a plain read of the
    weight 0.25 ms); from 16 rows on there is no gain. The same arithmetic either way (one dot product per
    output); only the BLAS kernel differs. The result is row-major like ``layer(x)``'s: a transposed one
    sent the Transformer's attention down a path 4x slower at 25,600 cached timesteps.
    """
    rows = x.numel() // x.shape[-1]
    if rows > SMALL_ROWS or x.device.type != "cpu" or torch.is_grad_enabled() or _frozen_compile() or not plain_linear(layer):
        return layer(x)
    y = torch.mm(layer.weight, x.reshape(rows, -1).t()).t()
    if layer.bias is not None:
        y = y + layer.bias  # keeps the transposed layout
    return y.contiguous().view(*x.shape[:-1], -1)  # row-major, as layer(x) returns it


def plain_linear(layer: torch.nn.Module) -> bool:
    """True if ``layer`` computes ``x W^T + b`` from its ``weight`` and ``bias`` alone, so that a fast path may use
    them directly: not a layer with more to its forward (a LoRA adapter, :class:`lram_agents.lora.LoRALinear`)."""
    return type(layer).forward is torch.nn.Linear.forward


def _frozen_compile() -> bool:
    """True while inductor traces a step with its weights as constants (:func:`lram_agents.inference.make_step`,
    ``freeze=True``): it packs the weights of plain ``layer(x)`` calls for its own GEMM kernels, which stream
    them faster than either MKL orientation; the transposed product would hide the linear layer from it."""
    return torch.compiler.is_compiling() and torch._inductor.config.freezing


#: Chunks of up to this many tokens (an inference step's 1-3 tokens per timestep) are written token by token when
#: compiled: element-wise ops over the recurrent state that inductor fuses into one pass over it, where the
#: chunkwise / parallel-scan forms write temporaries of the whole chunk.
STEP_TOKENS = 8


def traced_step(tokens: int) -> bool:
    """True while torch.compile traces a chunk of ``tokens`` tokens short enough to be an inference step's."""
    return torch.compiler.is_compiling() and tokens <= STEP_TOKENS


_state_donated = False  # read while torch.compile traces, so a step's graph is traced with the setting it runs with


@contextlib.contextmanager
def donating_state() -> Iterator[None]:
    """Within this context a *compiled* step may write the new recurrent state into the tensors of the state it
    was given (the xLSTM's matrix memory: one pass over it instead of a read and a fresh write). The caller must
    not use the old state afterwards. :func:`lram_agents.inference.make_step` enters it with ``donate_state``."""
    global _state_donated
    before, _state_donated = _state_donated, True
    try:
        yield
    finally:
        _state_donated = before


def state_is_donated() -> bool:
    """True inside :func:`donating_state` while torch.compile traces a step."""
    return _state_donated and torch.compiler.is_compiling()


_final_state_read = True


@contextlib.contextmanager
def final_state_unread() -> Iterator[None]:
    """Within this context the caller reads only a forward's outputs, never the state it returns (a training step on
    whole windows), so a backbone may leave out what only that state needs: the xLSTM's matrix memories after the
    last token (two (DH x L) @ (L x DH) products per head and block; 16M preset at 8 x 150 tokens, ~5% of a training
    step). The state returned may then lack entries; passing it on as a state fails on them."""
    global _final_state_read
    before, _final_state_read = _final_state_read, False
    try:
        yield
    finally:
        _final_state_read = before


def final_state_read() -> bool:
    """False inside :func:`final_state_unread`."""
    return _final_state_read


@functools.cache
def compiled(fn, fullgraph: bool = False):
    """``fn`` under ``torch.compile``, built on first use and shared by every caller (layers of equal shapes
    reuse its graphs). The compiled kernels of the backbones (``kernel="compiled"``) are made here.

    Shapes start static; a dimension seen to change (the batch of a multi-domain step, whose rows per
    action space vary, or a sequence's last, shorter chunk) is made dynamic on the one recompile that
    follows (``dynamic=None``), so varying batches never exhaust the recompile limit."""
    return torch.compile(fn, dynamic=None, fullgraph=fullgraph)
