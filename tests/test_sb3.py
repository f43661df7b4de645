"""The Stable-Baselines3 adapter under SB3's own evaluate_policy."""

import numpy as np
import pytest
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from lram_agents.agent import Agent
from lram_agents.sb3 import PreviousRewardWrapper, SB3Policy
from stubs import CountingEnv, counter_model

LENGTHS = [3, 4, 6]  # different lengths: the envs' episodes start at different steps


def _vec_env():
    envs = [CountingEnv(length, i) for i, length in enumerate(LENGTHS)]
    return DummyVecEnv([lambda env=env: Monitor(PreviousRewardWrapper(env)) for env in envs]), envs


def test_evaluate_policy_resets_each_env_at_its_own_episode_starts(counter_backbone):
    vec_env, envs = _vec_env()
    policy = SB3Policy(Agent(counter_model()), vec_env)
    returns, lengths = evaluate_policy(policy, vec_env, n_eval_episodes=9, deterministic=True, return_episode_rewards=True)
    assert sorted(lengths) == sorted(LENGTHS * 3)
    assert sorted(returns) == sorted([length * (length + 1) / 2 for length in LENGTHS] * 3)
    for env in envs:
        # the counter agent's action is the number of steps its memory has seen: 0, 1, ... in every episode
        assert env.episodes[:3] == [list(range(env.length))] * 3, f"env of length {env.length}: {env.episodes[:3]}"


def test_an_in_context_agent_keeps_memory_across_sb3_episode_starts(counter_backbone):
    vec_env, envs = _vec_env()
    policy = SB3Policy(Agent(counter_model(), keep_memory=True), vec_env)
    evaluate_policy(policy, vec_env, n_eval_episodes=6, deterministic=True)
    for env in envs:
        assert sum(env.episodes[:2], []) == list(range(2 * env.length))


def test_the_wrapper_carries_the_previous_reward_across_resets():
    env = PreviousRewardWrapper(CountingEnv(2))
    obs, _ = env.reset(seed=0)
    assert obs["prev_reward"].tolist() == [0.0]
    env.step(0)
    obs, *_ = env.step(0)
    assert obs["prev_reward"].tolist() == [2.0]
    obs, _ = env.reset()
    assert obs["prev_reward"].tolist() == [2.0]  # the last reward of the episode that ended
    assert env.observation_space.contains(obs)


def test_single_observations_and_unwrapped_envs(counter_backbone):
    vec_env, _ = _vec_env()
    policy = SB3Policy(Agent(counter_model()), vec_env)
    obs = {"observation": np.zeros(2, np.float32), "prev_reward": np.zeros(1)}
    action, state = policy.predict(obs, deterministic=True)
    assert action == 0 and state.num_envs == 1
    action, state = policy.predict(obs, state, episode_start=np.array([False]), deterministic=True)
    assert action == 1
    with pytest.raises(TypeError, match="PreviousRewardWrapper"):
        policy.predict(np.zeros((3, 2), np.float32))
    with pytest.raises(TypeError, match="PreviousRewardWrapper"):
        SB3Policy(Agent(counter_model()), DummyVecEnv([lambda: CountingEnv(3)]))
