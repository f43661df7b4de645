"""Mamba: our chunked mixer against mambapy's own forward and step, the CUDA-kernel glue, parameter names."""

from __future__ import annotations

import importlib.util

import pytest
import torch
import torch.nn.functional as F

from conftest import assert_backbones_agree
from lram_agents.backbones import mamba_cuda
from lram_agents.backbones.mamba import MambaBackbone, MambaConfig, mixer_forward

TOL = 1e-4
CONFIG = MambaConfig(d_model=32, num_layers=2, d_state=8)
# mamba-ssm's Mamba module: these names with these shapes (d_inner = expand * d_model, R = dt_rank)
MAMBA_SSM_SHAPES = {
    "in_proj.weight": lambda c: (2 * c.d_inner, c.d_model),
    "conv1d.weight": lambda c: (c.d_inner, 1, c.d_conv),
    "conv1d.bias": lambda c: (c.d_inner,),
    "x_proj.weight": lambda c: (c.resolved_dt_rank + 2 * c.d_state, c.d_inner),
    "dt_proj.weight": lambda c: (c.d_inner, c.resolved_dt_rank),
    "dt_proj.bias": lambda c: (c.d_inner,),
    "A_log": lambda c: (c.d_inner, c.d_state),
    "D": lambda c: (c.d_inner,),
    "out_proj.weight": lambda c: (c.d_model, c.d_inner),
}


def _trained_like(backbone: MambaBackbone) -> MambaBackbone:
    """Larger step sizes than the init, so carried states matter in the comparisons."""
    with torch.no_grad():
        for layer in backbone.layers:
            layer.mixer.dt_proj.bias.add_(2.0)
    return backbone.eval()


def test_mixer_matches_mambapys_forward_and_step():
    mixer = _trained_like(MambaBackbone(CONFIG)).layers[0].mixer
    u = torch.randn(2, 11, CONFIG.d_model)
    with torch.no_grad():
        ours, _, _ = mixer_forward(mixer, u, torch.zeros(2, CONFIG.d_conv - 1, CONFIG.d_inner), None)
        package = mixer(u)  # mambapy's parallel forward from the empty state
        cache, steps = (None, torch.zeros(2, CONFIG.d_inner, CONFIG.d_conv - 1)), []
        for t in range(u.shape[1]):  # mambapy's own token-by-token step (the plain reference)
            y, cache = mixer.step(u[:, t], cache)
            steps.append(y)
    assert (ours - package).abs().max().item() <= TOL
    assert (ours - torch.stack(steps, dim=1)).abs().max().item() <= TOL


def test_state_after_chunks_equals_state_after_parallel():
    backbone = _trained_like(MambaBackbone(CONFIG))
    x = torch.randn(2, 21, CONFIG.d_model)
    with torch.no_grad():
        whole, final = backbone(x)
        state, outputs = None, []
        for t in range(0, 21, 3):
            y, state = backbone(x[:, t : t + 3], state)
            outputs.append(y)
    assert (torch.cat(outputs, dim=1) - whole).abs().max().item() <= TOL
    for name in final:
        assert torch.allclose(final[name], state[name], atol=TOL), name


def test_gradients_flow_through_the_carried_state():
    backbone = _trained_like(MambaBackbone(CONFIG)).train()
    x = torch.randn(1, 6, CONFIG.d_model, requires_grad=True)
    _, state = backbone(x[:, :3])
    y, _ = backbone(x[:, 3:], state)
    y.sum().backward()
    assert x.grad[:, :3].abs().sum() > 0  # the second chunk's output depends on the first chunk


def test_parameter_names_and_shapes_are_mamba_ssms():
    layer = MambaBackbone(CONFIG).layers[0]
    params = {name: tuple(p.shape) for name, p in layer.mixer.named_parameters()}
    assert params == {name: shape(CONFIG) for name, shape in MAMBA_SSM_SHAPES.items()}


def test_cuda_kernel_needs_the_packages_or_says_what_to_install():
    if importlib.util.find_spec("mamba_ssm") is not None:
        pytest.skip("mamba-ssm is installed")
    with pytest.raises(ImportError, match="lram_agents\\[cuda\\]"):
        MambaBackbone(MambaConfig(d_model=32, num_layers=1, kernel="cuda"))


# ---- the kernel path, run on CPU with plain twins of the two kernels -------------------------------
def _selective_scan_twin(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, return_last_state=False):
    """mamba-ssm's ``selective_scan_fn`` contract, written as a sequential loop: u, delta (b, d, l); B, C (b, n, l)."""
    delta = delta + delta_bias[:, None] if delta_bias is not None else delta
    delta = F.softplus(delta) if delta_softplus else delta
    h = u.new_zeros(u.shape[0], u.shape[1], A.shape[1])
    ys = []
    for t in range(u.shape[-1]):
        h = torch.exp(delta[:, :, t, None] * A) * h + delta[:, :, t, None] * B[:, None, :, t] * u[:, :, t, None]
        ys.append((h * C[:, None, :, t]).sum(-1))
    y = torch.stack(ys, dim=-1) + D[:, None] * u
    y = y * F.silu(z) if z is not None else y
    return (y, h) if return_last_state else y


def _causal_conv1d_twin(x, weight, bias=None, initial_states=None, return_final_states=False, activation=None):
    """causal-conv1d's ``causal_conv1d_fn`` contract: x (b, d, l), weight (d, w), states (b, d, w-1)."""
    assert x.stride(1) == 1, "the kernel only returns final states for channel-last inputs"
    full = torch.cat([initial_states, x], dim=-1)
    y = F.conv1d(full, weight.unsqueeze(1), bias, groups=weight.shape[0])
    y = F.silu(y) if activation == "silu" else y
    return (y, full[..., -(weight.shape[1] - 1) :]) if return_final_states else y


def test_kernel_glue_matches_the_plain_path_on_cpu():
    """The CUDA path's layouts and its analytic carried-state term, checked with twins of the kernels."""
    twins = mamba_cuda.Kernels(selective_scan=_selective_scan_twin, causal_conv1d=_causal_conv1d_twin)
    mixer = _trained_like(MambaBackbone(CONFIG)).layers[1].mixer
    u = torch.randn(3, 7, CONFIG.d_model)
    conv = torch.randn(3, CONFIG.d_conv - 1, CONFIG.d_inner)
    ssm = torch.randn(3, CONFIG.d_inner, CONFIG.d_state)
    with torch.no_grad():
        for start in (None, ssm):
            plain = mixer_forward(mixer, u, conv, start)
            glued = mamba_cuda.mixer_forward_cuda(twins, mixer, u, conv, start)
            for a, b in zip(plain, glued):
                assert (a - b).abs().max().item() <= TOL


# ---- the real kernels (GPU machines with `pip install 'lram_agents[cuda]'`) -------------------------
_HAS_KERNELS = importlib.util.find_spec("mamba_ssm") is not None and importlib.util.find_spec("causal_conv1d") is not None
needs_kernels = pytest.mark.skipif(
    not (_HAS_KERNELS and torch.cuda.is_available()),
    reason="needs CUDA and the mamba-ssm + causal-conv1d packages (pip install 'lram_agents[cuda]')",
)


@needs_kernels
def test_cuda_and_torch_kernels_agree_on_shared_weights():
    import dataclasses

    torch.manual_seed(0)
    plain = _trained_like(MambaBackbone(CONFIG)).cuda()
    fused = MambaBackbone(dataclasses.replace(CONFIG, kernel="cuda")).cuda().eval()
    fused.load_state_dict(plain.state_dict())  # one checkpoint, both kernels
    x = torch.randn(2, 24, CONFIG.d_model, device="cuda")
    with torch.no_grad():
        whole_plain, _ = plain(x)
        whole_fused, _ = fused(x)
        state, chunks = None, []
        for t in range(0, 24, 3):  # the fused path continuing from carried states
            y, state = fused(x[:, t : t + 3], state)
            chunks.append(y)
    assert (whole_fused - whole_plain).abs().max().item() <= 1e-3
    assert (torch.cat(chunks, dim=1) - whole_plain).abs().max().item() <= 1e-3


@needs_kernels
def test_mamba_ssm_module_loads_our_mixer_weights_and_agrees():
    from mamba_ssm import Mamba

    mixer = _trained_like(MambaBackbone(CONFIG)).layers[0].mixer.cuda()
    reference = Mamba(d_model=CONFIG.d_model, d_state=CONFIG.d_state, d_conv=CONFIG.d_conv, expand=CONFIG.expand).cuda()
    reference.load_state_dict(mixer.state_dict(), strict=True)
    u = torch.randn(2, 16, CONFIG.d_model, device="cuda")
    zeros = torch.zeros(2, CONFIG.d_conv - 1, CONFIG.d_inner, device="cuda")
    with torch.no_grad():
        ours, _, _ = mixer_forward(mixer, u, zeros, None)
        assert (reference(u) - ours).abs().max().item() <= 1e-3


def _sequential_scan(x, delta, A, B, C, D, h0):
    """The selective SSM one token at a time: the plain reference of the chunked parallel scan."""
    h = torch.zeros(x.shape[0], x.shape[2], A.shape[1], dtype=x.dtype) if h0 is None else h0
    ys = []
    for t in range(x.shape[1]):
        h = torch.exp(delta[:, t, :, None] * A) * h + (delta[:, t] * x[:, t])[..., None] * B[:, t, None, :]
        ys.append((h * C[:, t, None, :]).sum(-1) + D * x[:, t])
    return torch.stack(ys, 1), h


@pytest.mark.parametrize("length, chunk, with_state", [(150, 64, True), (150, 64, False), (37, 8, True), (64, 64, True)])
def test_chunked_scan_matches_the_sequential_recurrence_in_outputs_and_gradients(length, chunk, with_state):
    from lram_agents.backbones.mamba import selective_scan

    g = torch.Generator().manual_seed(length)
    Bsz, ED, N = 2, 6, 4
    x = torch.randn(Bsz, length, ED, generator=g, dtype=torch.float64, requires_grad=True)
    delta = (torch.rand(Bsz, length, ED, generator=g, dtype=torch.float64) * 0.5).requires_grad_()
    A = (-torch.rand(ED, N, generator=g, dtype=torch.float64) - 0.1).requires_grad_()
    B, C = (torch.randn(Bsz, length, N, generator=g, dtype=torch.float64).requires_grad_() for _ in range(2))
    D = torch.randn(ED, generator=g, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(Bsz, ED, N, generator=g, dtype=torch.float64, requires_grad=True) if with_state else None
    inputs = [x, delta, A, B, C, D] + ([h0] if with_state else [])
    weights = torch.randn(Bsz, length, ED, generator=g, dtype=torch.float64)

    def loss_and_grads(scan):
        y, h = scan(x, delta, A, B, C, D, h0)
        loss = (y * weights).sum() + h.square().sum()
        return y.detach(), h.detach(), torch.autograd.grad(loss, inputs)

    y, h, grads = loss_and_grads(lambda *a: selective_scan(*a, chunk=chunk))
    y_ref, h_ref, grads_ref = loss_and_grads(_sequential_scan)
    torch.testing.assert_close(y, y_ref, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(h, h_ref, rtol=1e-9, atol=1e-9)
    for got, want in zip(grads, grads_ref):
        torch.testing.assert_close(got, want, rtol=1e-8, atol=1e-8)


def test_scan_chunks_keep_temporaries_small():
    from lram_agents.backbones.mamba import SCAN_CHUNK_BYTES, scan_chunk_tokens

    assert scan_chunk_tokens(16, 128, 8) == 64  # Dark-Room backbones: capped at 64 tokens
    assert scan_chunk_tokens(8, 1024, 16) == 32  # 16M preset, batch 8: 32 x 512 KB per token = 16 MiB
    assert scan_chunk_tokens(256, 2048, 16) == 8  # never below 8 tokens
    for batch, d_inner, d_state in [(16, 128, 8), (8, 1024, 16), (3, 300, 7)]:
        assert scan_chunk_tokens(batch, d_inner, d_state) * batch * d_inner * d_state * 4 <= SCAN_CHUNK_BYTES


def test_compiled_kernel_matches_the_plain_path_in_outputs_and_gradients():
    """kernel='compiled' (torch.compile'd chunk recurrence, used while gradients are recorded) against
    kernel='torch' on the same weights: outputs, carried state and every parameter's gradient."""
    torch.manual_seed(0)
    plain = MambaBackbone(MambaConfig(d_model=8, num_layers=2, d_state=4, expand=2)).double()
    compiled = MambaBackbone(MambaConfig(d_model=8, num_layers=2, d_state=4, expand=2, kernel="compiled")).double()
    x = torch.randn(2, 13, 8, dtype=torch.float64)  # chunks of 8 and 5 tokens
    # A and D pass through float32 (.float(), as in mambapy): their gradients agree to float32 precision
    assert_backbones_agree(plain, compiled, x, lambda y, state: y.sin().sum() + sum(t.square().sum() for t in state.values()),
                           tol=1e-10, grad_rtol=1e-6, grad_atol=1e-7)
    with torch.no_grad():  # inference takes the plain path: nothing to compile for a 3-token step
        torch.testing.assert_close(compiled(x[:, :3])[0], plain(x[:, :3])[0])
