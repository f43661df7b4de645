"""The Stable-Baselines3 adapter under SB3's own evaluate_policy."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from conftest import small_config
from lram_agents.agent import Agent
from lram_agents.model import LRAMModel
from lram_agents.sb3 import PreviousRewardWrapper, RewardTap, SB3Policy
from stubs import CountingEnv, counter_model, record_logits

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


# ---- the agent itself as SB3's policy: agent.bind(env) taps the env's rewards -------------------------
def _plain_vec_env(continuous: bool = False):
    envs = [CountingEnv(length, i, continuous=continuous) for i, length in enumerate(LENGTHS)]
    return DummyVecEnv([lambda env=env: Monitor(env) for env in envs]), envs


def test_evaluate_policy_takes_a_bound_agent_directly(counter_backbone):
    vec_env, envs = _plain_vec_env()
    agent = Agent(counter_model()).bind(vec_env)
    returns, lengths = evaluate_policy(agent, vec_env, n_eval_episodes=9, deterministic=True, return_episode_rewards=True)
    assert sorted(lengths) == sorted(LENGTHS * 3)
    for env in envs:
        assert env.episodes[:3] == [list(range(env.length))] * 3
    single = CountingEnv(4)
    returns, lengths = evaluate_policy(Agent(counter_model()).bind(single), single, n_eval_episodes=2, return_episode_rewards=True)
    assert lengths == [4, 4] and single.episodes[:2] == [[0, 1, 2, 3]] * 2  # SB3 wraps it in its own DummyVecEnv


def test_the_tapped_rewards_reach_the_model_as_the_wrapper_s_do():
    """The same small model, evaluated through the reward tap and through PreviousRewardWrapper + SB3Policy:
    the logits of every step agree, so the model sees the same rewards (and resets) both ways."""
    torch.manual_seed(0)
    model = LRAMModel(small_config("xlstm-1:0")).eval()
    logits = record_logits(model)
    for keep_memory in (False, True):
        logits.clear()
        wrapped, _ = _vec_env()
        wrapped.seed(0)  # the same observation noise both ways
        evaluate_policy(SB3Policy(Agent(model, keep_memory=keep_memory, compile=False), wrapped), wrapped, n_eval_episodes=6)
        through_wrapper = torch.cat(logits)
        logits.clear()
        plain, _ = _plain_vec_env()
        plain.seed(0)
        evaluate_policy(Agent(model, keep_memory=keep_memory, compile=False).bind(plain), plain, n_eval_episodes=6)
        assert torch.equal(torch.cat(logits), through_wrapper)
        assert through_wrapper.shape[0] > 6


def test_predict_without_rewards_names_the_fix(counter_backbone):
    agent = Agent(counter_model(), observation_space=CountingEnv(3).observation_space, action_space=CountingEnv(3).action_space)
    with pytest.raises(TypeError, match=r"agent.bind\(env\)"):
        agent.predict(np.zeros((1, 2), np.float32))
    bound = DummyVecEnv([lambda: CountingEnv(3)])
    agent.bind(bound)
    assert "step_wait" not in vars(bound)  # binding alone taps nothing: lram_agents.evaluate never pays for the tap
    agent.predict(np.zeros((1, 2), np.float32))
    assert "step_wait" in vars(bound)  # the first predict taps the bound env
    RewardTap.on(bound).rewards = np.zeros(3)  # as if the agent were bound to a 3-env VecEnv, then fed 1 observation
    with pytest.raises(ValueError, match="bind the agent to the env"):
        agent.predict(np.zeros((1, 2), np.float32), agent.memory, np.array([False]))


def test_greedy_request_on_a_sampling_agent_warns_once(counter_backbone):
    env = CountingEnv(3)
    agent = Agent(counter_model(), deterministic=False).bind(env)
    with pytest.warns(UserWarning, match="deterministic=False"):
        evaluate_policy(agent, env, n_eval_episodes=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        evaluate_policy(agent, env, n_eval_episodes=1)  # once per agent
        evaluate_policy(Agent(counter_model(), deterministic=True).bind(env), env, n_eval_episodes=1)
    assert not [w for w in caught if "deterministic=False" in str(w.message)]


def test_sb3_policy_binds_to_one_env_of_a_gymnasium_vector_env(counter_backbone):
    vector = gym.vector.SyncVectorEnv([lambda: PreviousRewardWrapper(CountingEnv(3)) for _ in range(4)])
    policy = SB3Policy(Agent(counter_model()), vector)
    assert policy.agent.observation_space == CountingEnv(3).observation_space
    obs, _ = vector.reset(seed=0)
    actions, _ = policy.predict(obs, deterministic=True)
    assert actions.tolist() == [0, 0, 0, 0]
