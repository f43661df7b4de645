"""Samplers: LRAM / RATE / AD windows against a plain reference, balanced mixing, sharding, errors."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from lram_agents.data import DatasetError, DataSource, TrajectoryDataset, TrajectorySampler
from lram_agents.data.sampler import images_to_model
from lram_agents.preprocessing import ActionAdapter, to_model_image
from trajectory_helpers import CONTINUOUS, DISCRETE, VECTOR_SPACE, tiny_config, write_dataset

IMAGES_HWC = gym.spaces.Box(0, 255, (16, 16, 1), np.uint8)


def reference_window(episodes, offset, context, scale, action_space, no_action):
    """The window from whole episodes concatenated in memory, computed step by step (the plain path)."""
    obs = np.concatenate([e.observations[:-1] for e in episodes])
    actions = np.concatenate([e.actions for e in episodes])
    rewards = np.concatenate([e.rewards for e in episodes]).astype(np.float64)
    episode_of = np.concatenate([np.full(len(e), i) for i, e in enumerate(episodes)])
    to_model = ActionAdapter(action_space).to_model
    rows = []
    for t in range(offset, min(offset + context, len(rewards))):
        same_episode = episode_of == episode_of[t]
        rtg = rewards[t:][same_episode[t:]].sum() / scale
        prev_r = rewards[t - 1] / scale if t > 0 else 0.0
        fresh = torch.tensor(no_action) if isinstance(action_space, gym.spaces.Discrete) else torch.zeros(action_space.shape)
        prev_a = to_model(actions[t - 1:t])[0] if t > 0 else fresh
        starts = t == 0 or episode_of[t - 1] != episode_of[t]
        rows.append((obs[t], to_model(actions[t:t + 1])[0], rtg, prev_r, prev_a, starts))
    return rows


def check_against_reference(batch, row, expected):
    n = len(expected)
    assert batch.mask[row].tolist() == [True] * n + [False] * (batch.mask.shape[1] - n)
    for t, (obs, action, rtg, prev_r, prev_a, starts) in enumerate(expected):
        assert torch.allclose(batch.inputs.states[row, t], torch.as_tensor(obs))
        assert torch.equal(batch.actions[row, t], action)
        assert batch.inputs.returns_to_go[row, t].item() == pytest.approx(rtg, abs=1e-5)
        assert batch.inputs.prev_rewards[row, t].item() == pytest.approx(prev_r, abs=1e-6)
        assert torch.allclose(batch.inputs.prev_actions[row, t].to(prev_a.dtype), prev_a)
        assert batch.episode_starts[row, t].item() == starts


@pytest.mark.parametrize("action_space", [DISCRETE, CONTINUOUS])
def test_subtrajectories_match_the_reference(tmp_path, action_space):
    episodes = write_dataset(tmp_path, [30, 6, 17], action_space=action_space, per_file=2)
    config = tiny_config(include_actions=True)
    source = DataSource(TrajectoryDataset(tmp_path, domain="atari"), context=10)  # atari: reward scale 20
    sampler = TrajectorySampler(source, config, batch_size=16, seed=3)
    for step in range(3):
        windows = sampler.plan(step)
        (batch,) = sampler.load(windows)
        for row, w in enumerate(windows):
            ep = episodes[w.sequence]
            assert 0 <= w.offset <= max(0, len(ep) - 10)
            # the reference sees the episode from its start, so r_{t-1} / a_{t-1} before the window are real
            expected = reference_window([ep], w.offset, 10, 20.0, action_space, config.num_discrete_actions)
            check_against_reference(batch, row, expected)


def test_from_start_windows_begin_at_the_first_step(tmp_path):
    episodes = write_dataset(tmp_path, [12, 3, 25])
    config = tiny_config(include_actions=True)
    sampler = TrajectorySampler(DataSource(TrajectoryDataset(tmp_path), context=8, windows="from_start"), config, batch_size=6, seed=0)
    windows = sampler.plan(0)
    (batch,) = sampler.load(windows)
    assert all(w.offset == 0 for w in windows)
    for row, w in enumerate(windows):
        check_against_reference(batch, row, reference_window([episodes[w.sequence]], 0, 8, 1.0, DISCRETE, config.num_discrete_actions))


def test_across_episode_windows_carry_rewards_and_actions_over_boundaries(tmp_path):
    history = write_dataset(tmp_path / "h0", [5, 4, 6, 3], history_id=0, seed=1)
    other = write_dataset(tmp_path / "h1", [7, 7], history_id=1, seed=2)
    config = tiny_config(include_actions=True)
    source = DataSource(TrajectoryDataset([tmp_path / "h1", tmp_path / "h0"]), context=9, windows="across_episodes")
    sampler = TrajectorySampler(source, config, batch_size=12, seed=5)
    windows = sampler.plan(0)
    (batch,) = sampler.load(windows)
    assert any(batch.episode_starts[i, 1:].any() for i in range(12))  # some window crosses a boundary
    for row, w in enumerate(windows):
        episodes = [history, other][w.sequence]
        check_against_reference(batch, row, reference_window(episodes, w.offset, 9, 1.0, DISCRETE, config.num_discrete_actions))


def test_short_sequences_are_padded_and_masked(tmp_path):
    write_dataset(tmp_path, [3])
    sampler = TrajectorySampler(DataSource(TrajectoryDataset(tmp_path), context=8), tiny_config(), batch_size=2)
    (batch,) = sampler.batch(0)
    assert batch.mask.sum(1).tolist() == [3, 3]
    assert batch.inputs.prev_actions is None  # the model does not take actions
    assert torch.all(batch.inputs.states[:, 3:] == 0)


def test_batches_are_a_pure_function_of_seed_and_step(tmp_path):
    write_dataset(tmp_path, [20, 9, 14])
    make = lambda seed: TrajectorySampler(DataSource(TrajectoryDataset(tmp_path), context=5), tiny_config(), 8, seed=seed)  # noqa: E731
    a, b = make(0), make(0)
    assert a.plan(4) == b.plan(4)
    assert torch.equal(a.batch(4)[0].inputs.states, b.batch(4)[0].inputs.states)
    assert a.plan(4) != a.plan(5) and a.plan(4) != make(1).plan(4)


def test_rank_shards_partition_the_global_batch(tmp_path):
    write_dataset(tmp_path, [20, 9, 14, 30])
    sampler = TrajectorySampler(DataSource(TrajectoryDataset(tmp_path), context=6), tiny_config(), batch_size=7, seed=2)
    (full,) = sampler.batch(3)
    shards = [sampler.batch(3, rank, 3)[0] for rank in range(3)]
    order = [i for rank in range(3) for i in range(rank, 7, 3)]
    assert torch.equal(torch.cat([s.inputs.states for s in shards]), full.inputs.states[order])
    assert torch.equal(torch.cat([s.actions for s in shards]), full.actions[order])


def test_domains_are_balanced_in_every_batch(tmp_path):
    write_dataset(tmp_path / "vec", [10, 12], VECTOR_SPACE, DISCRETE)
    write_dataset(tmp_path / "img", [10, 11], IMAGES_HWC, CONTINUOUS)
    write_dataset(tmp_path / "vec2", [15], VECTOR_SPACE, DISCRETE, seed=4)
    sources = [DataSource(TrajectoryDataset(tmp_path / name, name=name), context=4) for name in ("vec", "img", "vec2")]
    sampler = TrajectorySampler(sources, tiny_config(image_shape=(1, 16, 16)), batch_size=8, seed=0)
    seen = []
    for step in range(3):
        parts = sampler.batch(step)
        by_source = {p.source: p for p in parts}
        assert set(by_source) == {"vec+vec2", "img"}  # same spaces merge, different ones stay apart
        assert by_source["img"].inputs.states.shape[2:] == (1, 16, 16) and by_source["img"].inputs.states.dtype == torch.uint8
        assert by_source["img"].spec.kind == "continuous" and by_source["vec+vec2"].spec.kind == "discrete"
        seen.append(sorted(sampler._counts(step)))
    assert all(c == [2, 3, 3] for c in seen)


def test_image_fast_path_agrees_with_the_plain_conversion():
    frames = torch.randint(0, 256, (5, 16, 16, 1), dtype=torch.uint8)
    assert torch.equal(images_to_model(frames, (1, 16, 16)), to_model_image(frames, (1, 16, 16)))
    chw = frames.permute(0, 3, 1, 2).contiguous()
    assert torch.equal(images_to_model(chw, (1, 16, 16)), to_model_image(chw, (1, 16, 16)))


@pytest.mark.parametrize("obs_space,action_space,config,message", [
    (gym.spaces.Box(-1, 1, (9,), np.float32), DISCRETE, tiny_config(), "9-dim observations.*max_state_dim=8"),
    (IMAGES_HWC, DISCRETE, tiny_config(image_shape=(1, 32, 32)), "images of shape \\(16, 16, 1\\).*\\(1, 32, 32\\)"),
    (IMAGES_HWC, DISCRETE, tiny_config(), "no image encoder"),
    (VECTOR_SPACE, gym.spaces.Box(-1, 1, (9,), np.float32), tiny_config(), "size 9.*max_action_dims=8"),
    (VECTOR_SPACE, DISCRETE, tiny_config(num_discrete_actions=3), "size 4.*num_discrete_actions=3"),
])
def test_datasets_that_do_not_fit_the_model_are_refused(tmp_path, obs_space, action_space, config, message):
    write_dataset(tmp_path, [4], obs_space, action_space)
    with pytest.raises(DatasetError, match=message):
        TrajectorySampler(DataSource(TrajectoryDataset(tmp_path), context=4), config, batch_size=2)
