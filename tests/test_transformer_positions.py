"""The Transformer's relative position kinds (ALiBi, RoPE) do what their papers define; step = parallel
for every kind is in test_recurrent_parity (SMALL_BACKBONES has each kind)."""

from __future__ import annotations

import pytest
import torch

from lram_agents.backbones.transformer import TransformerBackbone, TransformerConfig, _rotate
from lram_agents.config_utils import ConfigError


def _backbone(kind: str, heads: int = 4) -> TransformerBackbone:
    torch.manual_seed(0)
    return TransformerBackbone(TransformerConfig(d_model=32, num_layers=2, num_heads=heads, max_positions=64,
                                                 position_embedding=kind)).eval()


def test_rope_scores_depend_on_the_distance_only():
    backbone = _backbone("rope")
    q, k = torch.randn(1, 4, 1, 8), torch.randn(1, 4, 1, 8)

    def score(query_position, key_position):
        cq, sq = backbone._rotary(torch.tensor([[query_position]]), torch.float32)
        ck, sk = backbone._rotary(torch.tensor([[key_position]]), torch.float32)
        return (_rotate(q, cq, sq) * _rotate(k, ck, sk)).sum(-1)

    torch.testing.assert_close(score(7, 3), score(40, 36))
    assert not torch.allclose(score(7, 3), score(7, 5))


def test_alibi_bias_is_minus_slope_times_distance_under_the_causal_mask():
    backbone = _backbone("alibi")
    positions = torch.arange(5)
    causal = positions.view(-1, 1) >= positions.view(1, -1)
    bias = backbone._alibi(causal, positions.view(1, -1), positions, torch.float32)[0]  # (H, 5, 5)
    slopes = [2.0 ** (-8 * h / 4) for h in (1, 2, 3, 4)]
    for h, slope in enumerate(slopes):
        for i in range(5):
            for j in range(5):
                expected = -slope * (i - j) if j <= i else float("-inf")
                assert bias[h, i, j].item() == pytest.approx(expected)


@pytest.mark.parametrize("kind", ["alibi", "rope"])
def test_relative_kinds_add_no_vector_and_output_depends_on_order(kind):
    backbone = _backbone(kind)
    x = torch.randn(1, 6, 32)
    with torch.no_grad():
        y, _ = backbone(x)
        y_swapped, _ = backbone(x[:, [1, 0, 2, 3, 4, 5]])
    assert not hasattr(backbone, "pos_emb")
    # tokens after the swap see the same set of earlier tokens at other distances: positions are used
    assert not torch.allclose(y[:, 2:], y_swapped[:, 2:], atol=1e-5)


def test_bad_position_kind_and_odd_rope_head_are_refused():
    with pytest.raises(ConfigError, match="position_embedding"):
        TransformerConfig(d_model=32, num_heads=4, position_embedding="timestep")
    with pytest.raises(ConfigError, match="rope needs an even head dimension"):
        TransformerConfig(d_model=12, num_heads=4, position_embedding="rope")
