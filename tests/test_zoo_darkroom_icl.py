"""The zoo's in-context Dark-Room agent: loaded by name with sampled actions, it replays its card and improves
over consecutive trials on hold-out goals without a gradient step.

The card's numbers come from ``examples/darkroom/evaluate.py --sample --seed 0`` (20 hold-out goals x 40
trials, memory kept), kept in ``zoo/xlstm-darkroom-icl/evaluation.json``; here the same calls replay them.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import lram_agents
from lram_agents.envs import task_family, task_vector_env
from lram_agents.registry import default_manifest

ENV_ID = "lram_agents/DarkRoom-v0"
NAME = "xlstm-darkroom-icl"
GOALS, TRIALS = 20, 40  # the card's whole table: about 35 s on one CPU core

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py says why


@pytest.fixture(scope="module")
def card():
    directory = default_manifest().parent / lram_agents.model_info(NAME).local
    report = json.loads((directory / "evaluation.json").read_text())
    return report, np.asarray(report["results"]["sampled, seed 0"]["returns"])


@pytest.fixture(scope="module")
def replayed():
    agent = lram_agents.load(NAME, device="cpu", deterministic=False, seed=0)
    goals = task_family(ENV_ID).holdout_tasks()[:GOALS]
    result = lram_agents.evaluate(agent, task_vector_env(ENV_ID, goals), n_episodes=GOALS * TRIALS, keep_memory=True, seed=0,
                                  progress=False)
    return agent, result.trial_returns()


def test_the_zoo_agent_keeps_memory_and_targets_80(replayed):
    agent, _ = replayed
    assert agent.keep_memory and agent.target_return == 80.0


def test_load_and_evaluate_reproduce_the_card(card, replayed):
    report, expected = card
    _, returns = replayed
    assert [tuple(g) for g in report["goals"]] == list(task_family(ENV_ID).holdout_tasks()[:GOALS])
    assert returns.shape == expected.shape == (GOALS, TRIALS)
    # seeded sampling: the same episodes unless float rounding on another CPU flips a near-tie, after which
    # that goal's later trials differ; the means must stay within noise
    assert abs(returns.mean() - expected.mean()) <= 3.0


def test_returns_rise_over_the_trials_in_context(replayed):
    _, returns = replayed
    first, last10 = returns[:, 0], returns[:, -10:].mean(axis=1)
    gain = last10 - first
    stderr = gain.std(ddof=1) / np.sqrt(len(gain))
    assert gain.mean() > 2 * stderr and last10.mean() > 2 * first.mean()
