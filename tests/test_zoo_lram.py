"""The zoo's multi-domain generalists: loaded by name, they replay part of their cards.

The cards' numbers come from ``examples/lram/evaluate.py`` (``lram_agents.evaluate_suite``, episodes in
parallel copies of each task's env, first reset seeded 0, the agent's saved decoding), kept by ``examples/lram/ship.py``
in ``zoo/<name>/evaluation.json``. Here the same calls replay a few tasks of two domains.
"""

from __future__ import annotations

import json

import pytest

import lram_agents
from lram_agents.envs import domains
from lram_agents.registry import default_manifest

REPLAY = {"xlstm-lram-1m": [("metaworld", "train", "button-press"), ("metaworld", "holdout", "hand-insert"),
                            ("dmcontrol", "train", "cartpole-swingup")],
          "dt-lram-1m": [("metaworld", "train", "button-press")]}

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py says why


def card(name: str) -> dict:
    return json.loads((default_manifest().parent / lram_agents.model_info(name).local / "evaluation.json").read_text())


@pytest.mark.parametrize("name,domain,split,task", [(n, *t) for n, tasks in REPLAY.items() for t in tasks])
def test_the_generalist_replays_its_card(name, domain, split, task):
    if not domains.get(domain).available():
        pytest.skip(domains.get(domain).missing())
    report = card(name)
    (row,) = [t for t in report["suites"][f"{domain}/{split}"]["tasks"] if t["task"] == task]
    agent = lram_agents.load(name, compile=False)
    episodes = report["episodes"]
    env_kwargs = {"seed": report["seed"]} if domain == "metaworld" else {}  # as evaluate.py: one set of task variations
    score = lram_agents.evaluate_suite(agent, domain, split=split, episodes=episodes, tasks=[task], num_envs=episodes,
                                       seed=report["seed"], env_kwargs=env_kwargs, progress=False).scores[0]
    assert score.mean_return == pytest.approx(row["mean_return"], rel=1e-3, abs=1e-3)
    assert score.normalized == pytest.approx(row["normalized"], rel=1e-3, abs=1e-3)


def test_a_generalist_acts_in_every_domain_it_was_trained_on():
    agent = lram_agents.load("xlstm-lram-1m", compile=False)
    trained = {key for key in agent.preprocessing.tasks if not key.startswith("domain:")}
    assert {domains.parse_env_id(env_id)[0].name for env_id in trained} == set(domains.list_domains())
    assert agent.preprocessing.tasks[domains.env_id("metaworld", "reach")]["reward_scale"] == 200.0
