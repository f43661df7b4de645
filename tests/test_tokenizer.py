import numpy as np
import pytest
import torch

from lram_agents.tokenizer import ActionTokenizer


def test_round_trip_within_half_a_bin():
    tok = ActionTokenizer(num_bins=256)
    values = torch.linspace(-1.0, 1.0, 200_001, dtype=torch.float64)
    values = torch.cat([values, torch.tensor([-1.0, 1.0, 0.0, -1 + 1e-12, 1 - 1e-12], dtype=torch.float64)])
    decoded = tok.decode_continuous(tok.encode_continuous(values)).double()
    worst = (decoded - values).abs().max().item()
    print(f"worst round-trip error {worst:.6f} (half a bin = {1 / 256:.6f})")
    assert worst <= 1 / 256 + 1e-7


def test_bins_cover_the_range_uniformly():
    tok = ActionTokenizer(num_bins=256)
    bins = tok.encode_continuous(np.array([-1.0, -1.0 + 2 / 256, 0.0, 1.0]))
    assert bins.tolist() == [0, 1, 128, 255]
    centres = tok.decode_continuous(torch.arange(256))
    assert torch.allclose(centres[1:] - centres[:-1], torch.full((255,), 2 / 256), atol=1e-6)


@pytest.mark.parametrize("bad", [1.5, -1.0001, float("inf")])
def test_out_of_range_is_rejected_with_the_value(bad):
    with pytest.raises(ValueError, match=str(bad)[:5] if bad != float("inf") else "non-finite"):
        ActionTokenizer().encode_continuous(torch.tensor([0.0, bad]))


def test_nan_is_rejected():
    with pytest.raises(ValueError, match="nan"):
        ActionTokenizer().encode_continuous(np.array([0.1, np.nan]))


def test_discrete_actions():
    tok = ActionTokenizer()
    assert tok.encode_discrete([0, 3, 17], num_actions=18).tolist() == [0, 3, 17]
    with pytest.raises(ValueError, match="4"):
        tok.encode_discrete([4], num_actions=4)
    with pytest.raises(ValueError, match="19"):
        tok.encode_discrete([0], num_actions=19)
    with pytest.raises(ValueError, match="whole"):
        tok.encode_discrete(torch.tensor([1.5]), num_actions=4)
    with pytest.raises(ValueError, match="256"):
        tok.decode_continuous(torch.tensor([256]))
