"""RATE: segment-wise inference equals the segment-wise training forward; memory, cache and curriculum."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from conftest import random_timesteps
from lram_agents.backbones import RATEConfig
from lram_agents.config import LRAMConfig
from lram_agents.config_utils import ConfigError
from lram_agents.model import LRAMModel, Timesteps
from lram_agents.segments import curriculum, curriculum_stage, iter_segments, sample_window, segment_forward

TOL = 1e-4
K = 4  # timesteps per segment: 12 tokens of (a_{t-1}, R̂_t, o_t)
BACKBONE = RATEConfig(d_model=64, num_layers=2, num_heads=4, segment_tokens=3 * K, num_memory_tokens=3, cache_tokens=3 * K)


def rate_model(**backbone_overrides) -> LRAMModel:
    backbone = dataclasses.replace(BACKBONE, **backbone_overrides)
    config = LRAMConfig(backbone=backbone, max_state_dim=12, token_layout="rate", include_actions=True)
    return LRAMModel(config).eval()


def rate_steps(batch: int, steps: int, seed: int = 0) -> Timesteps:
    """(a_{t-1}, R̂_t, o_t) inputs: RATE takes no rewards."""
    return dataclasses.replace(random_timesteps(batch, steps, actions=4, seed=seed), prev_rewards=None)


def step_through(model: LRAMModel, steps: Timesteps, reset_at: int | None = None, reset_rows=None) -> torch.Tensor:
    state, outputs = None, []
    for t in range(steps.batch_shape[1]):
        start = reset_rows if t == reset_at else None
        out = model(steps.map(lambda x: x[:, t : t + 1]), state, episode_start=start)
        state, _ = out.state, outputs.append(out.logits)
    return torch.cat(outputs, dim=1)


def test_one_timestep_per_call_equals_the_segment_wise_training_forward():
    model, steps = rate_model(), rate_steps(3, 3 * K + 2)  # three full segments and a partial one
    with torch.no_grad():
        stepped = step_through(model, steps)
        trained = segment_forward(model, steps).logits  # one model call per segment, memory detached between
        one_call = model(steps).logits  # the backbone cuts the segments itself
    diff = (stepped - trained).abs().max().item()
    print(f"RATE: max |one timestep per call - segment-wise forward| = {diff:.2e}")
    assert diff <= TOL and (one_call - trained).abs().max().item() <= TOL


def test_rows_reset_mid_segment_start_their_own_segments():
    model, steps = rate_model(), rate_steps(3, 3 * K)
    rows, boundary = torch.tensor([True, False, True]), K + 2  # mid-segment: rows fall out of phase
    with torch.no_grad():
        stepped = step_through(model, steps, reset_at=boundary, reset_rows=rows)
        whole = segment_forward(model, steps).logits
        fresh = segment_forward(model, steps.map(lambda x: x[:, boundary:])).logits
    assert (stepped[~rows] - whole[~rows]).abs().max().item() <= TOL
    assert (stepped[rows, boundary:] - fresh[rows]).abs().max().item() <= TOL
    assert (stepped[rows, :boundary] - whole[rows, :boundary]).abs().max().item() <= TOL


def _change_first_observation(steps: Timesteps) -> Timesteps:
    states = steps.states.clone()
    states[:, 0] += 3.0
    return dataclasses.replace(steps, states=states)


def _effect_on_third_segment(model: LRAMModel) -> float:
    steps = rate_steps(2, 3 * K)
    with torch.no_grad():
        a = segment_forward(model, steps).logits[:, 2 * K :]
        b = segment_forward(model, _change_first_observation(steps)).logits[:, 2 * K :]
    return (a - b).abs().max().item()


def test_memory_tokens_carry_the_first_observation_two_segments_on():
    # untrained, the effect is small (~1e-4) but far above rounding; without memory it is exactly 0
    assert _effect_on_third_segment(rate_model(cache_tokens=0)) > 1e-6


def test_without_memory_and_cache_segments_are_independent():
    assert _effect_on_third_segment(rate_model(num_memory_tokens=0, cache_tokens=0)) == 0.0


def test_the_cache_alone_reaches_the_next_segment():
    model, steps = rate_model(num_memory_tokens=0), rate_steps(2, 2 * K)
    with torch.no_grad():
        a = segment_forward(model, steps).logits[:, K:]
        b = segment_forward(model, _change_first_observation(steps)).logits[:, K:]
    assert (a - b).abs().max().item() > 1e-3


def test_detaching_between_segments_cuts_the_gradient():
    model = rate_model(cache_tokens=0).train()
    for detach, crosses in ((True, False), (False, True)):
        steps = rate_steps(2, 2 * K)
        steps.states.requires_grad_(True)
        outputs = list(iter_segments(model, steps, detach=detach))
        outputs[-1][1].logits.sum().backward()  # the second segment's loss only
        reached_first = steps.states.grad[:, :K].abs().sum().item() > 0
        assert reached_first == crosses


def test_memory_noise_perturbs_the_passed_memory_in_training_only():
    model, steps = rate_model(cache_tokens=0, memory_noise=0.5), rate_steps(2, 2 * K)
    with torch.no_grad():
        model.train()
        a, b = segment_forward(model, steps).logits, segment_forward(model, steps).logits
        model.eval()
        c, d = segment_forward(model, steps).logits, segment_forward(model, steps).logits
    assert torch.equal(a[:, :K], b[:, :K])  # the first segment reads the learned initial memory, no noise
    assert (a[:, K:] - b[:, K:]).abs().max().item() > 1e-4  # the second reads a noisy memory, new each call
    assert torch.equal(c, d) and torch.equal(c[:, :K], a[:, :K])


def test_memory_noise_must_not_be_negative():
    with pytest.raises(ConfigError, match="memory_noise"):
        dataclasses.replace(BACKBONE, memory_noise=-0.1)


def test_segment_must_hold_whole_timesteps():
    with pytest.raises(ConfigError, match="segment_tokens"):
        LRAMConfig(backbone=dataclasses.replace(BACKBONE, segment_tokens=10), token_layout="rate", include_actions=True)
    assert LRAMConfig(backbone=BACKBONE, token_layout="rate", include_actions=True).segment_steps == K


def test_segment_steps_must_be_given_for_backbones_without_segments():
    from conftest import small_config

    model = LRAMModel(small_config("mamba"))
    with pytest.raises(ValueError, match="segment_steps"):
        segment_forward(model, random_timesteps(1, 4))
    assert segment_forward(model, random_timesteps(1, 4), segment_steps=2).logits.shape[1] == 4


def test_curriculum_over_segments():
    stages = curriculum(3)
    assert [s.num_segments for s in stages] == [1, 2, 3]
    assert [s.trajectory_segments for s in stages] == [(1,), (1, 2), (1, 2, 3)]
    assert stages[2].max_steps(30) == 90
    assert curriculum_stage(stages, 0, 100).num_segments == 1
    assert curriculum_stage(stages, 250, 100).num_segments == 3
    assert curriculum_stage(stages, 10_000, 100).num_segments == 3  # the last stage goes on
    with pytest.raises(ValueError, match="max_segments"):
        curriculum(0)


def test_sample_window():
    assert sample_window(200, 3, 30) == slice(0, 90)
    assert sample_window(50, 3, 30) == slice(0, 50)
    g = torch.Generator().manual_seed(0)
    starts = {sample_window(200, 3, 30, from_start=False, generator=g).start for _ in range(50)}
    assert len(starts) > 10 and min(starts) >= 0 and max(starts) <= 110
