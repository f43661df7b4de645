"""GPU paths against the CPU / plain path (skipped without CUDA; ``benchmarks/gpu_check.sh`` runs them).

The Mamba CUDA kernels have their own tests in test_mamba.py; here: the sLSTM's CUDA backend, the compiled
recurrences, and the agent's step under CUDA graphs.
"""

import dataclasses

import pytest
import torch

from conftest import assert_backbones_agree, random_timesteps, small_config
from lram_agents.backbones.mamba import MambaBackbone, MambaConfig
from lram_agents.backbones.xlstm import XLSTMBackbone, XLSTMConfig
from lram_agents.inference import make_step
from lram_agents.model import LRAMModel

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _grads(model, x):
    y, state = model(x)
    y.square().mean().backward()
    return y.detach(), {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def test_slstm_cuda_backend_matches_our_cpu_forward():
    """The package's CUDA sLSTM kernel (bf16 inside) against our fp32 forward on the same weights."""
    torch.manual_seed(0)
    config = XLSTMConfig(d_model=64, num_blocks=2, num_heads=4, slstm_at=[1])
    cpu = XLSTMBackbone(config)
    cuda = XLSTMBackbone(dataclasses.replace(config, slstm_backend="cuda")).cuda()
    cuda.load_state_dict(cpu.state_dict())
    x = torch.randn(2, 32, 64)
    y_cpu, g_cpu = _grads(cpu, x)
    y_gpu, g_gpu = _grads(cuda, x.cuda())
    assert (y_gpu.cpu() - y_cpu).abs().max().item() < 5e-2  # bf16 recurrence
    for name, grad in g_cpu.items():
        assert torch.allclose(g_gpu[name].cpu(), grad, rtol=0.1, atol=5e-3), name


@pytest.mark.parametrize("backbone", ["mamba", "xlstm-7:1"])
def test_compiled_recurrences_match_the_plain_path_on_cuda(backbone):
    torch.manual_seed(0)
    if backbone == "mamba":
        configs = [MambaConfig(d_model=32, num_layers=2, d_state=8), MambaConfig(d_model=32, num_layers=2, d_state=8, kernel="compiled")]
        build = MambaBackbone
    else:
        configs = [XLSTMConfig(d_model=32, num_blocks=2, num_heads=4, slstm_at=[1]),
                   XLSTMConfig(d_model=32, num_blocks=2, num_heads=4, slstm_at=[1], kernel="compiled")]
        build = XLSTMBackbone
    plain, compiled = build(configs[0]).cuda(), build(configs[1]).cuda()
    x = torch.randn(2, 40, 32, device="cuda")
    assert_backbones_agree(plain, compiled, x, lambda y, state: y.square().mean(), tol=1e-4, grad_rtol=1e-3, grad_atol=1e-5)


@pytest.mark.parametrize("backbone", ["xlstm-1:0", "mamba"])
def test_cuda_graph_step_matches_the_plain_step(backbone):
    """``make_step(compile=True, mode='reduce-overhead')``: CUDA graphs for the recurrent step."""
    model = LRAMModel(small_config(backbone)).cuda().eval()
    steps = random_timesteps(2, 6).map(lambda t: t.cuda())
    with torch.inference_mode():
        fast = make_step(model, compile=True, mode="reduce-overhead")
        state_plain = state_fast = None
        for t in range(6):
            one = steps.map(lambda x: x[:, t : t + 1])
            plain = model(one, state_plain)
            fast_out = fast(one, state_fast)
            state_plain, state_fast = plain.state, {k: v.clone() for k, v in fast_out.state.items()}
            assert (fast_out.logits - plain.logits).abs().max().item() <= 1e-4
