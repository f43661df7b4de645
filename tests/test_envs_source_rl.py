"""Source-RL learning histories: every transition of an SB3 run, in order, consistent with the env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from lram_agents.envs.source_rl import (
    LearningHistory,
    TransitionRecorder,
    algorithm_class,
    default_algorithm,
    record_learning_history,
    run_source_rl,
)

PPO_TINY = {"n_steps": 128, "batch_size": 64, "n_epochs": 1}


def assert_chained(history: LearningHistory, first_observation):
    """Within each copy, a step starts where the previous one ended, or at a reset after an end."""
    for env_index in np.unique(history.env_index):
        rows = np.flatnonzero(history.env_index == env_index)
        ends = history.terminated[rows] | history.truncated[rows]
        for previous, current, ended in zip(rows[:-1], rows[1:], ends[:-1]):
            expected = first_observation if ended else history.next_observations[previous]
            if expected is not None:
                assert np.array_equal(history.observations[current], expected)
            assert history.episode[current] == history.episode[previous] + int(ended)


def test_ppo_dark_room_history_is_complete_ordered_and_consistent():
    goal = (3, 2)
    history = record_learning_history(
        "lram_agents/DarkRoom-v0", goal, total_timesteps=300, seed=0, algorithm_kwargs=PPO_TINY
    )
    assert history.algorithm == "PPO" and history.task == goal
    assert len(history) == 384  # PPO rounds 300 up to whole rollouts of 128 steps: all are kept
    assert np.array_equal(history.observations[0], [0, 0])
    assert_chained(history, first_observation=np.array([0, 0]))
    on_goal = np.all(history.next_observations == goal, axis=1)
    assert np.array_equal(history.rewards, on_goal.astype(float))  # Dark-Room's reward, step by step
    assert history.truncated.sum() == 3 and not history.terminated.any()  # 100-step episodes
    assert np.array_equal(
        history.episode_returns(), [history.rewards[i * 100 : (i + 1) * 100].sum() for i in range(3)]
    )


def test_sac_streams_every_transition_of_every_copy_in_order():
    seen = []
    model = run_source_rl(
        "lram_agents/HalfCheetahVel-v0",
        1.0,
        seen.append,
        total_timesteps=120,
        n_envs=2,
        seed=0,
        algorithm_kwargs={"learning_starts": 100, "batch_size": 32},
    )
    assert [t.index for t in seen] == list(range(120)) and model.num_timesteps == 120
    assert [t.env_index for t in seen[:4]] == [0, 1, 0, 1]
    space = model.get_env().action_space
    assert all(space.contains(t.action) for t in seen)
    assert all(t.obs.shape == (17,) and np.isfinite(t.reward) for t in seen)
    copy0 = [t for t in seen if t.env_index == 0]
    assert all(np.array_equal(a.next_obs, b.obs) for a, b in zip(copy0[:-1], copy0[1:]))


def test_recorder_keeps_the_true_last_observation_of_an_episode():
    seen = []
    env = TransitionRecorder(gym.make("lram_agents/TMaze-v0", corridor_length=1), seen.append)
    env.reset(seed=0, options={"task": 1})
    env.step(0)
    env.step(1)
    assert seen[-1].terminated and seen[-1].reward == 1.0 and seen[-1].next_obs[0] == 1.0
    env.reset()
    env.step(0)
    assert seen[-1].episode == 1 and seen[-1].index == 2


def test_defaults_and_bad_arguments():
    assert default_algorithm("lram_agents/DarkRoom-v0") == "PPO"
    assert default_algorithm("lram_agents/AntDir-v0") == "SAC"
    with pytest.raises(ValueError, match="'PPO2'"):
        run_source_rl("lram_agents/DarkRoom-v0", (1, 1), print, total_timesteps=10, algorithm="PPO2")
    with pytest.raises(ValueError, match="None"):
        run_source_rl("lram_agents/DarkRoom-v0", None, print, total_timesteps=10)
    with pytest.raises(ValueError, match="total_timesteps"):
        run_source_rl("lram_agents/DarkRoom-v0", (1, 1), print, total_timesteps=0)
    with pytest.raises(ValueError, match=r"\(12, 1\)"):
        run_source_rl("lram_agents/DarkRoom-v0", (12, 1), print, total_timesteps=10)


def test_algorithm_names_cover_droq_and_every_sb3_algorithm():
    from stable_baselines3 import A2C, TD3

    from lram_agents.envs.droq import DroQ

    assert [algorithm_class(name) for name in ("A2C", "TD3", "DroQ")] == [A2C, TD3, DroQ]
    for bad in ("common", "VecEnv", "", None):  # a module, a non-algorithm class, nothing
        with pytest.raises(ValueError, match="DroQ"):
            algorithm_class(bad)


def test_written_history_is_the_streamed_one_downsampled(tmp_path):
    """The trajectory files of data.learning_history hold every k-th episode of the same run, step for step."""
    from lram_agents.data import TrajectoryDataset
    from lram_agents.data.learning_history import record_learning_history as write_learning_history
    from lram_agents.envs.source_rl import make_source_algorithm

    goal, kwargs = (3, 2), {"seed": 0, "algorithm_kwargs": PPO_TINY}
    streamed = record_learning_history("lram_agents/DarkRoom-v0", goal, total_timesteps=600, **kwargs)
    model = make_source_algorithm("lram_agents/DarkRoom-v0", goal, **kwargs)
    summary = write_learning_history(model, 600, tmp_path, keep_every=2, history_id=5, task=str(goal), domain="darkroom")
    assert summary.steps == len(streamed) == 640 and summary.episodes == 6
    assert np.allclose(summary.returns, streamed.episode_returns())
    dataset = TrajectoryDataset(tmp_path)
    assert isinstance(dataset.observation_space, gym.spaces.MultiDiscrete) and dataset.env_id == "lram_agents/DarkRoom-v0"
    (history,) = dataset.histories()
    assert dataset.table.episode_index[history].tolist() == [0, 2, 4] and set(dataset.table.history_id) == {5}
    for row in history:
        episode, rows = dataset.episode(int(row)), streamed.episode == dataset.table.episode_index[row]
        assert np.array_equal(episode.observations[:-1], streamed.observations[rows])
        assert np.array_equal(episode.observations[-1], streamed.next_observations[rows][-1])
        assert np.array_equal(episode.actions, streamed.actions[rows])
        assert np.array_equal(episode.rewards, streamed.rewards[rows])


def test_learn_recording_records_raw_observations_under_vec_normalize_and_unwraps():
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    from lram_agents.envs.source_rl import learn_recording

    venv = VecNormalize(make_vec_env("CartPole-v1", n_envs=2, seed=0))
    model = PPO("MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu")
    seen = []
    learn_recording(model, seen.append, 128)
    assert len(seen) == 128 and [t.env_index for t in seen[:4]] == [0, 1, 0, 1]
    starts = [t.obs for t in seen if t.index < 2]
    assert all(np.abs(obs).max() <= 0.05 for obs in starts)  # CartPole's raw reset state, not normalised
    assert not any(isinstance(env, TransitionRecorder) for env in venv.venv.envs)  # unwrapped afterwards


def test_learn_recording_needs_the_envs_in_process():
    from stable_baselines3 import PPO

    from lram_agents.envs.source_rl import learn_recording

    model = PPO("MlpPolicy", "CartPole-v1", n_steps=64, batch_size=64, device="cpu")
    with pytest.raises(ValueError, match="total_timesteps"):
        learn_recording(model, print, 0)
    model.env = object()  # e.g. a SubprocVecEnv's copies live in other processes: nothing to wrap here
    with pytest.raises(TypeError, match="DummyVecEnv"):
        learn_recording(model, print, 64)
