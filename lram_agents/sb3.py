"""Stable-Baselines3 adapter: agents behind SB3's ``predict`` API, e.g. for ``evaluate_policy``.

SB3 never passes rewards to ``predict``, but the model needs r_{t-1}. Two ways to give them:

* :meth:`Agent.bind(env) <lram_agents.agent.Agent.bind>` once: the agent taps ``env``'s steps for
  their rewards (:class:`RewardTap`), and the agent itself is the SB3 policy::

      agent.bind(env)                                   # a Gymnasium env or an SB3 VecEnv
      evaluate_policy(agent, env, n_eval_episodes=10)

* or :class:`PreviousRewardWrapper` on every env, which puts the reward into the observation, with
  :class:`SB3Policy` reading it back (the env's observations are then Dicts)::

      env = make_vec_env("CartPole-v1", n_envs=3, wrapper_class=PreviousRewardWrapper)
      evaluate_policy(SB3Policy(agent, env), env, n_eval_episodes=9)

``deterministic``: SB3's flag is obeyed (``evaluate_policy`` passes True unless told otherwise). An agent
whose scores are measured with sampled actions (``agent.deterministic`` False, e.g. the in-context
Dark-Room agents) warns once when SB3 asks it for greedy ones.
"""

from __future__ import annotations

import warnings
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


class RewardTap:
    """The rewards of an env's latest step, kept for :meth:`Agent.predict` (SB3 does not pass them).

    Installed on the env object :meth:`Agent.bind` was given, at the agent's first :meth:`~Agent.predict`
    (the first step needs no reward): the env's own ``step`` (SB3
    VecEnvs: ``step_wait``, which every VecEnv wrapper above it calls) is replaced on that one object
    by a function that calls it and keeps the reward(s). Nothing else about the env changes; binding
    the same env again reuses its tap. After a reset the tap still holds the last reward of the episode
    that ended, the token an in-context agent feeds at the next episode's first step.
    """

    _ATTRIBUTE = "_lram_reward_tap"

    def __init__(self, env: Any):
        self.rewards: np.ndarray | None = None  # (N,) float64 after the first step
        self._method = "step_wait" if hasattr(env, "step_wait") else "step"
        self._inner = getattr(env, self._method)
        setattr(env, self._method, self._tapped)

    @classmethod
    def on(cls, env: Any) -> RewardTap:
        """The tap of ``env``, installed on first use."""
        tap = env.__dict__.get(cls._ATTRIBUTE) if hasattr(env, "__dict__") else None
        if tap is None:
            tap = cls(env)
            setattr(env, cls._ATTRIBUTE, tap)
        return tap

    def _tapped(self, *args, **kwargs):
        result = self._inner(*args, **kwargs)
        self.rewards = np.asarray(result[1], dtype=np.float64).reshape(-1)
        return result


def inner_space(space: gym.Space) -> gym.Space:
    """The env's own observation space under :class:`PreviousRewardWrapper`'s Dict (else ``space``)."""
    if isinstance(space, gym.spaces.Dict) and set(space.spaces) == {OBSERVATION_KEY, REWARD_KEY}:
        return space[OBSERVATION_KEY]
    return space


def predict(agent: Agent, observation: Any, state: AgentMemory | None = None, episode_start: np.ndarray | None = None,
            deterministic: bool = False, tap: RewardTap | None = None) -> tuple[np.ndarray, AgentMemory | None]:
    """SB3's ``predict`` for ``agent``: rewards from a :class:`PreviousRewardWrapper` observation, else
    from ``tap``; ``state`` is the memory snapshot SB3 hands back (``None``: start from an empty one)."""
    if agent.observation_space is None:
        raise RuntimeError("the agent is not bound to the env's spaces: call agent.bind(env) before predict")
    if isinstance(observation, dict):
        obs, rewards = _split(observation)
    elif tap is not None:
        obs, rewards = np.asarray(observation), tap.rewards
    else:
        raise TypeError("predict needs the env's rewards, which SB3 does not pass: call agent.bind(env) once (it keeps the "
                        "rewards of env's steps), or wrap each env in lram_agents.PreviousRewardWrapper")
    _warn_if_greedy_overrides_sampling(agent, deterministic)
    batched = obs.ndim == len(agent.observation_space.shape) + 1
    if not batched:  # one observation, as SB3 allows: act on a batch of one
        obs = obs[None]
        episode_start = None if episode_start is None else np.asarray(episode_start).reshape(1)
    if rewards is not None:
        rewards = np.asarray(rewards, dtype=np.float64).reshape(-1)
        if rewards.shape != (len(obs),):
            raise ValueError(f"got {rewards.size} rewards from the env's last step for {len(obs)} observations: bind the agent "
                             "to the env that predict's observations come from")
    if state is None:
        agent.forget()
    elif state is not agent.memory:
        agent.memory = state
    actions = agent.act_batch(obs, rewards, episode_start, deterministic=deterministic)
    return (actions if batched else actions[0]), agent.memory


def _warn_if_greedy_overrides_sampling(agent: Agent, deterministic: bool) -> None:
    if deterministic and not agent.deterministic and not getattr(agent, "_warned_greedy", False):
        agent._warned_greedy = True
        warnings.warn("SB3 asks for deterministic (greedy) actions, but this agent's scores are measured with sampled ones "
                      "(agent.deterministic is False): pass deterministic=False to evaluate_policy / predict to act as its "
                      "card reports", stacklevel=3)


class SB3Policy:
    """``predict(observation, state, episode_start, deterministic) -> (actions, state)`` over an Agent,
    for envs wrapped in :class:`PreviousRewardWrapper` (without it, use the agent itself: see the module).

    * ``state=None`` (SB3's first call) starts from an empty memory; the returned ``state`` is an
      :class:`~lram_agents.agent.AgentMemory` snapshot to pass back on the next call (as SB3 does); to
      resume later from an older one, keep a ``state.clone()``.
    * ``episode_start[i]`` True means observation ``i`` begins a new episode: that env's
      return-to-go is restored and its memory is cleared, unless the agent keeps memory across
      episodes (in-context agents), as everywhere in this library.

    Args:
        agent: the agent; bound here to ``env``'s spaces when ``env`` is given.
        env: the (vector) env whose observations come from :class:`PreviousRewardWrapper`: an SB3
            VecEnv or a Gymnasium env or vector env.
    """

    def __init__(self, agent: Agent, env: Any = None):
        self.agent = agent
        if env is not None:
            vector = hasattr(env, "single_observation_space")  # a Gymnasium vector env: spaces of one env
            observation_space = env.single_observation_space if vector else env.observation_space
            action_space = env.single_action_space if vector else env.action_space
            if inner_space(observation_space) is observation_space:
                raise TypeError(f"env observations must come from PreviousRewardWrapper, got space {observation_space}; "
                                "or use the agent itself as the policy after agent.bind(env)")
            agent.bind(observation_space=inner_space(observation_space), action_space=action_space)

    def predict(
        self,
        observation: dict[str, np.ndarray],
        state: AgentMemory | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, AgentMemory | None]:
        if not isinstance(observation, dict):
            _split(observation)  # raises, naming the wrapper
        return predict(self.agent, observation, state, episode_start, deterministic)


def _split(observation: Any) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(observation, dict) or OBSERVATION_KEY not in observation or REWARD_KEY not in observation:
        raise TypeError(
            f"SB3Policy needs Dict observations with keys {OBSERVATION_KEY!r} and {REWARD_KEY!r} "
            "(SB3 never passes rewards to predict): wrap each env in lram_agents.sb3.PreviousRewardWrapper"
        )
    return np.asarray(observation[OBSERVATION_KEY]), np.asarray(observation[REWARD_KEY], dtype=np.float64)
