"""Named initialisations (lram_agents.initialization) and their use from ``lram train`` configs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lram_agents.config import LRAMConfig
from lram_agents.config_utils import ConfigError
from lram_agents.initialization import apply_init
from lram_agents.model import LRAMModel
from lram_agents.run_configs import ModelSection, build_model

XLSTM_7_1 = {"backbone": {"type": "xlstm", "d_model": 32, "num_blocks": 3, "num_heads": 4, "slstm_at": [1], "context_tokens": 64},
             "max_state_dim": 4, "max_action_dims": 1, "num_action_bins": 2}
MAMBA = {"backbone": {"type": "mamba", "d_model": 16, "num_layers": 2}, "max_state_dim": 4, "max_action_dims": 1, "num_action_bins": 2}


def _model(fields: dict) -> LRAMModel:
    return LRAMModel(LRAMConfig.from_dict(fields))


def _mlstm_cells(model):
    return [b.xlstm.mlstm_cell for b in model.backbone.stack.blocks if hasattr(b.xlstm, "mlstm_cell")]


def test_train_config_init_sets_the_mlstm_gates():
    model = build_model(ModelSection(inline=XLSTM_7_1, init={"mlstm_forget_bias": [8, 20], "mlstm_input_bias": -4}))
    cells = _mlstm_cells(model)
    assert len(cells) == 2
    for cell in cells:
        torch.testing.assert_close(cell.fgate.bias, torch.linspace(8, 20, 4))
        assert torch.all(cell.igate.bias == -4)
    default = _mlstm_cells(build_model(ModelSection(inline=XLSTM_7_1)))[0]
    assert float(default.fgate.bias.detach().max()) <= 6.0  # the package's own init is left alone without an init section


def test_slstm_forget_bias_reaches_the_forget_gate_the_cell_uses():
    model = _model(XLSTM_7_1)
    apply_init(model, {"slstm_forget_bias": [10, 10]})
    cell = model.backbone.stack.blocks[1].xlstm.slstm_cell
    gates = cell._bias.view(4, -1)  # the vanilla kernel reads i, f, z, o gate-major from this vector
    assert torch.all(gates[1] == 10) and not torch.any(gates[[0, 2, 3]] == 10)


def test_slstm_forget_bias_keeps_the_cell_state():
    """The stabilised normaliser n_t = f' n_{t-1} + exp(i~_t - m_t): with f ~ 0 (bias -30) every token starts it
    over at exactly 1; with f ~ 1 (bias 30) it sums the tokens' input gates. Biases put on another gate
    (i, z or o) would leave the two alike."""
    from lram_agents.backbones.slstm import slstm_layer_forward

    def normaliser(bias):
        model = _model(XLSTM_7_1)
        apply_init(model, {"slstm_forget_bias": [bias, bias]})
        torch.manual_seed(0)
        _, _, state = slstm_layer_forward(model.backbone.stack.blocks[1].xlstm, torch.randn(1, 50, 32), None, None)
        return state[0, 2].detach()

    torch.testing.assert_close(normaliser(-30.0), torch.ones(32))
    assert float(normaliser(30.0).mean()) > 3.0


def test_mamba_dt_range():
    model = _model(MAMBA)
    apply_init(model, {"mamba_dt_range": [1e-4, 1e-3]})
    for layer in model.backbone.layers:
        dt = F.softplus(layer.mixer.dt_proj.bias)
        assert float(dt.min()) >= 1e-4 * 0.999 and float(dt.max()) <= 1e-3 * 1.001


@pytest.mark.parametrize("init, match", [
    ({"mlstm_forget_gate": [1, 2]}, "unknown names.*mlstm_forget_gate"),
    ({"mlstm_forget_bias": "big"}, "init.mlstm_forget_bias"),
])
def test_bad_init_is_refused_when_the_config_is_read(init, match):
    with pytest.raises(ConfigError, match=match):
        ModelSection(inline=XLSTM_7_1, init=init)


def test_init_for_another_backbone_names_it():
    with pytest.raises(ConfigError, match="needs a mamba backbone, not xlstm"):
        build_model(ModelSection(inline=XLSTM_7_1, init={"mamba_dt_range": [1e-3, 1e-2]}))
    with pytest.raises(ConfigError, match="mlstm blocks; the backbone is mamba"):
        build_model(ModelSection(inline=MAMBA, init={"mlstm_forget_bias": [8, 20]}))
    with pytest.raises(ConfigError, match="init.mlstm_input_bias"):
        build_model(ModelSection(inline=XLSTM_7_1, init={"mlstm_input_bias": [1, 2]}))  # one argument, not two


def test_init_with_pretrained_is_refused():
    with pytest.raises(ConfigError, match="model.init"):
        ModelSection(pretrained="xlstm-tmaze", init={"mlstm_forget_bias": [8, 20]})
