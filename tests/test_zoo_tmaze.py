"""The zoo's T-Maze agent: loaded by name, it reproduces its card's success rates (fewer seeds)."""

import math
import re

import gymnasium as gym
import numpy as np
import pytest
import torch

import lram_agents
from lram_agents.pretrained import default_zoo

NAME = "xlstm-tmaze"
SEEDS = 25  # seeds 0..24: the first of the card's 100, so the results should agree closely
SEGMENTS = (1, 2, 3, 5, 9, 12)
ROW = re.compile(r"^\| success rate @ (\d+) segments \(L = (\d+)\), (\d+) seeds \| ([0-9.]+) \|$", re.MULTILINE)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def card_rates() -> dict[int, float]:
    card = (default_zoo().fetch(NAME) / "README.md").read_text()
    return {int(n): float(rate) for n, _, _, rate in ROW.findall(card)}


def test_the_card_reports_every_length_and_the_target_is_met():
    rates = card_rates()
    assert set(SEGMENTS) | {100} <= set(rates)
    assert all(rates[n] >= 0.99 for n in (1, 2, 3, 5)), rates


@pytest.mark.parametrize("segments", SEGMENTS)
def test_load_and_evaluate_reproduce_the_card(segments):
    agent = lram_agents.load(NAME, device="cpu")
    envs = gym.make_vec("lram_agents/TMaze-v0", num_envs=SEEDS, vectorization_mode="sync", corridor_length=30 * segments - 2)
    result = lram_agents.evaluate(agent, envs, SEEDS, seed=0, progress=False)
    measured, expected = float(np.mean(result.returns)), card_rates()[segments]
    noise = 3 * math.sqrt(max(expected * (1 - expected), 0.01) / SEEDS)  # 3 standard errors of SEEDS episodes
    assert abs(measured - expected) <= noise, (segments, measured, expected)
    assert len(result.returns) == SEEDS and np.all(result.lengths <= 30 * segments)  # truncated at T = L + 2
