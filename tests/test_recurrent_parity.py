"""The recurrent path (one timestep per call, carried state) equals the parallel forward."""

from __future__ import annotations

import contextlib

import pytest
import torch

from conftest import SMALL_BACKBONES, assert_backbones_agree, random_timesteps, slice_steps, small_config
from lram_agents.model import LRAMModel

TOL = 1e-4
BATCH, STEPS, BOUNDARY = 3, 14, 6
RESET_ROWS = torch.tensor([True, False, True])  # rows 0 and 2 start a new episode at BOUNDARY


def step_through(model: LRAMModel, steps, reset_at: int | None = None, reset_rows=None) -> torch.Tensor:
    """Logits from feeding one timestep per call, resetting ``reset_rows`` before ``reset_at``."""
    state, outputs = None, []
    for t in range(steps.batch_shape[1]):
        start = reset_rows if t == reset_at else None
        out = model(slice_steps(steps, (slice(None), slice(t, t + 1))), state, episode_start=start)
        state = out.state
        outputs.append(out.logits)
    return torch.cat(outputs, dim=1)


@pytest.mark.parametrize("backbone", sorted(SMALL_BACKBONES))
@pytest.mark.parametrize("include_actions", [False, True])
def test_step_equals_parallel_across_partial_reset(backbone, include_actions):
    model = LRAMModel(small_config(backbone, include_actions=include_actions)).eval()
    steps = random_timesteps(BATCH, STEPS, actions=5 if include_actions else None)
    with torch.no_grad():
        stepped = step_through(model, steps, reset_at=BOUNDARY, reset_rows=RESET_ROWS)
        whole = model(steps).logits  # every row as one episode
        after = model(slice_steps(steps, (slice(None), slice(BOUNDARY, None)))).logits  # fresh from BOUNDARY
    carried = ~RESET_ROWS
    diff_before = (stepped[:, :BOUNDARY] - whole[:, :BOUNDARY]).abs().max().item()
    diff_carried = (stepped[carried] - whole[carried]).abs().max().item()
    diff_reset = (stepped[RESET_ROWS, BOUNDARY:] - after[RESET_ROWS]).abs().max().item()
    print(f"{backbone} actions={include_actions}: max |step - parallel| before {diff_before:.2e}, "
          f"carried row {diff_carried:.2e}, reset rows {diff_reset:.2e}")
    assert diff_before <= TOL and diff_carried <= TOL and diff_reset <= TOL
    # the reset really changed the reset rows: without it they would follow the whole-sequence output
    assert (stepped[RESET_ROWS, BOUNDARY:] - whole[RESET_ROWS, BOUNDARY:]).abs().max().item() > 1e-3


@pytest.mark.parametrize("backbone", ["xlstm-7:1", "transformer"])
def test_image_observations_step_equals_parallel(backbone):
    model = LRAMModel(small_config(backbone, image_shape=(1, 64, 64))).eval()
    steps = random_timesteps(2, 5, image_shape=(1, 64, 64))
    with torch.no_grad():
        assert (step_through(model, steps) - model(steps).logits).abs().max().item() <= TOL


@pytest.mark.parametrize("backbone", ["xlstm-7:1", "xlstm-1:0"])
def test_xlstm_matches_the_packages_own_step(backbone):
    """Our chunkwise forward against the `xlstm` package's token-by-token ``step`` (the plain path)."""
    from lram_agents.backbones.xlstm import XLSTMBackbone

    backbone_module = XLSTMBackbone(SMALL_BACKBONES[backbone]).eval()
    x = torch.randn(3, 40, 64)
    with torch.no_grad():
        ours, _ = backbone_module(x)
        package_parallel = backbone_module.stack(x)
        package_steps, _ = backbone_module.step_reference(x)
    assert (ours - package_parallel).abs().max().item() <= TOL
    assert (ours - package_steps).abs().max().item() <= TOL


@pytest.mark.parametrize("kernel", ["torch", "compiled"])
def test_xlstm_gradients_equal_the_packages_parallel_forward(kernel):
    """Our mLSTM passes no gradient through its stabilisers (mlstm_chunk's docstring); the package's parallel
    forward does. The outputs depend on the stabilisers only through the eps = 1e-6 both add to the stabilised
    denominator, so every parameter's gradient must agree, the input gate's (which sets the stabilisers) to ~eps,
    all others to float64 precision (40 tokens in chunks of 8: the plain chunk loop, and with
    ``kernel="compiled"`` chunks_in_parallel)."""
    from lram_agents.backbones.xlstm import XLSTMBackbone, XLSTMConfig

    torch.manual_seed(0)
    ours = XLSTMBackbone(XLSTMConfig(d_model=16, num_blocks=2, num_heads=2, chunk_size=8, context_tokens=40,
                                     kernel=kernel)).double()
    x = torch.randn(2, 40, 16, dtype=torch.float64)
    grads = []
    for forward in (lambda: ours(x)[0], lambda: ours.stack(x)):
        ours.zero_grad(set_to_none=True)
        forward().sin().sum().backward()
        grads.append({n: p.grad.clone() for n, p in ours.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and any("igate" in n for n in grads[0])
    for name in grads[0]:
        tol = 1e-5 if "igate" in name else 1e-10
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=tol, atol=tol, msg=name)


@pytest.mark.parametrize("kernel", ["torch", "compiled"])
def test_xlstm_outputs_and_gradients_do_not_need_the_final_state(kernel):
    """Within ``final_state_unread`` (the trainer's windows) a window of one mLSTM chunk skips the matrix memory after
    its last token: the same outputs and gradients, and no memory in the state it returns."""
    from lram_agents.backbones.base import final_state_unread
    from lram_agents.backbones.xlstm import XLSTMBackbone, XLSTMConfig

    torch.manual_seed(0)
    backbone_module = XLSTMBackbone(XLSTMConfig(d_model=16, num_blocks=2, num_heads=2, chunk_size=16, context_tokens=12,
                                                slstm_at=[1], kernel=kernel)).double()
    x = torch.randn(2, 12, 16, dtype=torch.float64)
    results = []
    for unread in (False, True):
        backbone_module.zero_grad(set_to_none=True)
        with final_state_unread() if unread else contextlib.nullcontext():
            y, state = backbone_module(x)
        y.sin().sum().backward()
        results.append((y.detach(), state, {n: p.grad.clone() for n, p in backbone_module.named_parameters() if p.grad is not None}))
    (y_read, state_read, grads_read), (y_unread, state_unread, grads_unread) = results
    torch.testing.assert_close(y_unread, y_read, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grads_unread, grads_read, rtol=1e-10, atol=1e-10)
    assert "0.CT" in state_read and "0.CT" not in state_unread and "1.slstm" in state_unread


def test_xlstm_state_after_chunks_equals_state_after_parallel():
    from lram_agents.backbones.xlstm import XLSTMBackbone

    backbone_module = XLSTMBackbone(SMALL_BACKBONES["xlstm-7:1"]).eval()
    x = torch.randn(2, 21, 64)
    with torch.no_grad():
        _, whole = backbone_module(x)
        state = None
        for t in range(0, 21, 3):
            _, state = backbone_module(x[:, t : t + 3], state)
    for name in whole:
        assert torch.allclose(whole[name], state[name], atol=1e-4), name


@pytest.mark.parametrize("backbone", ["transformer", "transformer-alibi", "transformer-rope"])
def test_transformer_sliding_window_equals_parallel_over_the_kept_window(backbone):
    """When the KV cache is full the oldest half is dropped and positions restart at 0."""
    from lram_agents.backbones.transformer import TransformerBackbone

    backbone_module = TransformerBackbone(SMALL_BACKBONES[backbone]).eval()  # 96 positions
    x = torch.randn(2, 120, 64)
    with torch.no_grad():
        state, outputs = backbone_module.init_state(2), []
        for t in range(0, 120, 3):
            y, state = backbone_module(x[:, t : t + 3], state)
            outputs.append(y)
        stepped = torch.cat(outputs, dim=1)
        # at token 96 the cache held 96 tokens: the newest 48 (tokens 48..95) were kept
        window, _ = backbone_module(x[:, 48:120])
    assert (stepped[:, 96:] - window[:, 48:]).abs().max().item() <= TOL
    assert int(state["length"][0]) == 72


@pytest.mark.parametrize("backbone", ["transformer", "transformer-alibi", "transformer-rope"])
def test_transformer_continues_stepping_after_a_parallel_prefill(backbone):
    """A fresh forward's compact cache grows into the preallocated one when stepping goes on."""
    from lram_agents.backbones.transformer import TransformerBackbone

    backbone_module = TransformerBackbone(SMALL_BACKBONES[backbone]).eval()
    x = torch.randn(2, 30, 64)
    with torch.no_grad():
        whole, _ = backbone_module(x)
        _, state = backbone_module(x[:, :18])
        stepped = []
        for t in range(18, 30, 3):
            y, state = backbone_module(x[:, t : t + 3], state)
            stepped.append(y)
    assert (torch.cat(stepped, dim=1) - whole[:, 18:]).abs().max().item() <= TOL
    assert state["inputs"].shape[1] == backbone_module.config.max_positions


def test_causal_conv_equals_torchs_padded_convolution():
    """The multiply-add convolution against nn.Conv1d with causal padding (the plain path)."""
    from lram_agents.backbones.base import causal_conv

    conv = torch.nn.Conv1d(8, 8, kernel_size=4, groups=8, padding=3)
    x = torch.randn(2, 11, 8)
    with torch.no_grad():
        reference = conv(x.transpose(1, 2))[..., :11].transpose(1, 2)
        whole, state = causal_conv(conv, x, torch.zeros(2, 3, 8))
        first, mid = causal_conv(conv, x[:, :5], torch.zeros(2, 3, 8))
        second, end = causal_conv(conv, x[:, 5:], mid)
    assert torch.allclose(whole, reference, atol=1e-6)
    assert torch.allclose(torch.cat([first, second], 1), reference, atol=1e-6) and torch.equal(end, state)


def test_small_row_linear_equals_the_layer():
    """backbones.base.linear: (W @ x^T)^T for a few rows at inference, the layer itself otherwise."""
    from lram_agents.backbones.base import SMALL_ROWS, linear

    layer = torch.nn.Linear(32, 48)
    for shape in [(1, 3, 32), (2, 3, 32), (4, 5, 32)]:  # 3, 6 and 20 rows
        x = torch.randn(*shape)
        with torch.inference_mode():
            y = linear(layer, x)
            torch.testing.assert_close(y, layer(x), rtol=1e-5, atol=1e-6)
            assert y.is_contiguous()  # a transposed result slowed the Transformer's attention 4x
    assert 3 <= SMALL_ROWS < 20
    x = torch.randn(1, 3, 32, requires_grad=True)  # training: the layer's own path, gradients as usual
    linear(layer, x).sum().backward()
    assert x.grad is not None and layer.weight.grad is not None


# 20: 4 chunks of 5 (the largest divisor of 20 in [4, 8]); 16: exactly 2 chunks of 8; 23 (prime): 2 chunks of 8, then 7
@pytest.mark.parametrize("length", [20, 16, 23])
def test_compiled_mlstm_chunks_match_the_eager_ones_in_outputs_and_gradients(length):
    from lram_agents.backbones.xlstm import XLSTMBackbone, XLSTMConfig

    torch.manual_seed(0)
    eager = XLSTMBackbone(XLSTMConfig(d_model=16, num_blocks=2, num_heads=2, chunk_size=8)).double()
    compiled = XLSTMBackbone(XLSTMConfig(d_model=16, num_blocks=2, num_heads=2, chunk_size=8, kernel="compiled")).double()
    x = torch.randn(2, length, 16, dtype=torch.float64)
    assert_backbones_agree(eager, compiled, x, lambda y, state: y.sin().sum() + state["0.CT"].square().sum(),
                           tol=1e-9, grad_rtol=1e-8, grad_atol=1e-10)


def test_training_chunks_divide_the_length_where_a_size_down_to_half_does():
    from lram_agents.backbones.mlstm_chunk import dividing_chunk_size

    assert dividing_chunk_size(600, 32) == 30  # Dark-Room: 20 chunks instead of 18 and a rest of 24
    assert dividing_chunk_size(640, 32) == 32
    assert dividing_chunk_size(20, 8) == 5
    assert dividing_chunk_size(23, 8) == 8  # a prime: no divisor in [4, 8], the rest stays a chunk of its own
    assert dividing_chunk_size(150, 256) == 256  # shorter than a chunk: one chunk, never split


@pytest.mark.parametrize("carried", [False, True])
def test_mlstm_chunks_in_parallel_equal_the_chunk_loop(carried):
    """The closed-form state passing of the training path against the plain loop over chunks (float64):
    outputs, the final state and the gradients of every input, from the empty state and from a carried one."""
    from lram_agents.backbones.mlstm_chunk import chunks_in_parallel, mlstm_chunkwise

    B, NH, L, DH, chunk = 2, 3, 40, 8, 8
    qkv = [torch.randn(B, NH, L, DH, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    igate = torch.randn(B, NH, L, dtype=torch.float64, requires_grad=True)
    fgate = (torch.randn(B, NH, L, dtype=torch.float64) + 2).requires_grad_()
    state = None
    if carried:
        state = (torch.randn(B, NH, DH, DH, dtype=torch.float64, requires_grad=True),
                 torch.randn(B, NH, DH, dtype=torch.float64, requires_grad=True), torch.randn(B, NH, dtype=torch.float64))
    inputs = [*qkv, igate, fgate, *(state[:2] if carried else ())]
    results = []
    for run in (mlstm_chunkwise, chunks_in_parallel):
        h, (c, n, m) = run(*qkv, igate, fgate, state, chunk)
        grads = torch.autograd.grad(h.sin().sum() + c.square().sum() + n.sum(), inputs)
        results.append((h, c, n, m, grads))
    (*plain, plain_grads), (*parallel, parallel_grads) = results
    for a, b in zip(plain, parallel):
        torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-10)
    for a, b in zip(plain_grads, parallel_grads):
        torch.testing.assert_close(b, a, rtol=1e-9, atol=1e-10)
