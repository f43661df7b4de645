"""T-Maze: the RATE paper's dynamics, observation and reward; the oracle solves it, chance does not."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from lram_agents.envs.tmaze import DOWN, LEFT, RIGHT, UP, TMazeEnv, TMazeOracle


def run_episode(env, policy, seed, options=None):
    """Observations, actions, rewards and the final step's flags of one episode."""
    observation, _ = env.reset(seed=seed, options=options)
    observations, actions, rewards = [observation], [], []
    while True:
        action = policy(observation)
        observation, reward, terminated, truncated, info = env.step(action)
        observations.append(observation)
        actions.append(action)
        rewards.append(reward)
        if terminated or truncated:
            return np.array(observations), actions, rewards, terminated, truncated, info


def oracle_policy(corridor_length):
    """A fresh oracle's ``act`` (one oracle per episode, so no reset is needed)."""
    return TMazeOracle(corridor_length).act


@pytest.mark.parametrize("corridor_length", [1, 30, 90, 900, 9000])
def test_oracle_succeeds_in_100_of_100_episodes(corridor_length):
    env = TMazeEnv(corridor_length=corridor_length)  # the registered class, without wrappers: fast
    successes = 0
    for seed in range(100):
        _, actions, rewards, terminated, _, info = run_episode(env, oracle_policy(corridor_length), seed)
        assert terminated and len(actions) == corridor_length + 1
        assert actions[-1] == (UP if env.task == 1 else DOWN)
        successes += int(rewards[-1] == 1.0 and info["is_success"])
    assert successes == 100


@pytest.mark.parametrize("corridor_length", [30, 90])
def test_random_policy_never_reaches_the_junction(corridor_length):
    env = gym.make("lram_agents/TMaze-v0", corridor_length=corridor_length)
    rng = np.random.default_rng(0)
    successes = junctions = 0
    for seed in range(100):
        observations, _, rewards, _, truncated, _ = run_episode(env, lambda _: int(rng.integers(4)), seed)
        successes += int(sum(rewards) > 0)
        junctions += int(observations[:, 2].max() > 0)  # the flag marks the junction
        assert truncated
    assert successes == 0 and junctions == 0


def test_hint_only_in_the_first_observation_and_equal_to_the_goal_side():
    env = gym.make("lram_agents/TMaze-v0", corridor_length=30)
    for seed in range(20):
        observations, *_ = run_episode(env, oracle_policy(30), seed)
        assert observations[0, 1] == env.unwrapped.task
        assert np.all(observations[1:, 1] == 0)


@pytest.mark.parametrize(("flag_mode", "flag_x"), [("junction", 5), ("before_junction", 4)])
def test_flag_is_shown_once_at_its_cell(flag_mode, flag_x):
    env = gym.make("lram_agents/TMaze-v0", corridor_length=5, flag_mode=flag_mode)
    # right x 5 (reach the junction), right x 1 (wall: stay), then the turn
    script = iter([RIGHT] * 6 + [UP])
    observations, *_ = run_episode(env, lambda _: next(script), seed=0, options={"task": 1})
    flags = observations[:, 2]
    assert flags.sum() == 1 and flags[flag_x] == 1  # observation index t = position x on the corridor


def test_observation_layout_noise_and_space():
    env = gym.make("lram_agents/TMaze-v0", corridor_length=900)
    observations, *_ = run_episode(env, oracle_policy(900), seed=0, options={"task": -1})
    assert observations.dtype == np.float32 and observations.shape == (902, 4)
    assert np.all(observations[:-1, 0] == 0) and observations[-1, 0] == -1  # y
    values, counts = np.unique(observations[:, 3], return_counts=True)
    assert list(values) == [-1, 0, 1] and np.all(np.abs(counts / counts.sum() - 1 / 3) < 0.06)
    assert all(env.observation_space.contains(o) for o in observations)


def test_reward_only_at_the_end_wrong_turn_and_time_limit():
    env = gym.make("lram_agents/TMaze-v0", corridor_length=4)
    wrong = iter([RIGHT] * 4 + [DOWN])
    _, _, rewards, terminated, _, info = run_episode(env, lambda _: next(wrong), 0, {"task": 1})
    assert rewards == [0.0] * 5 and terminated and info == {"is_success": False}
    right = iter([RIGHT] * 4 + [UP])
    _, _, rewards, terminated, _, info = run_episode(env, lambda _: next(right), 0, {"task": 1})
    assert rewards == [0.0] * 4 + [1.0] and terminated and info == {"is_success": True}
    _, actions, rewards, terminated, truncated, _ = run_episode(env, lambda _: RIGHT, 0)
    assert len(actions) == 4 + 2 and truncated and not terminated and sum(rewards) == 0  # T = L + 2


def test_walls_keep_the_agent_on_the_corridor():
    env = TMazeEnv(corridor_length=3)
    env.reset(seed=0, options={"task": 1})
    for action in (LEFT, UP, DOWN):  # at the start: walls all around but to the right
        observation, *_ = env.step(action)
        assert observation[0] == 0 and env.position == (0, 0)
    env.step(RIGHT)
    env.step(UP)  # mid-corridor: no way up
    assert env.position == (1, 0)


def test_episode_length_argument_and_oracle_in_time():
    env = gym.make("lram_agents/TMaze-v0", corridor_length=10, episode_length=11)
    _, _, rewards, terminated, *_ = run_episode(env, oracle_policy(10), 0)
    assert terminated and rewards[-1] == 1.0  # L + 1 steps are enough
    env = gym.make("lram_agents/TMaze-v0", corridor_length=10, episode_length=10)
    _, _, rewards, _, truncated, _ = run_episode(env, oracle_policy(10), 0)
    assert truncated and sum(rewards) == 0


@pytest.mark.parametrize("corridor_length", [5, 9000])
def test_render_draws_the_maze_and_the_agent(corridor_length):
    env = gym.make("lram_agents/TMaze-v0", corridor_length=corridor_length, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.shape[0] == 3 * 24 and frame.shape[2] == 3
    assert frame.shape[1] == 24 * min(corridor_length + 1, 64)
    assert np.any(np.all(frame == (40, 110, 230), axis=-1))  # the agent's colour
