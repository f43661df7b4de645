"""Importers of public data sets, on small files the tests write in each layout."""

from __future__ import annotations

import gzip
import json
import pickle

import h5py
import numpy as np
import pytest

from lram_agents.data import TrajectoryDataset
from lram_agents.data.importers import import_dqn_replay, import_lram, import_robomimic


def read_back(folder):
    dataset = TrajectoryDataset(folder)
    return dataset


def lram_trajectory(rng, T, state_dim=39, action_dim=4):
    return {"states": rng.normal(size=(T, state_dim)).astype(np.float32), "actions": rng.uniform(-1, 1, (T, action_dim)).astype(np.float32),
            "rewards": rng.uniform(0, 10, T).astype(np.float32)}


def test_lram_layout_one_trajectory_per_file_and_concatenated(tmp_path):
    rng = np.random.default_rng(0)
    source = tmp_path / "reach-v2"
    source.mkdir()
    trajectories = [lram_trajectory(rng, T) for T in (200, 200, 150)]
    for i, trj in enumerate(trajectories[:2]):  # LRAM's per-episode hdf5 files, dones a scalar
        with h5py.File(source / f"{i}.hdf5", "w") as f:
            for k, v in trj.items():
                f.create_dataset(k, data=v)
            f.create_dataset("dones", data=True)
    last = trajectories[2]  # a whole-task npz with per-step dones: two episodes of 100 and 50
    dones = np.zeros(150, bool)
    dones[99] = dones[149] = True
    np.savez(source / "rest.npz", dones=dones, **last)
    summary = import_lram(source, tmp_path / "out", domain="metaworld", task="reach")
    assert summary.episodes == 4 and summary.steps == 550
    expected = [t["rewards"].sum() for t in trajectories[:2]] + [last["rewards"][:100].sum(), last["rewards"][100:].sum()]
    np.testing.assert_allclose(summary.returns, expected, rtol=1e-5)
    dataset = read_back(tmp_path / "out")
    assert dataset.num_episodes == 4 and dataset.domain == "metaworld"
    with h5py.File(summary.files[0], "r") as f:
        np.testing.assert_array_equal(f["steps/observations"][:], trajectories[0]["states"])
        np.testing.assert_array_equal(f["steps/actions"][:], trajectories[0]["actions"])
        assert f["steps/terminations"][-1] and f["episodes/task"][0].decode() == "reach"


def test_lram_pickle_needs_consent(tmp_path):
    trj = {**lram_trajectory(np.random.default_rng(1), 10), "dones": True}
    (tmp_path / "t.pkl").write_bytes(pickle.dumps(trj))
    with pytest.raises(ValueError, match="allow_pickle=True"):
        import_lram(tmp_path / "t.pkl", tmp_path / "out", domain="metaworld")
    assert import_lram(tmp_path / "t.pkl", tmp_path / "out", domain="metaworld", allow_pickle=True).episodes == 1


def test_lram_layout_with_missing_keys_is_named(tmp_path):
    np.savez(tmp_path / "bad.npz", states=np.zeros((3, 2)), actions=np.zeros((3, 1)))
    with pytest.raises(ValueError, match=r"bad.npz lacks \['dones', 'rewards'\]"):
        import_lram(tmp_path / "bad.npz", tmp_path / "out", domain="dmcontrol")


def test_robomimic_layout(tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "stack.hdf5"
    lengths = (30, 45)
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps({"env_name": "Stack_D0", "type": 1})
        for i, T in enumerate(lengths):
            demo = data.create_group(f"demo_{i}")
            demo.create_dataset("actions", data=rng.uniform(-1, 1, (T, 7)))
            demo.create_dataset("rewards", data=np.r_[np.zeros(T - 1), 1.0])
            demo.create_dataset("dones", data=np.r_[np.zeros(T - 1), 1].astype(np.int64))
            for group in ("obs", "next_obs"):
                g = demo.create_group(group)
                g.create_dataset("robot0_eef_pos", data=rng.normal(size=(T, 3)))
                g.create_dataset("object", data=rng.normal(size=(T, 10)))
                g.create_dataset("agentview_image", data=np.zeros((T, 8, 8, 3), np.uint8))  # images are left out
    summary = import_robomimic(path, tmp_path / "out")
    assert summary.episodes == 2 and summary.steps == 75 and summary.returns == [1.0, 1.0]
    with h5py.File(summary.files[1], "r") as f, h5py.File(path, "r") as src:
        states = f["steps/observations"][:]
        assert states.shape == (45, 13)
        np.testing.assert_allclose(states[:, :10], src["data/demo_1/obs/object"][:], rtol=1e-6)  # keys sorted
        np.testing.assert_allclose(f["episodes/final_observation"][0, 10:], src["data/demo_1/next_obs/robot0_eef_pos"][-1], rtol=1e-6)
        assert f["episodes/task"][0].decode() == "Stack_D0"
        assert json.loads(f.attrs["metadata"])["obs_keys"] == ["object", "robot0_eef_pos"]


def test_dqn_replay_layout(tmp_path):
    rng = np.random.default_rng(3)
    N = 120
    terminals = np.zeros(N, np.uint8)
    terminals[[9, 49, 99]] = 1  # a circular buffer: 10 steps of an episode begun before, 40, 50, and an open one
    arrays = {"observation": rng.integers(0, 256, (N, 84, 84), dtype=np.uint8), "action": rng.integers(0, 18, N, dtype=np.int32),
              "reward": rng.integers(-1, 2, N).astype(np.float32), "terminal": terminals}
    shift = 30  # the oldest entry sits at add_count % capacity
    for name, array in arrays.items():
        with gzip.open(tmp_path / f"$store$_{name}_ckpt.7.gz", "wb") as f:
            np.save(f, np.roll(array, shift, axis=0))
    with gzip.open(tmp_path / "add_count_ckpt.7.gz", "wb") as f:
        np.save(f, np.array(N + shift))
    summary = import_dqn_replay(tmp_path, tmp_path / "out", game="breakout", checkpoint=7)
    assert summary.episodes == 2 and summary.steps == 90
    np.testing.assert_allclose(summary.returns, [arrays["reward"][10:50].sum(), arrays["reward"][50:100].sum()])
    with h5py.File(summary.files[0], "r") as f:
        assert f["steps/observations"].shape == (40, 1, 64, 64) and f["steps/observations"].dtype == np.uint8
        np.testing.assert_array_equal(f["steps/actions"][:], arrays["action"][10:50])
        assert f.attrs["domain"] == "atari"
    with pytest.raises(FileNotFoundError, match="not a DQN-Replay checkpoint"):
        import_dqn_replay(tmp_path, tmp_path / "x", game="breakout", checkpoint=8)
