"""The zoo's Dark-Room agents: loaded by name, they replay their cards and learn in context on hold-out goals.

The card's numbers come from ``examples/darkroom/evaluate.py`` (20 hold-out goals x 40 trials, memory kept;
greedy, and sampled with seeds 0-2), kept by ``examples/darkroom/ship.py`` in ``zoo/<name>/evaluation.json``.
Here the calls a user makes (``lram_agents.load`` + ``lram_agents.evaluate`` on ``task_vector_env``) replay
the sampled seed-0 table in full and the greedy one's first trials.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import lram_agents
from lram_agents.envs import task_family, task_vector_env
from lram_agents.registry import default_manifest

ENV_ID = "lram_agents/DarkRoom-v0"
GOALS, TRIALS, GREEDY_TRIALS = 20, 40, 10  # about 35 s + 10 s per agent on one CPU core

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py says why


@pytest.fixture(scope="module", params=["mamba-darkroom", "dt-darkroom"])  # Mamba; the Transformer with RoPE
def name(request):
    return request.param


@pytest.fixture(scope="module")
def card(name):
    directory = default_manifest().parent / lram_agents.model_info(name).local
    report = json.loads((directory / "evaluation.json").read_text())
    run = report["shipped"]
    return report, np.asarray(report["sampled"]["0"][run]["returns"]), np.asarray(report["greedy"][run]["returns"])


def _play(agent, trials: int) -> np.ndarray:
    goals = task_family(ENV_ID).holdout_tasks()[:GOALS]
    result = lram_agents.evaluate(agent, task_vector_env(ENV_ID, goals), n_episodes=GOALS * trials, seed=0, progress=False)
    return result.trial_returns()


@pytest.fixture(scope="module")
def sampled(name):
    agent = lram_agents.load(name, device="cpu", seed=0)  # the zoo agent samples by default
    return agent, _play(agent, TRIALS)


def test_the_zoo_agent_is_an_in_context_agent(sampled):
    agent, _ = sampled
    assert agent.keep_memory and agent.target_return == 80.0 and not agent.deterministic
    assert agent.observation_space == task_vector_env(ENV_ID, [(0, 6)]).single_observation_space


def test_load_and_evaluate_reproduce_the_cards_sampled_returns(card, sampled):
    report, expected, _ = card
    _, returns = sampled
    assert [tuple(g) for g in report["goals"]] == list(task_family(ENV_ID).holdout_tasks()[:GOALS])
    assert returns.shape == expected.shape == (GOALS, TRIALS)
    # seeded sampling replays the same episodes unless float rounding on another CPU flips a near-tie, after
    # which that goal's later trials differ; the means must stay within noise
    assert abs(returns.mean() - expected.mean()) <= 3.0
    assert abs(returns[:, -10:].mean() - expected[:, -10:].mean()) <= 6.0


def sign_test_p(better: int, worse: int) -> float:
    """One-sided exact sign test: the chance of at least ``better`` of ``better + worse`` goals improving by luck."""
    n = better + worse
    return sum(math.comb(n, k) for k in range(better, n + 1)) / 2**n


def test_returns_rise_over_the_trials_in_context(name, sampled):
    _, returns = sampled
    if name == "dt-darkroom":  # issue 19: a Transformer that learns in context, last 10 trials >= 20
        assert returns[:, -10:].mean() >= 20
    gain = returns[:, -10:].mean(axis=1) - returns[:, 0]  # per goal: last 10 trials vs the first, no gradient step
    # paired over goals; a sign test because a goal's return is nearly all-or-nothing (found or not)
    assert gain.mean() > 0 and sign_test_p(int((gain > 0).sum()), int((gain < 0).sum())) < 0.01


def test_greedy_actions_replay_the_cards_greedy_returns(name, card):
    _, _, expected = card
    returns = _play(lram_agents.load(name, device="cpu", deterministic=True), GREEDY_TRIALS)
    expected = expected[:, :GREEDY_TRIALS]
    # greedy actions in a deterministic env: the same episodes up to a rare near-tie flipped by float rounding
    assert returns.shape == expected.shape
    assert np.mean(returns == expected) >= 0.9
    assert abs(returns.mean() - expected.mean()) <= 2.0
