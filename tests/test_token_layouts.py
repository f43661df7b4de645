"""Token layouts (LRAM, RATE, Algorithm Distillation), the regression head and the input-token noise."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from conftest import SMALL_BACKBONES, random_timesteps, small_config
from lram_agents.action_head import ActionSpec
from lram_agents.config import LRAMConfig
from lram_agents.config_utils import ConfigError
from lram_agents.model import LRAMModel, Timesteps
from lram_agents.preprocessing import previous

TOL = 1e-4
RECURRENT = sorted(k for k in SMALL_BACKBONES if not k.startswith("rate"))  # RATE has its own tests (segments)


def transition_steps(batch: int, episodes: int, length: int, action_dims: int = 2, seed: int = 0) -> Timesteps:
    """A cross-episode history: ``episodes`` episodes of ``length`` steps back to back, continuous actions.

    Inputs follow one rule everywhere: (s_{t-1}, a_{t-1}, r_{t-1}) are the previous step's, across the
    episode boundary too (so the last reward of an episode reaches the next one); zeros at the start.
    """
    g = torch.Generator().manual_seed(seed)
    T = episodes * length
    states = torch.randn(batch, T, 5, generator=g)
    actions = torch.rand(batch, T, action_dims, generator=g) * 2 - 1
    rewards = torch.randn(batch, T, generator=g)
    return Timesteps(states, prev_rewards=previous(rewards, 0.0), prev_actions=previous(actions, 0.0), prev_states=previous(states, 0.0))


def ad_config(backbone: str, **overrides) -> LRAMConfig:
    fields = dict(token_layout="transition", include_actions=True, action_head="regression")
    return small_config(backbone, **{**fields, **overrides})


@pytest.mark.parametrize("backbone", RECURRENT)
def test_transition_tokens_step_equals_parallel_across_an_episode_boundary_with_memory_kept(backbone):
    model = LRAMModel(ad_config(backbone)).eval()
    steps = transition_steps(2, episodes=2, length=7)
    with torch.no_grad():
        whole = model(steps).logits  # the two episodes in one context
        state, outputs = None, []
        for t in range(steps.batch_shape[1]):  # memory kept: no reset at the boundary
            out = model(steps.map(lambda x: x[:, t : t + 1]), state)
            state, _ = out.state, outputs.append(out.logits)
        stepped = torch.cat(outputs, dim=1)
    diff = (stepped - whole).abs().max().item()
    print(f"{backbone} transition tokens: max |step - parallel| over 2 episodes = {diff:.2e}")
    assert diff <= TOL
    assert model.config.tokens_per_step == 1 and whole.shape == (2, 14, 8)


@pytest.mark.parametrize("layout", ["lram", "rate", "ad", "transition"])
def test_every_layout_steps_like_its_parallel_forward(layout):
    config = small_config("mamba", token_layout=layout, include_actions=True)
    model = LRAMModel(config).eval()
    base = transition_steps(2, 1, 6)
    steps = Timesteps(
        base.states,
        returns_to_go=torch.randn(2, 6) if config.needs_returns_to_go else None,
        prev_rewards=base.prev_rewards if config.needs_prev_rewards else None,
        prev_actions=base.prev_actions,
        prev_states=base.prev_states if config.needs_prev_states else None,
    )
    with torch.no_grad():
        whole, state, outputs = model(steps).logits, None, []
        for t in range(6):
            out = model(steps.map(lambda x: x[:, t : t + 1]), state)
            state, _ = out.state, outputs.append(out.logits)
    assert (torch.cat(outputs, dim=1) - whole).abs().max().item() <= TOL


def test_layouts_name_their_tokens_and_inputs():
    expect = {
        ("lram", False): (("prev_reward", "state", "return_to_go"), ("prev_rewards", "states", "returns_to_go")),
        ("lram", True): (("prev_action", "prev_reward", "state", "return_to_go"), ("prev_actions", "prev_rewards", "states", "returns_to_go")),
        ("rate", True): (("prev_action", "return_to_go", "state"), ("prev_actions", "returns_to_go", "states")),
        ("ad", True): (("prev_action", "prev_reward", "state"), ("prev_actions", "prev_rewards", "states")),
        ("transition", True): (("transition",), ("prev_states", "prev_actions", "prev_rewards", "states")),
    }
    for (layout, actions), (tokens, fields) in expect.items():
        config = small_config("mamba", token_layout=layout, include_actions=actions)
        assert config.tokens == tokens and config.input_fields == fields
        assert config.needs_prev_actions == config.include_actions == actions


def test_layouts_that_feed_actions_require_include_actions():
    with pytest.raises(ConfigError, match="include_actions"):
        small_config("mamba", token_layout="transition")
    with pytest.raises(ConfigError, match="token_layout"):
        small_config("mamba", token_layout="gato", include_actions=True)


def test_missing_or_extra_inputs_are_named():
    model = LRAMModel(ad_config("mamba"))
    steps = transition_steps(1, 1, 3)
    with pytest.raises(ValueError, match="needs Timesteps.prev_states"):
        model(dataclasses.replace(steps, prev_states=None))
    with pytest.raises(ValueError, match="does not take Timesteps.returns_to_go"):
        model(dataclasses.replace(steps, returns_to_go=torch.zeros(1, 3)))
    with pytest.raises(ValueError, match="prev_states has shape"):
        model(dataclasses.replace(steps, prev_states=steps.prev_states[..., :4]))


def test_noise_is_added_to_input_tokens_in_training_only():
    model = LRAMModel(ad_config("mamba", token_noise_std=0.1))
    steps = transition_steps(4, 1, 50)
    model.eval()
    clean = model.embed(steps)
    assert torch.equal(clean, model.embed(steps)) and torch.equal(model(steps).logits, model(steps).logits)
    model.train()
    noise = model.embed(steps) - clean
    print(f"token noise std measured {noise.std().item():.4f} (configured 0.1), mean {noise.mean().item():+.4f}")
    assert abs(noise.std().item() - 0.1) < 0.005 and abs(noise.mean().item()) < 0.005
    assert not torch.equal(model(steps).logits, model(steps).logits)


def test_regression_head_trains_on_a_toy_regression(one_thread):
    """Actions are a fixed nonlinear function of the current state: the MSE must drop well below its start."""
    torch.manual_seed(0)
    model = LRAMModel(ad_config("mamba")).train()
    spec = ActionSpec("continuous", 2)
    w = torch.randn(5, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for step in range(80):
        steps = transition_steps(8, 1, 10, seed=step)
        target = torch.tanh(steps.states @ w)
        loss = model.head.loss(model(steps).logits, target, spec)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    print(f"regression head: MSE {first:.4f} -> {last:.4f} in 80 steps")
    assert last < 0.25 * first


def test_regression_head_masks_padding_and_rejects_discrete_or_bad_actions():
    model = LRAMModel(ad_config("mamba"))
    head, spec = model.head, ActionSpec("continuous", 3)
    output = torch.randn(2, 4, 8, requires_grad=True)
    head.loss(output, torch.rand(2, 4, 3) * 2 - 1, spec).backward()
    assert output.grad[..., :3].abs().sum() > 0 and output.grad[..., 3:].abs().sum() == 0
    decoded = head.decode(output.detach() * 100, spec)
    assert decoded.shape == (2, 4, 3) and decoded.abs().max() <= 1.0
    with pytest.raises(ValueError, match="continuous actions only"):
        head.loss(output, torch.zeros(2, 4), ActionSpec("discrete", 4))
    with pytest.raises(ValueError, match="outside"):
        head.loss(output, torch.full((2, 4, 3), 1.5), spec)


def test_configs_saved_before_the_layouts_existed_still_load():
    legacy = {  # a config.json as the foundation wrote it
        "backbone": dataclasses.asdict(SMALL_BACKBONES["xlstm-1:0"]), "max_state_dim": 12, "image_shape": None,
        "include_actions": False, "num_discrete_actions": 18, "max_action_dims": 8, "num_action_bins": 256,
    }
    config = LRAMConfig.from_dict(json.loads(json.dumps(legacy)))
    assert config.token_layout == "lram" and config.action_head == "binned" and config.tokens_per_step == 3


@pytest.mark.parametrize("layout", ["rate", "transition"])
def test_save_load_round_trip_of_new_layouts(tmp_path, layout):
    config = small_config("rate" if layout == "rate" else "mamba", token_layout=layout, include_actions=True,
                          action_head="regression" if layout == "transition" else "binned")
    model = LRAMModel(config).eval()
    model.save_pretrained(tmp_path)
    loaded = LRAMModel.from_pretrained(tmp_path)
    assert loaded.config == config
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[name]), name
