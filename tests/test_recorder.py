"""Recording: any policy for N episodes / steps, learning histories, and envs that fail mid-episode."""

import gymnasium as gym
import numpy as np
import pytest

from lram_agents.data import RecordEpisodes, TrajectoryDataset, TrajectoryWriter, as_policy, record
from lram_agents.data.policies import AgentPolicy, CallablePolicy, SB3Policy


class CountingEnv(gym.Env):
    """Observation = [step in episode, episode number]; reward 1 per step; episodes of 5 steps.

    ``fail_at`` = (episode, step): env.step raises there (once).
    """

    observation_space = gym.spaces.Box(0, 100, (2,), np.float32)
    action_space = gym.spaces.Discrete(3)

    def __init__(self, fail_at=None, length=5):
        self.fail_at, self.length, self.episode, self.t = fail_at, length, -1, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode, self.t = self.episode + 1, 0
        return self._obs(), {}

    def step(self, action):
        if self.fail_at == (self.episode, self.t):
            self.fail_at = None
            raise RuntimeError("simulator crashed")
        self.t += 1
        return self._obs(), 1.0, self.t >= self.length, False, {}

    def _obs(self):
        return np.array([self.t, self.episode], dtype=np.float32)


def test_records_n_episodes_with_everything_a_trainer_needs(tmp_path):
    summary = record(gym.make("CartPole-v1"), "random", tmp_path, episodes=4, seed=0, task="pole", domain="classic", progress=False)
    dataset = TrajectoryDataset(tmp_path)
    assert summary.episodes == dataset.num_episodes == 4 and len(summary.files) == 4
    assert summary.steps == dataset.num_steps and summary.returns == dataset.table.total_return.tolist()
    episode = dataset.episode(0)
    assert episode.terminations[-1] and not episode.terminations[:-1].any()
    assert dataset.domain == "classic" and dataset.env_id == "CartPole-v1" and set(dataset.table.task) == {"pole"}
    assert episode.observations.shape == (len(episode) + 1, 4)


def test_a_step_budget_keeps_the_last_episode_as_truncated(tmp_path):
    summary = record(CountingEnv(), "random", tmp_path, steps=12, progress=False)
    dataset = TrajectoryDataset(tmp_path)
    assert summary.steps == dataset.num_steps == 12
    assert dataset.table.length.tolist() == [5, 5, 2]
    last = dataset.episode(2)
    assert last.truncations[-1] and not last.terminations.any()


def test_an_env_that_raises_keeps_the_finished_episodes(tmp_path):
    with pytest.raises(RuntimeError, match="simulator crashed"):
        record(CountingEnv(fail_at=(2, 3)), "random", tmp_path, episodes=5, progress=False, episodes_per_file=2)
    dataset = TrajectoryDataset(tmp_path)  # the two finished episodes are on disk, readable
    assert dataset.num_episodes == 2 and [dataset.episode(i).observations[0, 1] for i in range(2)] == [0, 1]
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_env_errors_can_be_tolerated(tmp_path):
    summary = record(CountingEnv(fail_at=(1, 2)), "random", tmp_path, episodes=3, max_env_errors=1, progress=False)
    dataset = TrajectoryDataset(tmp_path)
    assert summary.env_errors == 1 and dataset.num_episodes == 3
    assert [dataset.episode(i).observations[0, 1] for i in range(3)] == [0, 2, 3]  # episode 1 was dropped


class RewardEcho:
    """An agent: act(obs, reward) and reset(); remembers the rewards it was given."""

    def __init__(self):
        self.rewards, self.resets = [], 0

    def reset(self):
        self.resets += 1

    def act(self, obs, reward):
        self.rewards.append(reward)
        return 1


def test_agents_get_the_previous_reward_and_a_reset_per_episode(tmp_path):
    agent = RewardEcho()
    record(CountingEnv(length=3), agent, tmp_path, episodes=2, progress=False)
    assert agent.rewards == [0.0, 1.0, 1.0, 0.0, 1.0, 1.0] and agent.resets == 2
    assert TrajectoryDataset(tmp_path).episode(1).actions.tolist() == [1, 1, 1]


def test_policy_adapters():
    assert isinstance(as_policy(RewardEcho()), AgentPolicy)
    assert isinstance(as_policy(lambda obs: 0), CallablePolicy)
    with pytest.raises(TypeError, match="cannot use int"):
        as_policy(3)

    class FakeRecurrentSB3:
        def __init__(self):
            self.calls = []

        def predict(self, obs, state=None, episode_start=None, deterministic=False):
            self.calls.append((state, bool(episode_start[0]), deterministic))
            return 2, (state or 0) + 1

    model = FakeRecurrentSB3()
    policy = as_policy(model)
    assert isinstance(policy, SB3Policy)
    policy.reset()
    policy(None, 0.0)
    policy(None, 1.0)
    policy.reset()
    policy(None, 0.0)
    assert model.calls == [(None, True, True), (1, False, True), (None, True, True)]


def test_recording_an_sb3_model(tmp_path):
    from stable_baselines3 import PPO

    model = PPO("MlpPolicy", "CartPole-v1", n_steps=64, batch_size=32, seed=0, device="cpu")
    record(gym.make("CartPole-v1"), model, tmp_path, episodes=2, progress=False)
    assert TrajectoryDataset(tmp_path).num_episodes == 2


def test_learning_history_keeps_every_kth_episode_in_order(tmp_path, capsys):
    from stable_baselines3 import PPO

    from lram_agents.data.learning_history import record_learning_history

    algo = PPO("MlpPolicy", "CartPole-v1", n_steps=128, batch_size=64, n_epochs=1, seed=0, device="cpu")
    summary = record_learning_history(algo, 512, tmp_path, keep_every=3, history_id=7, task="cartpole", episodes_per_file=4)
    dataset = TrajectoryDataset(tmp_path)
    (history,) = dataset.histories()
    indices = dataset.table.episode_index[history].tolist()
    assert indices == list(range(0, summary.episodes, 3))
    assert summary.kept == len(indices) < summary.episodes  # what the CLI reports as recorded
    assert "learn and record" in capsys.readouterr().err  # a progress bar over the timesteps (it used to be silent)
    assert set(dataset.table.history_id) == {7}
    kept_returns = [summary.returns[i] for i in indices]
    assert np.allclose(dataset.table.total_return[history], kept_returns)
    for row in history:
        ep = dataset.episode(int(row))
        assert np.abs(ep.observations[0]).max() <= 0.05  # starts at a CartPole reset (SB3 auto-resets)
        if ep.terminations[-1]:  # the final observation is the terminal one, not the next reset
            x, angle = ep.observations[-1][0], ep.observations[-1][2]
            assert abs(x) > 2.4 or abs(angle) > 0.2094


def test_wrapper_takes_the_task_from_reset_options(tmp_path):
    writer = TrajectoryWriter(tmp_path, CountingEnv.observation_space, CountingEnv.action_space)
    env = RecordEpisodes(CountingEnv(length=2), writer, task="default")
    for options in (None, {"task": "goal-3"}):
        env.reset(options=options)
        env.step(0)
        env.step(0)
    env.reset()  # an unfinished episode is not recorded
    env.step(0)
    env.close()
    assert TrajectoryDataset(tmp_path).table.task.tolist() == ["default", "goal-3"]


def test_writer_converts_images_once(tmp_path):
    space = gym.spaces.Box(0, 255, (32, 24, 3), np.uint8)
    rng = np.random.default_rng(0)
    from lram_agents.data import Episode

    frames = rng.integers(0, 256, (4, 32, 24, 3), dtype=np.uint8)
    with TrajectoryWriter(tmp_path, space, gym.spaces.Discrete(2), image_shape=(1, 16, 16)) as writer:
        writer.add(Episode(frames, [0, 1, 0], [0, 0, 1], [0, 0, 1], [0, 0, 0]))
    dataset = TrajectoryDataset(tmp_path)
    assert dataset.observation_space.shape == (1, 16, 16) and dataset.episode(0).observations.shape == (4, 1, 16, 16)


def test_observation_only_agents_bare_models_and_unbound_agents_record(tmp_path):
    """record() takes the T-Maze oracle (act(obs)), a bare LRAMModel, and an agent not yet bound to the env."""
    import lram_agents  # noqa: F401  (registers the env ids)
    from lram_agents.agent import Agent
    from lram_agents.backbones import MambaConfig
    from lram_agents.config import LRAMConfig
    from lram_agents.envs.tmaze import TMazeOracle
    from lram_agents.model import LRAMModel

    env = gym.make("lram_agents/TMaze-v0", corridor_length=4)
    record(env, TMazeOracle(4), tmp_path / "oracle", episodes=3, seed=0, progress=False)
    assert TrajectoryDataset(tmp_path / "oracle").table.total_return.tolist() == [1.0, 1.0, 1.0]
    model = LRAMModel(LRAMConfig(backbone=MambaConfig(d_model=16, num_layers=1, d_state=4), max_state_dim=4))
    summary = record(CountingEnv(length=3), model, tmp_path / "model", episodes=2, progress=False)
    assert summary.episodes == 2 and TrajectoryDataset(tmp_path / "model").num_episodes == 2
    record(CountingEnv(length=3), Agent(model, compile=False), tmp_path / "agent", episodes=1, progress=False)
    assert TrajectoryDataset(tmp_path / "agent").num_episodes == 1
