"""Parameter counts of the Table-6 presets, built on the meta device (no memory)."""

import pytest

from lram_agents.presets import PAPER_PARAMETERS, SIZES, build_on_meta, preset

CASES = [("transformer", None), ("xlstm", "7:1"), ("xlstm", "1:0"), ("mamba", None)]


@pytest.mark.parametrize("backbone,variant", CASES)
@pytest.mark.parametrize("size", SIZES)
def test_preset_parameter_count_matches_the_paper(backbone, variant, size):
    model = build_on_meta(preset(backbone, size, variant))
    count = model.num_parameters()
    ratio = count / PAPER_PARAMETERS[size]
    print(f"{backbone} {variant or ''} {size}: {count / 1e6:.1f}M parameters ({ratio:.3f} x paper)")
    # the sizes are the paper's round labels; every backbone lands within 10% of them (Mamba: +3.5% at most)
    assert 0.9 <= ratio <= 1.1
    assert next(model.parameters()).device.type == "meta"


@pytest.mark.parametrize("size", SIZES)
def test_mamba_has_more_parameters_than_the_transformer_as_the_paper_notes(size):
    """LRAM section 4.2: "Mamba has a significantly higher number of parameters than competitors"."""
    mamba = build_on_meta(preset("mamba", size)).num_parameters()
    transformer = build_on_meta(preset("transformer", size)).num_parameters()
    xlstm = build_on_meta(preset("xlstm", size)).num_parameters()
    print(f"{size}: mamba {mamba / 1e6:.2f}M, transformer {transformer / 1e6:.2f}M, xlstm [7:1] {xlstm / 1e6:.2f}M "
          f"(mamba / transformer = {mamba / transformer:.3f})")
    assert mamba > transformer and mamba > xlstm


def test_mamba_uses_twice_the_transformers_layers():
    for size in SIZES:
        mamba, tf = preset("mamba", size).backbone, preset("transformer", size).backbone
        assert mamba.num_layers == 2 * tf.num_layers and mamba.d_model == tf.d_model


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
    with pytest.raises(ValueError, match="'7:1'"):
        preset("mamba", "16m", "7:1")
