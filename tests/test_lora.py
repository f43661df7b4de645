"""LoRA adapters: a fresh adapter changes nothing, merging equals the adapted model, save/load round trips."""

import json

import pytest
import torch
from conftest import SMALL_BACKBONES, random_timesteps, small_config

from lram_agents.config import LRAMConfig
from lram_agents.config_utils import ConfigError
from lram_agents.finetune import FinetuneConfig, prepare_model
from lram_agents.lora import LoRAConfig, LoRALinear, load_base_weights, lora_parameter_names, merge_lora
from lram_agents.model import LRAMModel


def adapted_copy(model: LRAMModel, lora: LoRAConfig) -> LRAMModel:
    adapted = LRAMModel(LRAMConfig.from_dict({**model.config.to_dict(), "lora": lora.__dict__}))
    load_base_weights(adapted, model.state_dict())
    return adapted.eval()


def perturb_adapters(model: LRAMModel) -> None:
    with torch.no_grad():
        for name in lora_parameter_names(model):
            model.get_parameter(name).normal_(0, 0.2)


@pytest.mark.parametrize("backbone", sorted(SMALL_BACKBONES))
def test_fresh_adapters_compute_the_pretrained_function_and_merging_is_exact(backbone):
    base = LRAMModel(small_config(backbone, include_actions=True)).eval()
    steps = random_timesteps(2, 8, actions=4)
    adapted = adapted_copy(base, LoRAConfig(rank=4, alpha=8))
    assert any(isinstance(m, LoRALinear) for m in adapted.backbone.modules())
    with torch.no_grad():
        torch.testing.assert_close(adapted(steps).logits, base(steps).logits)  # B = 0 at the start
        perturb_adapters(adapted)
        changed = adapted(steps).logits
        assert not torch.allclose(changed, base(steps).logits, atol=1e-3)
        merged = merge_lora(adapted)
        assert merged.config.lora is None and not any(isinstance(m, LoRALinear) for m in merged.modules())
        torch.testing.assert_close(merged(steps).logits, changed, rtol=1e-4, atol=1e-5)


def test_adapted_model_saves_and_loads_like_any_model(tmp_path):
    base = LRAMModel(small_config("xlstm-7:1")).eval()
    adapted = adapted_copy(base, LoRAConfig(rank=2, targets=["*proj_up"]))
    perturb_adapters(adapted)
    adapted.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["lora"] == {"rank": 2, "alpha": 16.0, "dropout": 0.0, "targets": ["*proj_up"]}
    loaded = LRAMModel.from_pretrained(tmp_path)
    steps = random_timesteps(2, 5)
    with torch.no_grad():
        torch.testing.assert_close(loaded(steps).logits, adapted(steps).logits)
    names = {n.rsplit(".", 2)[-2] for n in lora_parameter_names(loaded)}
    assert names == {"proj_up"}  # only the targeted layers (mLSTM up-projections and sLSTM feed-forwards)


def test_plain_configs_keep_their_json_and_bad_settings_are_named():
    config = small_config("mamba")
    assert "lora" not in config.to_dict()
    assert LRAMConfig.from_dict({**config.to_dict(), "lora": {"rank": 3}}).lora == LoRAConfig(rank=3)
    with pytest.raises(ConfigError, match="lora.rank"):
        LoRAConfig(rank=0)
    with pytest.raises(ConfigError, match="unknown config field.*'lora'"):
        LRAMConfig.from_dict({**config.to_dict(), "lora": {"rnak": 3}})
    with pytest.raises(ConfigError, match="match no linear layer.*in_proj"):
        LRAMModel(LRAMConfig.from_dict({**config.to_dict(), "lora": {"targets": ["nothing*"]}}))


def test_mamba_step_size_projection_is_never_adapted():
    model = LRAMModel(LRAMConfig.from_dict({**small_config("mamba").to_dict(), "lora": {}}))
    adapted = {n.rsplit(".", 2)[-2] for n in lora_parameter_names(model)}
    assert adapted == {"in_proj", "x_proj", "out_proj"}  # dt_proj is read by weight in the CUDA kernel


def test_prepare_model_trains_only_adapters_and_named_modules():
    base = LRAMModel(small_config("transformer"))
    model = prepare_model(base, FinetuneConfig(method="lora", train_also=["head"]))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == set(lora_parameter_names(model)) | {"head.proj.weight", "head.proj.bias"}
    with pytest.raises(ConfigError, match="train_also.*'encoder'.*state_encoder"):
        prepare_model(base, FinetuneConfig(method="lora", train_also=["encoder"]))
    full = prepare_model(base, FinetuneConfig(method="full"))
    assert full is base and all(p.requires_grad for p in full.parameters())


def test_a_model_with_adapters_is_merged_before_new_adapters_are_added():
    base = LRAMModel(small_config("xlstm-1:0")).eval()
    adapted = adapted_copy(base, LoRAConfig(rank=2))
    perturb_adapters(adapted)
    again = prepare_model(adapted, FinetuneConfig(method="lora")).eval()
    steps = random_timesteps(1, 4)
    with torch.no_grad():
        torch.testing.assert_close(again(steps).logits, adapted(steps).logits, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("backbone", sorted(SMALL_BACKBONES))
def test_adapters_act_on_the_fast_paths_of_an_inference_step_and_of_compiled_training(backbone):
    """An inference step of a few rows reads the weights of plain linear layers directly (``base.linear``, the
    xLSTM's gates as one product-sum); an adapted layer must still add its adapter there, and in the xLSTM's compiled
    training kernel, whose gates then receive gradients."""
    base = LRAMModel(small_config(backbone)).eval()
    adapted = adapted_copy(base, LoRAConfig(rank=2))
    perturb_adapters(adapted)
    merged = merge_lora(adapted)
    step = random_timesteps(1, 1)  # 3 rows: the few-row paths
    with torch.inference_mode():
        torch.testing.assert_close(adapted(step).logits, merged(step).logits, rtol=1e-3, atol=1e-4)
    if backbone.startswith("xlstm"):
        for model in (adapted, merged):
            model.backbone.config.kernel = "compiled"
        steps = random_timesteps(2, 8)
        logits = adapted(steps).logits
        torch.testing.assert_close(logits, merged(steps).logits, rtol=1e-3, atol=1e-4)
        logits.square().mean().backward()
        gate_adapters = [p for name, p in adapted.named_parameters() if "gate.lora_B" in name]
        assert gate_adapters and all(p.grad is not None and p.grad.abs().sum() > 0 for p in gate_adapters)
