"""The fast step (compiled, bf16) against the plain model call.

Compiling is what these tests cost (~30 s of CPU per graph here), so compiled models have two blocks
(``compile_config``: the same step code as deeper ones) and each test compiles few graphs: a rollout
from ``init_state`` without resets needs one.
"""

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from conftest import SMALL_BACKBONES, random_timesteps, slice_steps, small_config
from lram_agents.agent import Agent
from lram_agents.inference import make_step
from lram_agents.model import LRAMModel


def compile_config(backbone: str):
    """``small_config(backbone)`` with two blocks (the xLSTM [7:1]'s second one its sLSTM)."""
    config = small_config(backbone)
    depth = {"num_blocks": 2} if backbone.startswith("xlstm") else {"num_layers": 2}
    return dataclasses.replace(config, backbone=dataclasses.replace(config.backbone, **depth))


def _rollout(step, steps, reset_at=4, state=None):
    """Logits of stepping through ``steps`` one timestep at a time; the first row restarts at ``reset_at`` (None: never)."""
    logits = []
    for t in range(steps.batch_shape[1]):
        start = torch.tensor([True, False]) if t == reset_at else None
        out = step(slice_steps(steps, (slice(None), slice(t, t + 1))), state, start)
        state = out.state
        logits.append(out.logits)
    return torch.cat(logits, dim=1)


def test_compiled_step_equals_the_plain_step():
    """From no state, across a reset, and donating its state as agents step: the xLSTM's step writes the new
    matrix memories into the given state's tensors and still equals the plain step, which leaves its input
    alone. (The Transformer's compiled step: the sliding-window test below.)"""
    model = LRAMModel(compile_config("xlstm-7:1")).eval()
    steps = random_timesteps(2, 8)
    step = make_step(model, compile=True, donate_state=True)
    with torch.inference_mode():
        plain = _rollout(model, steps)
        compiled = _rollout(step, steps)
        assert (plain - compiled).abs().max().item() <= 1e-4
        given = step(slice_steps(steps, (slice(None), slice(0, 1)))).state
        state = {name: t.clone() for name, t in given.items()}
        plain = model(slice_steps(steps, (slice(None), slice(1, 2))), state)
        assert all(torch.equal(state[name], given[name]) for name in state)
        donated = step(slice_steps(steps, (slice(None), slice(1, 2))), given)
        torch.testing.assert_close(donated.state, plain.state, rtol=1e-4, atol=1e-5)
        memories = [name for name in state if name.endswith(".CT")]
        assert memories and all(donated.state[name].data_ptr() == given[name].data_ptr() for name in memories)


def test_compiled_mamba_step_runs_the_recurrence_and_equals_the_plain_step(monkeypatch):
    """Mamba's compiled step traces the scan token by token (``scan_chunk_recurrent``, fused into one pass over the
    SSM state) where the plain step runs the parallel scan: the same logits and states over a rollout with a reset."""
    from lram_agents.backbones import mamba

    traced = []
    recurrence = mamba.scan_chunk_recurrent
    monkeypatch.setattr(mamba, "scan_chunk_recurrent", lambda *args: traced.append(torch.compiler.is_compiling()) or recurrence(*args))
    model = LRAMModel(compile_config("mamba")).eval()
    steps = random_timesteps(2, 8)
    step = make_step(model, compile=True, donate_state=True)
    with torch.inference_mode():
        plain = _rollout(model, steps)
        assert not traced  # the plain path keeps the parallel scan
        torch.testing.assert_close(_rollout(step, steps), plain, rtol=1e-4, atol=1e-4)
        assert traced and all(traced)
        given = model(slice_steps(steps, (slice(None), slice(0, 2)))).state
        plain = model(slice_steps(steps, (slice(None), slice(2, 3))), dict(given))
        compiled = step(slice_steps(steps, (slice(None), slice(2, 3))), dict(given))
        torch.testing.assert_close(compiled.state, plain.state, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("backbone", list(SMALL_BACKBONES))
def test_a_step_returns_its_state_in_the_layout_of_the_empty_state(backbone, batch):
    """Same shapes, dtypes and strides after a step (also one that resets a row) as ``init_state``'s: a compiled
    step is specialised on strides, so any difference compiles the second step again. At batch 1 the batch
    dimension's stride counts too (dynamo compares it, ``is_contiguous`` does not)."""
    model = LRAMModel(small_config(backbone)).eval()
    empty = model.init_state(batch)
    layout = lambda state: {name: (t.shape, t.dtype, t.stride()) for name, t in state.items()}  # noqa: E731
    with torch.inference_mode():
        state = model(random_timesteps(batch, 1), dict(empty)).state
        assert layout(state) == layout(empty)
        state = model(random_timesteps(batch, 1, seed=1), state, torch.tensor([True, False][:batch])).state
        assert layout(state) == layout(empty)


def test_bf16_weights_stay_close_to_fp32():
    model = LRAMModel(small_config("xlstm-1:0")).eval()
    reference = LRAMModel(small_config("xlstm-1:0")).eval()
    reference.load_state_dict(model.state_dict())
    steps = random_timesteps(2, 8)
    with torch.inference_mode():
        plain = _rollout(reference, steps)
        bf16 = _rollout(make_step(model, precision="bf16"), steps)
    assert model.head.proj.weight.dtype == torch.bfloat16 and bf16.dtype == torch.float32
    assert (plain - bf16).abs().max().item() < 0.1 * plain.abs().max().item()
    assert (plain.argmax(-1) == bf16.argmax(-1)).float().mean() >= 0.9


@pytest.mark.parametrize("backbone", ["transformer", "xlstm-1:0"])
def test_agent_with_the_compiled_step_acts_like_the_plain_agent(backbone):
    """Also with envs that sit out a step (``active``): the xLSTM's compiled step updates the state in place, so the
    agent must hand it a copy to put those rows back. The first step compiles every graph the others run (one for the
    xLSTM; the Transformer's step is split where its window slides)."""
    from torch._dynamo.utils import counters

    model = LRAMModel(compile_config(backbone)).eval()
    spaces = (gym.spaces.Box(-1, 1, (2,), np.float32), gym.spaces.Discrete(5))
    obs = np.random.default_rng(0).uniform(-1, 1, (6, 3, 2)).astype(np.float32)
    plain, fast = Agent(model, None, *spaces), Agent(model, None, *spaces, compile=True)
    assert fast._step_fn.donates_state == (backbone == "xlstm-1:0")
    torch._dynamo.reset()
    counters.clear()
    graphs = []
    for t, o in enumerate(obs):
        active = np.array([True, t % 2 == 0, True])
        assert np.array_equal(plain.act_batch(o, [0.1] * 3, active=active), fast.act_batch(o, [0.1] * 3, active=active))
        torch.testing.assert_close(fast.memory.model_state, plain.memory.model_state, rtol=1e-4, atol=1e-5)
        graphs.append(counters["stats"]["unique_graphs"])
    assert graphs == [1 if backbone == "xlstm-1:0" else graphs[0]] * len(obs), graphs


def test_unknown_precision_is_named():
    with pytest.raises(ValueError, match="'fp16'"):
        make_step(LRAMModel(small_config("transformer")), precision="fp16")


def test_auto_compiles_after_the_threshold_and_acts_as_before(monkeypatch):
    import lram_agents.inference as inference

    monkeypatch.setattr(inference, "AUTO_COMPILE_AFTER", 3)
    model = LRAMModel(compile_config("xlstm-1:0")).eval()
    spaces = (gym.spaces.Box(-1, 1, (2,), np.float32), gym.spaces.Discrete(5))
    obs = np.random.default_rng(0).uniform(-1, 1, (6, 3, 2)).astype(np.float32)
    plain, auto = Agent(model, None, *spaces, compile=False, deterministic=True), Agent(model, None, *spaces, deterministic=True)
    compiled_at = []
    for t, o in enumerate(obs):
        assert np.array_equal(plain.act_batch(o, [0.1] * 3), auto.act_batch(o, [0.1] * 3))
        compiled_at.append(auto._step_fn.compiled is not None)
    assert compiled_at == [False, False, False, True, True, True]
    assert plain._step_fn.compiled is None


def test_a_step_that_fails_to_compile_warns_and_stays_plain(monkeypatch):
    import lram_agents.inference as inference

    def broken(*args, **kwargs):
        raise RuntimeError("no C++ compiler")

    model = LRAMModel(small_config("xlstm-1:0")).eval()
    step = inference.StepFunction(model, compile=True)
    step.compiled = broken
    steps = random_timesteps(2, 1)
    with torch.inference_mode():
        with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler"):
            out = step(steps)
        torch.testing.assert_close(out.logits, model(steps).logits)
        step(steps)  # no second warning: the plain path for good
    assert step.compiled is None and step.mode is False


def test_compile_setting_is_checked():
    model = LRAMModel(small_config("xlstm-1:0"))
    with pytest.raises(ValueError, match="'yes'"):
        Agent(model, None, compile="yes")


def test_compiled_transformer_steps_through_a_sliding_window_with_one_graph():
    """The compiled Transformer step attends over its whole preallocated cache (static shapes): one graph
    for every step, also across the window's slides (done outside the graph), equal to the plain step."""
    from torch._dynamo.utils import counters

    config = compile_config("transformer")
    config = dataclasses.replace(config, backbone=dataclasses.replace(config.backbone, max_positions=12))  # 4 timesteps
    model = LRAMModel(config).eval()
    steps = random_timesteps(2, 10)
    torch._dynamo.reset()
    counters.clear()
    with torch.inference_mode():
        plain = _rollout(model, steps)  # slides at timesteps 4, 6, 8
        compiled = _rollout(make_step(model, compile=True), steps)
    assert (plain - compiled).abs().max().item() <= 1e-4
    assert counters["stats"]["unique_graphs"] <= 6, dict(counters["stats"])  # not one per cache length


def test_frozen_step_equals_the_plain_step_and_follows_weight_changes():
    """``make_step(compile=True)`` on CPU compiles the weights in as constants; after an in-place change of the
    weights (what an optimizer step does) it recompiles unfrozen and still equals the plain step."""
    from torch._dynamo.utils import counters

    from lram_agents.inference import FrozenStep

    model = LRAMModel(compile_config("xlstm-1:0")).eval()
    steps = random_timesteps(2, 6)
    step = make_step(model, compile=True)
    assert isinstance(step, FrozenStep)
    rollout = lambda step: _rollout(step, steps, reset_at=None, state=model.init_state(2, "cpu"))  # noqa: E731  (one graph)
    torch._dynamo.reset()
    counters.clear()
    with torch.inference_mode():
        before = rollout(model)
        assert (before - rollout(step)).abs().max().item() <= 1e-4
        assert counters["stats"]["unique_graphs"] == 1, dict(counters["stats"])  # every step from init_state: one graph
        head = model.head.proj.weight
        head.data.mul_(2.0)  # bypasses the version counter: the frozen constants do not see it
        assert (before - rollout(step)).abs().max().item() <= 1e-4, "the step was not frozen"
        assert step.frozen
        head.data.mul_(0.5)
    with torch.no_grad():
        head.mul_(3.0)  # an in-place update, as an optimizer makes
    with torch.inference_mode():
        after = rollout(model)
        assert (before - after).abs().max().item() > 1e-2
        assert (after - rollout(step)).abs().max().item() <= 1e-4
    assert not step.frozen


def test_frozen_steps_tell_models_apart_and_follow_edits_of_the_model():
    """A frozen step keeps torch.compile's guards on its arguments and on one weight's identity only
    (``guards_on_step_inputs``): another model of the same config still runs its own constants, and a model edited
    after the step compiled (LoRA adapters set on its modules; train mode) is stepped unfrozen, equal to its plain step."""
    from lram_agents.lora import LoRAConfig, add_lora

    torch.manual_seed(0)
    first, second = (LRAMModel(compile_config("xlstm-1:0")).eval() for _ in range(2))
    steps = random_timesteps(2, 1)

    def logits(step, model):
        return step(steps, model.init_state(2, "cpu")).logits

    with torch.inference_mode():
        step_one, step_two = make_step(first, compile=True), make_step(second, compile=True)
        for _ in range(2):  # each model after the other, twice: every call finds both steps' graphs compiled
            for step, model in ((step_one, first), (step_two, second)):
                assert (logits(step, model) - logits(model, model)).abs().max().item() <= 1e-4
        before = logits(first, first)
    add_lora(first.backbone, LoRAConfig(rank=2))
    with torch.no_grad():
        for name, weight in first.named_parameters():
            if name.endswith("lora_B"):
                weight.normal_()  # zero at first: the adapters would not change the output
    with torch.inference_mode():
        edited = logits(first, first)
        assert (edited - before).abs().max().item() > 1e-2
        assert (logits(step_one, first) - edited).abs().max().item() <= 1e-4
    assert not step_one.frozen and step_two.frozen
    second.train()
    with torch.inference_mode():
        assert (logits(step_two, second) - logits(second, second)).abs().max().item() <= 1e-4
    assert not step_two.frozen


def test_auto_compile_does_not_freeze_weights_that_changed_while_acting(monkeypatch):
    """Online fine-tuning changes the weights between steps: the auto-compiled step is then not frozen, which
    would only cost a second compile at the next change."""
    import lram_agents.inference as inference

    monkeypatch.setattr(inference, "AUTO_COMPILE_AFTER", 1)
    model = LRAMModel(compile_config("xlstm-1:0")).eval()
    step = inference.StepFunction(model)
    steps = random_timesteps(2, 1)
    with torch.inference_mode():
        step(steps)
    with torch.no_grad():
        model.head.proj.weight.mul_(0.5)
    with torch.inference_mode():
        out = step(steps)
        torch.testing.assert_close(out.logits, model(steps).logits, atol=1e-4, rtol=1e-4)
    assert step.compiled is not None and not isinstance(step.compiled, inference.FrozenStep)
    assert isinstance(inference.StepFunction(model, compile=True).compiled, inference.FrozenStep)
