"""Stable-Baselines3 adapter: an agent behind SB3's ``predict`` API, e.g. for ``evaluate_policy``.

SB3 never passes rewards to ``predict``, but the model needs r_{t-1}. :class:`PreviousRewardWrapper`
puts it into the observation (a Dict observation ``{"observation": obs, "prev_reward": [r]}``), and
:class:`SB3Policy` reads it back::

    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    env = make_vec_env("CartPole-v1", n_envs=3, wrapper_class=PreviousRewardWrapper)
    evaluate_policy(SB3Policy(agent, env), env, n_eval_episodes=9)
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from lram_agents.agent import Agent, AgentMemory

OBSERVATION_KEY = "observation"
REWARD_KEY = "prev_reward"


class PreviousRewardWrapper(gym.Wrapper):
    """Adds the reward of the previous step to the observation: ``{"observation", "prev_reward"}``.

    After a reset, ``prev_reward`` is the last reward of the previous episode (0 at the first
    reset): an agent that keeps its memory across episodes feeds it, one that clears it ignores it
    (see :mod:`lram_agents.agent`).
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.observation_space = gym.spaces.Dict(
            {OBSERVATION_KEY: env.observation_space, REWARD_KEY: gym.spaces.Box(-np.inf, np.inf, (1,), np.float64)}
        )
        self._last_reward = 0.0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        return self._wrap(obs), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._last_reward = float(reward)
        return self._wrap(obs), reward, terminated, truncated, info

    def _wrap(self, obs) -> dict[str, Any]:
        return {OBSERVATION_KEY: obs, REWARD_KEY: np.array([self._last_reward])}


class SB3Policy:
    """``predict(observation, state, episode_start, deterministic) -> (actions, state)`` over an Agent.

    * ``state=None`` (SB3's first call) starts from an empty memory; the returned ``state`` is an
      :class:`~lram_agents.agent.AgentMemory` snapshot to pass back on the next call (as SB3 does); to
      resume later from an older one, keep a ``state.clone()``.
    * ``episode_start[i]`` True means observation ``i`` begins a new episode: that env's
      return-to-go is restored and its memory is cleared, unless the agent keeps memory across
      episodes (in-context agents), as everywhere in this library.

    Args:
        agent: the agent; bound here to ``env``'s spaces when ``env`` is given.
        env: the (vector) env whose observations come from :class:`PreviousRewardWrapper`.
    """

    def __init__(self, agent: Agent, env: Any = None):
        self.agent = agent
        if env is not None:
            observation_space = env.observation_space
            if not isinstance(observation_space, gym.spaces.Dict) or OBSERVATION_KEY not in observation_space.spaces:
                raise TypeError(f"env observations must come from PreviousRewardWrapper, got space {observation_space}")
            agent.bind(observation_space=observation_space[OBSERVATION_KEY], action_space=env.action_space)

    def predict(
        self,
        observation: dict[str, np.ndarray],
        state: AgentMemory | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, AgentMemory | None]:
        if self.agent.observation_space is None:
            raise RuntimeError("the agent is not bound to the env's spaces: use SB3Policy(agent, env)")
        obs, rewards = _split(observation)
        batched = obs.ndim == len(self.agent.observation_space.shape) + 1
        if not batched:  # one observation, as SB3 allows: act on a batch of one
            obs, rewards = obs[None], rewards[None]
            episode_start = None if episode_start is None else np.asarray(episode_start).reshape(1)
        if state is None:
            self.agent.forget()
        elif state is not self.agent.memory:
            self.agent.memory = state
        actions = self.agent.act_batch(obs, rewards.reshape(len(obs)), episode_start, deterministic=deterministic)
        return (actions if batched else actions[0]), self.agent.memory


def _split(observation: Any) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(observation, dict) or OBSERVATION_KEY not in observation or REWARD_KEY not in observation:
        raise TypeError(
            f"SB3Policy needs Dict observations with keys {OBSERVATION_KEY!r} and {REWARD_KEY!r} "
            "(SB3 never passes rewards to predict): wrap each env in lram_agents.sb3.PreviousRewardWrapper"
        )
    return np.asarray(observation[OBSERVATION_KEY]), np.asarray(observation[REWARD_KEY], dtype=np.float64)
