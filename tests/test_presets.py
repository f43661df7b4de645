"""Parameter counts of the Table-6 presets, built on the meta device (no memory)."""

import pytest

from lram_agents.presets import PAPER_PARAMETERS, SIZES, build_on_meta, preset

CASES = [("transformer", None), ("xlstm", "7:1"), ("xlstm", "1:0")]


@pytest.mark.parametrize("backbone,variant", CASES)
@pytest.mark.parametrize("size", SIZES)
def test_preset_parameter_count_matches_the_paper(backbone, variant, size):
    model = build_on_meta(preset(backbone, size, variant))
    count = model.num_parameters()
    ratio = count / PAPER_PARAMETERS[size]
    print(f"{backbone} {variant or ''} {size}: {count / 1e6:.1f}M parameters ({ratio:.3f} x paper)")
    assert 0.9 <= ratio <= 1.1
    assert next(model.parameters()).device.type == "meta"


def test_xlstm_uses_twice_the_transformers_blocks_and_the_papers_slstm_positions():
    for size, positions in zip(SIZES, ([1], [1, 3], [1, 3], [1, 3, 5])):
        xl, tf = preset("xlstm", size).backbone, preset("transformer", size).backbone
        assert xl.num_blocks == 2 * tf.num_layers and xl.d_model == tf.d_model
        assert xl.slstm_at == positions
        assert preset("xlstm", size, "1:0").backbone.slstm_at == []


def test_unknown_preset_values_are_named():
    with pytest.raises(ValueError, match="'17m'"):
        preset("xlstm", "17m")
    with pytest.raises(ValueError, match="'lstm'"):
        preset("lstm", "16m")
    with pytest.raises(ValueError, match="'3:1'"):
        preset("xlstm", "16m", "3:1")
