"""evaluate(): single envs and vector envs in every autoreset mode, with memory cleared or kept."""

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from conftest import small_config
from lram_agents.agent import Agent
from lram_agents.evaluation import evaluate
from lram_agents.model import LRAMModel
from lram_agents.preprocessing import Preprocessing
from stubs import CountingEnv, counter_model, record_logits

LENGTHS = [2, 3, 5]


def _vector(mode: AutoresetMode) -> SyncVectorEnv:
    return SyncVectorEnv([lambda i=i, n=n: CountingEnv(n, i) for i, n in enumerate(LENGTHS)], autoreset_mode=mode)


@pytest.mark.parametrize("mode", list(AutoresetMode))
@pytest.mark.parametrize("keep_memory", [False, True])
def test_every_autoreset_mode_gives_whole_episodes(counter_backbone, mode, keep_memory):
    env = _vector(mode)
    result = evaluate(Agent(counter_model()), env, n_episodes=9, keep_memory=keep_memory, progress=False)
    assert sorted(zip(result.env_indices, result.lengths)) == sorted((i, n) for i, n in enumerate(LENGTHS) for _ in range(3))
    assert np.allclose(result.returns, [LENGTHS[i] * (LENGTHS[i] + 1) / 2 for i in result.env_indices])
    for i, sub in enumerate(env.envs):
        played = sub.episodes[:3]
        # the counter's actions reveal the steps the memory has seen: a reset step taken by the agent,
        # or a reset it missed, would shift them
        expected = [list(range(k * sub.length, (k + 1) * sub.length)) if keep_memory else list(range(sub.length)) for k in range(3)]
        assert played == expected, f"{mode}, env {i}: {played}"
    table = result.trial_returns()
    assert table.shape == (3, 3) and np.allclose(table, [[n * (n + 1) / 2] * 3 for n in LENGTHS])


def test_a_single_env_and_the_result_fields(counter_backbone):
    env = CountingEnv(4)
    result = evaluate(Agent(counter_model()), env, n_episodes=3, progress=False)
    assert result.lengths.tolist() == [4, 4, 4] and result.returns.tolist() == [10.0] * 3
    assert env.episodes[:3] == [[0, 1, 2, 3]] * 3
    assert len(result.step_latencies) == 12 and 0 < result.latency_median_ms <= result.latency_p95_ms
    assert result.summary()["mean return"] == 10.0 and "3 episodes" in str(result)


def test_uneven_episodes_over_envs_leave_nan_trials(counter_backbone):
    result = evaluate(Agent(counter_model()), _vector(AutoresetMode.NEXT_STEP), n_episodes=4, progress=False)
    assert np.isnan(result.trial_returns()).sum() == 2  # 4 episodes over 3 envs: 2, 1, 1 trials


def _record_calls(agent: Agent) -> tuple[list[np.ndarray], list[torch.Tensor]]:
    """Record the ``active`` mask and the logits of every call of the agent."""
    logits, actives, act_batch = record_logits(agent.model), [], agent.act_batch

    def recording(obs, rewards=None, episode_start=None, *, active=None, deterministic=None):
        actives.append(np.ones(len(obs), bool) if active is None else np.asarray(active))
        return act_batch(obs, rewards, episode_start, active=active, deterministic=deterministic)

    agent.act_batch = recording
    return actives, logits


@pytest.mark.parametrize("backbone", ["transformer", "xlstm-1:0"])
def test_next_step_vector_evaluation_equals_each_env_alone(backbone):
    """In-context evaluation of a real model: in a vector env with next-step autoreset, where the agent
    sits out the reset steps, every env sees the same logits as when it is evaluated on its own."""
    model = LRAMModel(small_config(backbone)).eval()
    make = lambda: Agent(copy.deepcopy(model), Preprocessing(target_return=5.0, keep_memory=True))  # noqa: E731
    agent = make()
    actives, logits = _record_calls(agent)
    vector = _vector(AutoresetMode.NEXT_STEP)
    evaluate(agent, vector, n_episodes=6, seed=0, progress=False)
    for i, sub in enumerate(vector.envs):
        alone, env = make(), CountingEnv(LENGTHS[i], i)
        _, alone_logits = _record_calls(alone)
        evaluate(alone, env, n_episodes=2, seed=i, progress=False)
        in_vector = torch.stack([x[i] for a, x in zip(actives, logits) if a[i]])[: len(alone_logits)]
        assert torch.allclose(in_vector, torch.cat(alone_logits), atol=1e-5), f"env {i}"
        assert sub.episodes[:2] == env.episodes[:2]


def test_evaluate_checks_its_arguments(counter_backbone):
    with pytest.raises(ValueError, match="n_episodes must be >= 1, got 0"):
        evaluate(Agent(counter_model()), CountingEnv(2), n_episodes=0)
    env = CountingEnv(2)
    env.action_space = gym.spaces.MultiBinary(2)
    with pytest.raises(TypeError, match="unsupported action space MultiBinary"):
        evaluate(Agent(counter_model()), env, n_episodes=1)
