"""The zoo's ViZDoom-Two-Colors agent, loaded by name as a user would: it replays the episodes its card recorded
with it (``examples/vizdoom/ship.py``'s replay set: the evaluation's first seeds, cut short), and its card's
headline numbers are those of the 100-episode evaluation it ships with."""

import json
from pathlib import Path

import numpy as np
import pytest

import lram_agents
from example_scripts import import_example_scripts

ZOO = Path(__file__).resolve().parents[1] / "zoo"
SHIPPED = sorted(p.name for p in ZOO.glob("*-vizdoom") if (p / "evaluation.json").is_file())

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.skipif(not SHIPPED, reason="no ViZDoom agent in the zoo yet (examples/vizdoom/ship.py)")]


@pytest.fixture(params=SHIPPED)
def shipped(request):
    return request.param, json.loads((ZOO / request.param / "evaluation.json").read_text())


def test_the_agent_loaded_by_name_replays_its_recorded_episodes(shipped):
    pytest.importorskip("vizdoom", reason="the 'vizdoom' extra is not installed (pip install 'lram_agents[vizdoom]')")
    (evaluate,) = import_example_scripts("vizdoom", ("evaluate",))
    name, report = shipped
    replay = report["replay"]
    episodes = evaluate.play_agent(lram_agents.load(name, seed=0, keep_memory=False), replay["seeds"], replay["num_envs"],
                                   replay["max_steps"], replay["greedy"])
    for played, recorded in zip(episodes, replay["results"], strict=True):
        assert played["color"] == recorded["color"]
        assert (played["steps"], played["good"], played["bad"]) == (recorded["steps"], recorded["good"], recorded["bad"])
        assert played["return"] == pytest.approx(recorded["return"], abs=1e-3)


def test_the_card_states_the_evaluation_it_ships_with(shipped):
    name, report = shipped
    episodes = report["results"][report["shipped"]]
    assert len(episodes) == report["episodes"] == 100 and report["max_steps"] == 4200
    card = (ZOO / name / "README.md").read_text()
    rewards = np.array([e["return"] for e in episodes])
    assert f"reward {rewards.mean():.2f} ± {rewards.std(ddof=1) / np.sqrt(len(rewards)):.2f}" in card
    assert "| paper: RATE | 16.46 ± 6.90 | 372 (745 tics) |" in card
