"""The zoo's Algorithm Distillation agents on continuous control: loaded by name, they replay part of their cards.

The card's numbers come from ``examples/ad/evaluate.py`` (hold-out tasks x episodes x seeds, memory kept),
kept by ``examples/ad/ship.py`` in ``zoo/<name>/evaluation.json``. Here ``lram_agents.load`` +
``lram_agents.evaluate`` on ``task_vector_env`` replay seed 0 on the card's tasks for the first episodes.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import lram_agents
from lram_agents.envs import task_family, task_vector_env
from lram_agents.registry import default_manifest

EPISODES = 20  # of the card's episodes: ~20 s per agent on one CPU core

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py says why


def _ad_models() -> list[str]:
    manifest = json.loads(default_manifest().read_text())
    return [entry["name"] for entry in manifest["models"] if "-ad-" in entry["name"]]


@pytest.fixture(scope="module", params=_ad_models() or [None])
def shipped(request):
    name = request.param
    if name is None:
        pytest.skip("no Algorithm Distillation agent for continuous control is in the zoo yet (issue 18)")
    directory = default_manifest().parent / lram_agents.model_info(name).local
    report = json.loads((directory / "evaluation.json").read_text())
    agent = lram_agents.load(name, device="cpu", seed=0, deterministic=False)  # as evaluate.py plays it
    # every task of the card in one vector env, as evaluate.py played them: the sampler draws for all rows at once
    tasks = task_family(report["env_id"]).holdout_tasks()[: len(report["tasks"])]
    result = lram_agents.evaluate(agent, task_vector_env(report["env_id"], tasks), n_episodes=len(tasks) * EPISODES, seed=0,
                                  progress=False)
    return name, report, agent, result.trial_returns()


def test_the_zoo_agent_keeps_its_memory_across_episodes(shipped):
    _, report, agent, _ = shipped
    assert agent.keep_memory
    assert agent.observation_space == task_vector_env(report["env_id"], task_family(report["env_id"]).holdout_tasks()[:1]).single_observation_space


def test_load_and_evaluate_replay_the_cards_first_episodes(shipped):
    _, report, _, returns = shipped
    tasks = task_family(report["env_id"]).holdout_tasks()[: len(report["tasks"])]
    np.testing.assert_allclose(np.asarray([np.atleast_1d(t) for t in tasks], dtype=np.float64), np.asarray(report["tasks"]), rtol=1e-12)
    expected = np.asarray(report["results"][report["shipped"]]["per_seed"][0])[:, :EPISODES]
    # the same seeded episodes; MuJoCo is chaotic, so float rounding on another CPU may move single episodes
    assert returns.shape == expected.shape
    assert abs(returns.mean() - expected.mean()) <= 0.05 * abs(expected.mean()) + 0.5
    assert abs(returns[:, -5:].mean() - expected[:, -5:].mean()) <= 0.1 * abs(expected[:, -5:].mean()) + 1.0
