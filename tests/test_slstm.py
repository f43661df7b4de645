"""Our sLSTM forward (lram_agents.backbones.slstm) against the `xlstm` package's layer: outputs, states, gradients."""

import pytest
import torch

from conftest import assert_backbones_agree

from lram_agents.backbones.slstm import slstm_layer_forward
from lram_agents.backbones.xlstm import XLSTMBackbone, XLSTMConfig


def _block(seed: int = 0):
    torch.manual_seed(seed)
    backbone = XLSTMBackbone(XLSTMConfig(d_model=32, num_blocks=2, num_heads=4, slstm_at=[1])).double()
    block = backbone.stack.blocks[1]
    with torch.no_grad():  # the package initialises R to zeros; make the recurrence matter
        block.xlstm.slstm_cell._recurrent_kernel_.normal_(0, 0.3)
        block.xlstm.slstm_cell._bias_.normal_(0, 1.0)
    return backbone, block


def _package(block, x, conv, cell):
    return XLSTMBackbone._slstm_package(block, x, conv, cell)


def _ours(block, x, conv, cell):
    return slstm_layer_forward(block.xlstm, block.xlstm_norm(x), conv, cell)


def _carried_state(block, batch: int):
    """A state after 7 tokens of the package's layer, with row 1 reset to the empty (zero) state."""
    x = torch.randn(batch, 7, 32, dtype=torch.float64)
    with torch.no_grad():
        _, conv, cell = _package(block, x, None, None)
    conv, cell = conv.clone(), cell.clone()
    conv[1], cell[1] = 0.0, 0.0
    return conv, cell


@pytest.mark.parametrize("carried", [False, True])
def test_outputs_states_and_gradients_match_the_package(carried):
    _, block = _block()
    x = torch.randn(3, 40, 32, dtype=torch.float64)
    conv, cell = _carried_state(block, 3) if carried else (None, None)
    results = []
    for run in (_package, _ours):
        block.zero_grad()
        xi = x.clone().requires_grad_()
        y, new_conv, new_cell = run(block, xi, conv, cell)
        (y.sin().sum() + new_cell[:, :3].cos().sum()).backward()  # m (state 3) has no gradient path in the package
        grads = {n: p.grad.clone() for n, p in block.named_parameters() if p.grad is not None}
        results.append((y.detach(), new_conv.detach(), new_cell.detach(), xi.grad, grads))
    (y0, conv0, cell0, gx0, g0), (y1, conv1, cell1, gx1, g1) = results
    torch.testing.assert_close(y1, y0, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(conv1, conv0)
    torch.testing.assert_close(cell1, cell0, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(gx1, gx0, rtol=1e-8, atol=1e-10)
    assert set(g1) == set(g0) and len(g0) >= 8
    for name in g0:
        torch.testing.assert_close(g1[name], g0[name], rtol=1e-8, atol=1e-10, msg=name)


def test_backbone_uses_our_forward_for_the_vanilla_backend(monkeypatch):
    backbone, _ = _block()
    calls = []
    import lram_agents.backbones.xlstm as module

    monkeypatch.setattr(module, "slstm_layer_forward", lambda *a, **k: calls.append(1) or slstm_layer_forward(*a, **k))
    backbone(torch.randn(2, 5, 32, dtype=torch.float64))
    assert calls == [1]


def test_compiled_recurrence_matches_the_eager_one():
    """kernel='compiled' runs the sLSTM recurrence through torch.compile while gradients are recorded."""
    torch.manual_seed(0)
    eager = XLSTMBackbone(XLSTMConfig(d_model=16, num_blocks=2, num_heads=2, slstm_at=[0])).double()
    compiled = XLSTMBackbone(XLSTMConfig(d_model=16, num_blocks=2, num_heads=2, slstm_at=[0], kernel="compiled")).double()
    with torch.no_grad():
        eager.stack.blocks[0].xlstm.slstm_cell._recurrent_kernel_.normal_(0, 0.3)
    x = torch.randn(2, 21, 16, dtype=torch.float64)  # 1 token, then chunks of 16 and 4
    # the stabiliser m (state 3) has no gradient path
    assert_backbones_agree(eager, compiled, x, lambda y, state: y.sin().sum() + state["0.slstm"][:, :3].square().sum(),
                           tol=1e-10, grad_rtol=1e-9, grad_atol=1e-10)


@pytest.mark.parametrize("length", [1, 2, 17])
def test_short_sequences_match_the_package(length):
    """One token (an inference step of one-token layouts), two, and one past a chunk boundary."""
    _, block = _block()
    x = torch.randn(2, length, 32, dtype=torch.float64)
    conv, cell = _carried_state(block, 2)
    with torch.no_grad():
        (y, new_conv, state), (y_ref, conv_ref, state_ref) = _ours(block, x, conv, cell), _package(block, x, conv, cell)
    torch.testing.assert_close(y, y_ref, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(new_conv, conv_ref)
    # row 0 carries on as in the package; row 1 was reset to the empty state, and the package treats it as
    # empty only when every row of the batch is (its rule looks at the whole batch). Ours starts it like an
    # empty state whatever the other rows hold: h and c / n agree, the stabiliser m (and with it the common
    # scale of c and n) may differ.
    torch.testing.assert_close(state[0], state_ref[0], rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(state[1, 0], state_ref[1, 0], rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(state[1, 1] / state[1, 2], state_ref[1, 1] / state_ref[1, 2], rtol=1e-9, atol=1e-10)
