"""The HDF5 trajectory format: round trips, spaces, and clear errors on bad files."""

import gymnasium as gym
import h5py
import numpy as np
import pytest

from lram_agents.data import DatasetError, TrajectoryDataset, write_episodes
from lram_agents.data.format import space_from_json, space_to_json
from trajectory_helpers import CONTINUOUS, DISCRETE, VECTOR_SPACE, make_episode, write_dataset

IMAGES = gym.spaces.Box(0, 255, (1, 16, 16), np.uint8)


@pytest.mark.parametrize("obs_space,action_space,per_file", [(VECTOR_SPACE, DISCRETE, 1), (IMAGES, CONTINUOUS, 3)])
def test_episodes_round_trip_exactly(tmp_path, obs_space, action_space, per_file):
    episodes = write_dataset(tmp_path, [5, 1, 9, 4], obs_space, action_space, per_file=per_file)
    dataset = TrajectoryDataset(tmp_path)
    assert (dataset.num_episodes, dataset.num_steps) == (4, 19)
    assert dataset.observation_space == obs_space and dataset.action_space == action_space
    for i, expected in enumerate(episodes):
        got = dataset.episode(i)
        for name in ("observations", "actions", "rewards", "terminations", "truncations"):
            assert np.array_equal(getattr(got, name), getattr(expected, name)), name
        assert (got.task, got.history_id, got.episode_index) == (expected.task, expected.history_id, expected.episode_index)
    assert np.array_equal(dataset.read(2, "observations", 3, 7), episodes[2].observations[3:7])
    assert dataset.preprocessing().target_return == max(e.total_return for e in episodes)


def test_images_are_compressed_losslessly(tmp_path):
    write_dataset(tmp_path, [8], IMAGES, DISCRETE)
    with h5py.File(next(tmp_path.glob("*.h5"))) as f:
        assert f["steps/observations"].compression == "gzip"
        assert f["steps/observations"].dtype == np.uint8


def test_spaces_round_trip_through_json_with_infinite_bounds():
    box = gym.spaces.Box(np.array([-np.inf, 0.0], np.float32), np.array([np.inf, 1.5], np.float32), dtype=np.float32)
    for space in (box, gym.spaces.Discrete(5, start=1), IMAGES, CONTINUOUS):
        data = space_to_json(space)
        assert "Infinity" not in str(data)
        assert space_from_json(data) == space


def test_dict_spaces_are_refused_with_advice():
    with pytest.raises(DatasetError, match="FlattenObservation"):
        space_to_json(gym.spaces.Dict({"a": DISCRETE}))


def test_episode_shapes_are_validated(tmp_path):
    episode = make_episode(4, np.random.default_rng(0))
    with pytest.raises(ValueError, match="T \\+ 1"):
        type(episode)(episode.observations[:-1], episode.actions, episode.rewards, episode.terminations, episode.truncations)
    with pytest.raises(ValueError, match="observation space"):
        write_episodes(tmp_path / "x.h5", [episode], gym.spaces.Box(-1, 1, (5,), np.float32), DISCRETE)
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_truncated_file_gives_a_clear_error(tmp_path):
    write_dataset(tmp_path, [6, 7], per_file=2)
    path = next(tmp_path.glob("*.h5"))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=f"{path.name}.*truncated or corrupted"):
        TrajectoryDataset(tmp_path)


def test_corrupted_image_chunks_give_a_clear_error_when_read(tmp_path):
    write_dataset(tmp_path, [40], IMAGES, DISCRETE)
    path = next(tmp_path.glob("*.h5"))
    with h5py.File(path) as f:
        offset = f["steps/observations"].id.get_chunk_info(2).byte_offset
    raw = bytearray(path.read_bytes())
    raw[offset:offset + 64] = bytes(64)  # zero the start of a compressed chunk
    path.write_bytes(bytes(raw))
    dataset = TrajectoryDataset(tmp_path)
    with pytest.raises(DatasetError, match="truncated or corrupted"):
        dataset.read(0, "observations", 0, 40)


def test_foreign_hdf5_and_inconsistent_tables_are_refused(tmp_path):
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(DatasetError, match="not an lram_agents trajectory file"):
        TrajectoryDataset(tmp_path / "other.h5")
    write_dataset(tmp_path / "d", [3, 4], per_file=2)
    path = next((tmp_path / "d").glob("*.h5"))
    with h5py.File(path, "r+") as f:
        f["episodes/length"][1] = 9
    with pytest.raises(DatasetError, match="does not tile"):
        TrajectoryDataset(path)


def test_empty_dataset_and_missing_paths_are_refused(tmp_path):
    with pytest.raises(DatasetError, match="empty"):
        TrajectoryDataset(tmp_path)
    with pytest.raises(DatasetError, match="does not exist"):
        TrajectoryDataset(tmp_path / "nope")


def test_files_with_different_spaces_do_not_mix(tmp_path):
    write_dataset(tmp_path, [3], VECTOR_SPACE, DISCRETE)
    rng = np.random.default_rng(1)
    write_episodes(tmp_path / "z.h5", [make_episode(3, rng, VECTOR_SPACE, CONTINUOUS)], VECTOR_SPACE, CONTINUOUS)
    with pytest.raises(DatasetError, match="action_space"):
        TrajectoryDataset(tmp_path)


def test_histories_are_ordered_and_split_whole(tmp_path):
    write_dataset(tmp_path / "a", [3, 4, 5], history_id=0, seed=1)
    write_dataset(tmp_path / "b", [2, 2], history_id=1, seed=2)
    dataset = TrajectoryDataset([tmp_path / "b", tmp_path / "a"])
    histories = dataset.histories()
    assert [dataset.table.history_id[h].tolist() for h in histories] == [[0, 0, 0], [1, 1]]  # by history id
    assert [dataset.table.episode_index[h].tolist() for h in histories] == [[0, 1, 2], [0, 1]]
    train, val = dataset.split(0.5, seed=0)
    assert {len(train.histories()), len(val.histories())} == {1}
    assert train.num_steps + val.num_steps == dataset.num_steps


def test_cached_reads_agree_with_direct_reads(tmp_path):
    write_dataset(tmp_path, [6, 9, 4, 7, 5], IMAGES, CONTINUOUS, per_file=2)
    direct = TrajectoryDataset(tmp_path, cache_steps=0)
    cached = TrajectoryDataset(tmp_path, cache_steps=10)  # smaller than the data: entries get evicted
    cached._handles.capacity = 2  # fewer open files than files: handles get closed and reopened
    rng = np.random.default_rng(0)
    for _ in range(60):
        episode = int(rng.integers(5))
        length = int(direct.table.length[episode])
        start = int(rng.integers(length))
        stop = int(rng.integers(start, length + 1))
        for name in ("observations", "actions", "rewards", "terminations", "truncations"):
            assert np.array_equal(cached.read(episode, name, start, stop), direct.read(episode, name, start, stop)), name
    assert cached._small.size <= 10 + 9 and len(cached._handles.files) <= 2
