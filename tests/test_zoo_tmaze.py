"""The zoo's T-Maze agents: loaded by name, they reproduce their cards' success rates (fewer seeds)."""

import math
import re

import gymnasium as gym
import numpy as np
import pytest

import lram_agents
from lram_agents.pretrained import default_zoo

SHIPPED = "xlstm-tmaze"  # RATE's protocol: trained on <= 3 segments
LONG = "xlstm-tmaze-long"  # then fine-tuned on <= 9 segments
HORIZON = "xlstm-tmaze-10k"  # then on <= 33 segments and on episodes of up to 10,000 steps
RATE = "rate-tmaze"  # RATE without a Transformer-XL cache, curriculum to 3 segments
SEEDS = 25  # seeds 0..24: the first of the cards' 100, so the results should agree closely
SEGMENTS = (1, 2, 3, 5, 9, 12)
ROW = re.compile(r"^\| success rate @ (\d+) segments \(L = (\d+)\), (\d+) seeds \| ([0-9.]+) \|$", re.MULTILINE)
STEP_ROW = re.compile(r"^\| success rate @ (\d+) steps \(L = (\d+)\), (\d+) seeds \| ([0-9.]+) \|$", re.MULTILINE)


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py says why


def card_rates(name: str, rows: re.Pattern = ROW) -> dict[int, float]:
    card = (default_zoo().fetch(name) / "README.md").read_text()
    return {int(n): float(rate) for n, _, _, rate in rows.findall(card)}


def measured_rate(name: str, segments: int, seeds: int, steps: int | None = None) -> float:
    """Success over seeds 0..seeds-1 in episodes of n segments (or of ``steps`` steps)."""
    agent = lram_agents.load(name, device="cpu")
    steps = steps or 30 * segments
    envs = gym.make_vec("lram_agents/TMaze-v0", num_envs=seeds, vectorization_mode="sync", corridor_length=steps - 2)
    result = lram_agents.evaluate(agent, envs, seeds, seed=0, progress=False)
    assert len(result.returns) == seeds and np.all(result.lengths <= steps)  # truncated at T = L + 2
    return float(np.mean(result.returns))


def assert_within_noise(measured: float, expected: float, seeds: int) -> None:
    noise = 3 * math.sqrt(max(expected * (1 - expected), 0.01) / seeds)  # 3 standard errors
    assert abs(measured - expected) <= noise, (measured, expected)


@pytest.mark.parametrize("name", [SHIPPED, LONG])
def test_the_card_reports_every_length_and_the_target_is_met(name):
    rates = card_rates(name)
    assert set(SEGMENTS) | {100} <= set(rates)
    assert all(rates[n] >= 0.99 for n in (1, 2, 3, 5)), rates


@pytest.mark.parametrize("segments", SEGMENTS)
def test_load_and_evaluate_reproduce_the_card(segments):
    assert_within_noise(measured_rate(SHIPPED, segments, SEEDS), card_rates(SHIPPED)[segments], SEEDS)


@pytest.mark.parametrize("segments", [3, 100])
def test_the_fine_tuned_variant_holds_the_bit_for_3000_steps(segments):
    seeds = 12  # 100 segments: 3000 steps per episode
    assert_within_noise(measured_rate(LONG, segments, seeds), card_rates(LONG)[segments], seeds)


def test_rate_without_a_cache_reproduces_its_card():
    rates = card_rates(RATE)
    assert all(rates[n] >= 0.99 for n in (1, 2, 3, 5)), rates
    for segments in (3, 5):
        assert_within_noise(measured_rate(RATE, segments, SEEDS), rates[segments], SEEDS)


def test_the_horizon_agent_holds_the_bit_for_10000_steps():
    rates = card_rates(HORIZON, STEP_ROW)
    assert rates[10000] >= 0.99 and {30000, 100000} <= set(rates), rates
    seeds = 6  # 10,000 steps per episode
    assert_within_noise(measured_rate(HORIZON, 0, seeds, steps=10000), rates[10000], seeds)
