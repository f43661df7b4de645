"""Minari import / export round trip (skipped when the optional ``minari`` extra is not installed)."""

import gymnasium as gym
import numpy as np
import pytest

from lram_agents.data import TrajectoryDataset
from trajectory_helpers import CONTINUOUS, DISCRETE, VECTOR_SPACE, write_dataset

minari = pytest.importorskip("minari", reason="the optional minari extra is not installed (pip install 'lram_agents[minari]', needs numpy >= 2)")

IMAGES = gym.spaces.Box(0, 255, (12, 12, 3), np.uint8)


@pytest.mark.parametrize("obs_space,action_space", [(VECTOR_SPACE, DISCRETE), (IMAGES, CONTINUOUS)])
def test_minari_round_trip_is_exact(tmp_path, monkeypatch, obs_space, action_space):
    from lram_agents.data.minari_io import export_to_minari, import_from_minari

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    write_dataset(tmp_path / "ours", [4, 9, 2], obs_space, action_space, per_file=2, history_id=5, domain="atari")
    ours = TrajectoryDataset(tmp_path / "ours")
    exported = export_to_minari(ours, "lram/roundtrip-v0")
    assert (exported.total_episodes, exported.total_steps) == (3, 15)
    back = import_from_minari("lram/roundtrip-v0", tmp_path / "back", domain="atari")
    assert back.observation_space == ours.observation_space and back.action_space == ours.action_space
    for i in range(3):
        a, b = ours.episode(i), back.episode(i)
        for name in ("observations", "actions", "rewards", "terminations", "truncations"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), name
        assert (a.task, a.history_id, a.episode_index) == (b.task, b.history_id, b.episode_index)
