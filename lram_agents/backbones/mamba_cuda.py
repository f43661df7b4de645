"""The mamba-ssm / causal-conv1d kernel path of the Mamba mixer (``MambaConfig.kernel="cuda"``).

Same parameters and the same function as :func:`lram_agents.backbones.mamba.mixer_forward`, with
the depth-wise convolution done by ``causal_conv1d_fn`` (which takes and returns conv states) and
the scan by mamba-ssm's fused ``selective_scan_fn``. That kernel always starts from a zero SSM state,
so a carried state h0 is added analytically: its contribution to step t is
C_t · (exp(A Σ_{s<=t} Δ_s) ⊙ h0), and it decays to exp(A Σ_s Δ_s) ⊙ h0 at the end of the chunk.

The kernel does not differentiate its returned last state, so the SSM state leaving this path is
detached (gradients still flow through the outputs). Use ``kernel="torch"`` to backpropagate through
carried states.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Kernels:
    """The two kernel functions, with the signatures of mamba-ssm 2.x and causal-conv1d >= 1.4."""

    selective_scan: Callable  # mamba_ssm.ops.selective_scan_interface.selective_scan_fn
    causal_conv1d: Callable  # causal_conv1d.causal_conv1d_fn


def load_kernels() -> Kernels:
    """Import the kernels, or explain what to install."""
    try:
        from causal_conv1d import causal_conv1d_fn
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except ImportError as err:
        raise ImportError(
            "MambaConfig.kernel='cuda' needs the mamba-ssm and causal-conv1d packages "
            "(pip install 'lram_agents[cuda]' on a machine with CUDA); use kernel='torch' otherwise"
        ) from err
    return Kernels(selective_scan=selective_scan_fn, causal_conv1d=causal_conv1d_fn)


def mixer_forward_cuda(kernels: Kernels, mixer, u: torch.Tensor, conv_state: torch.Tensor, ssm_state: torch.Tensor | None):
    """The mixer over u (B, L, D) from (conv_state (B, K-1, ED), ssm_state (B, ED, N) or None)."""
    x, z = mixer.in_proj(u).chunk(2, dim=-1)  # (B, L, ED) each
    # causal-conv1d returns final states only for channel-last inputs: (B, ED, L) views with stride 1 on ED
    x_conv, final_conv = kernels.causal_conv1d(
        x.contiguous().transpose(1, 2),
        mixer.conv1d.weight.squeeze(1),
        mixer.conv1d.bias,
        initial_states=conv_state.transpose(1, 2),
        return_final_states=True,
        activation="silu",
    )
    x_seq = x_conv.transpose(1, 2)  # (B, L, ED)
    cfg = mixer.config
    dt, B, C = mixer.x_proj(x_seq).split([cfg.dt_rank, cfg.d_state, cfg.d_state], dim=-1)
    dt = dt @ mixer.dt_proj.weight.T  # (B, L, ED); the kernel adds the bias and the softplus
    A = -torch.exp(mixer.A_log.float())
    y, last = kernels.selective_scan(
        x_conv, dt.transpose(1, 2), A, B.transpose(1, 2).contiguous(), C.transpose(1, 2).contiguous(), mixer.D.float(),
        z=None, delta_bias=mixer.dt_proj.bias.float(), delta_softplus=True, return_last_state=True,
    )
    y = y.transpose(1, 2)  # (B, L, ED)
    if ssm_state is not None:
        delta = F.softplus(dt + mixer.dt_proj.bias)
        carried, decayed = carried_state_terms(delta, A, C, ssm_state)
        y, last = y + carried, last + decayed
    out = mixer.out_proj(y * F.silu(z))
    return out, final_conv.transpose(1, 2), last.detach()


def carried_state_terms(delta: torch.Tensor, A: torch.Tensor, C: torch.Tensor, h0: torch.Tensor):
    """What an initial SSM state h0 (B, ED, N) adds to the outputs (B, L, ED) and to the last state."""
    decay = torch.exp(torch.cumsum(delta, dim=1).unsqueeze(-1) * A)  # (B, L, ED, N)
    return torch.einsum("bldn,bdn,bln->bld", decay, h0, C), decay[:, -1] * h0
