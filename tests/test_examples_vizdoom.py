"""examples/vizdoom on a tiny scale: the data of the scripted policy at several skill levels."""

import json

import h5py

import numpy as np
import pytest

from example_scripts import import_example_scripts
from lram_agents.data.dataset import TrajectoryDataset

(make_data,) = import_example_scripts("vizdoom", ("make_data",))

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py says why


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Three episodes of at most 12 steps (epsilons 0 and 1: the scripted policy and uniform actions)."""
    pytest.importorskip("vizdoom", reason="the 'vizdoom' extra is not installed (pip install 'lram_agents[vizdoom]')")
    output = tmp_path_factory.mktemp("vizdoom_data")
    make_data.main(["--output", str(output), "--episodes", "3", "--max-steps", "12", "--epsilons", "0", "1"])
    return output


def test_episodes_are_stored_as_rgb_frames_with_their_skill_level(data):
    files = sorted(data.glob("episode-*.h5"))
    assert [p.name for p in files] == ["episode-00000.h5", "episode-00001.h5", "episode-00002.h5"]
    for index, path in enumerate(files):
        episode = TrajectoryDataset(path).episode(0)
        assert episode.observations.shape == (len(episode) + 1, 3, 64, 112) and episode.observations.dtype == np.uint8
        assert len(episode) == 12 and episode.truncations[-1] and not episode.terminations.any()  # cut at --max-steps
        assert episode.task in ("red", "green")
        with h5py.File(path, "r") as f:
            metadata = json.loads(f.attrs["metadata"])
        assert metadata["epsilon"] == [0.0, 1.0][index % 2] and metadata["seed"] == index
        assert metadata["return"] == pytest.approx(float(episode.rewards.sum()), abs=1e-4)


def test_episode_is_reproducible_from_its_seed(data):
    import gymnasium as gym

    from lram_agents.envs.vizdoom_two_colors import ENV_ID, ScriptedMemoryPolicy

    env = gym.make(ENV_ID)
    try:
        replayed, _ = make_data.play_episode(env, ScriptedMemoryPolicy(env), epsilon=1.0, seed=1, max_steps=12)
    finally:
        env.close()
    recorded = TrajectoryDataset(data / "episode-00001.h5").episode(0)
    np.testing.assert_array_equal(replayed.actions, recorded.actions)
    np.testing.assert_array_equal(replayed.observations, recorded.observations)


def test_rerun_skips_recorded_episodes_and_refuses_other_settings(data, capsys):
    before = {p: p.stat().st_mtime_ns for p in data.glob("episode-*.h5")}
    make_data.main(["--output", str(data), "--episodes", "3", "--max-steps", "12", "--epsilons", "0", "1"])
    assert "all 3 episodes" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in data.glob("episode-*.h5")} == before
    with pytest.raises(SystemExit, match="max_steps"):
        make_data.main(["--output", str(data), "--episodes", "3", "--max-steps", "20", "--epsilons", "0", "1"])


def test_summary_groups_by_skill_level(data):
    table = make_data.summary(data)
    assert table.startswith("3 episodes, 36 steps")
    assert "| 0 | 2 |" in table and "| 1 | 1 |" in table


def test_bad_settings_are_named():
    with pytest.raises(SystemExit, match="epsilons"):
        make_data.RecordingSettings(epsilons=[1.5])
    with pytest.raises(SystemExit, match="max-steps"):
        make_data.RecordingSettings(max_steps=0)
