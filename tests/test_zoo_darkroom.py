"""The zoo's Dark-Room model: loaded by name, it plays the hold-out goals (memory kept) as its card says.

The card's numbers come from ``examples/darkroom/evaluate.py`` (20 hold-out goals x 40 trials), kept in
``zoo/<name>/evaluation.json``. Here the same code (``lram_agents.load`` + ``lram_agents.evaluate`` on
``task_vector_env``, memory kept by the agent's default) replays the card's first trials.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import lram_agents
from lram_agents.envs import task_family, task_vector_env
from lram_agents.registry import default_manifest

ENV_ID = "lram_agents/DarkRoom-v0"
NAME = "xlstm-darkroom"
GOALS, TRIALS = 20, 10  # the card's goals, its first quarter of the trials: about 10 s on one CPU core


@pytest.fixture(scope="module")
def card():
    directory = default_manifest().parent / lram_agents.model_info(NAME).local
    report = json.loads((directory / "evaluation.json").read_text())
    run = next(run for run, result in report["results"].items() if result["shipped"])
    return report, np.asarray(report["results"][run]["returns"])


@pytest.fixture(scope="module")
def replayed():
    agent = lram_agents.load(NAME, device="cpu")
    goals = task_family(ENV_ID).holdout_tasks()[:GOALS]
    result = lram_agents.evaluate(agent, task_vector_env(ENV_ID, goals), n_episodes=GOALS * TRIALS, seed=0, progress=False)
    return agent, result.trial_returns()


def test_the_zoo_agent_is_an_in_context_agent_with_target_80(replayed):
    agent, _ = replayed
    assert agent.keep_memory and agent.target_return == 80.0
    assert agent.observation_space == task_vector_env(ENV_ID, [(0, 6)]).single_observation_space


def test_load_and_evaluate_reproduce_the_cards_returns(card, replayed):
    report, table = card
    _, returns = replayed
    assert [tuple(g) for g in report["goals"][:GOALS]] == list(task_family(ENV_ID).holdout_tasks()[:GOALS])
    expected = table[:GOALS, :TRIALS]
    assert returns.shape == expected.shape
    # Greedy actions in a deterministic env, the same batch of envs as on the card: the episodes replay
    # exactly, up to float rounding (other thread counts or CPUs) that may flip a near-tie now and then.
    assert np.mean(returns == expected) >= 0.9
    assert abs(returns.mean() - expected.mean()) <= 2.0
