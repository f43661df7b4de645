"""One small protocol for anything that chooses actions, so the recorder can run any of them.

:class:`Policy`: ``reset()`` at the start of every episode, then ``policy(observation, reward)`` per
step, where ``reward`` is the reward received for the previous action (0.0 after a reset).
:func:`as_policy` adapts what users have:

* an agent with ``act(obs, reward)`` or ``act(obs)`` (and optionally ``reset()``), e.g. an
  ``lram_agents`` agent (bound to the env here if it is not yet) or the T-Maze oracle;
* a bare :class:`~lram_agents.model.LRAMModel`: acts through an :class:`~lram_agents.agent.Agent`
  with default preprocessing;
* a Stable-Baselines3 model (anything with ``predict(obs, state, episode_start, deterministic)``),
  recurrent ones included (the state is carried and reset at episode starts);
* a plain callable ``f(obs) -> action``;
* the string ``"random"``: uniform actions from the action space.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any, Callable, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np


@runtime_checkable
class Policy(Protocol):
    def reset(self) -> None: ...

    def __call__(self, observation: Any, reward: float) -> Any: ...


class AgentPolicy:
    """An object with ``act(obs, reward)`` or ``act(obs)``; its ``reset()`` (if any) is called at episode starts."""

    def __init__(self, agent: Any):
        self.agent = agent
        self._takes_reward = _accepts_two_arguments(agent.act)

    def reset(self) -> None:
        if hasattr(self.agent, "reset"):
            self.agent.reset()

    def __call__(self, observation, reward: float):
        return self.agent.act(observation, reward) if self._takes_reward else self.agent.act(observation)


def _accepts_two_arguments(method: Callable) -> bool:
    try:
        params = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):  # builtins without a signature: assume the protocol's act(obs, reward)
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)


class SB3Policy:
    """A Stable-Baselines3 model: ``predict`` with the recurrent state and ``episode_start`` it expects."""

    def __init__(self, model: Any, deterministic: bool = True):
        self.model, self.deterministic = model, deterministic
        self.reset()

    def reset(self) -> None:
        self.state, self.episode_start = None, np.array([True])

    def __call__(self, observation, reward: float):
        action, self.state = self.model.predict(observation, state=self.state, episode_start=self.episode_start, deterministic=self.deterministic)
        self.episode_start = np.array([False])
        return action


class CallablePolicy:
    """A function of the observation alone."""

    def __init__(self, fn: Callable[[Any], Any]):
        self.fn = fn

    def reset(self) -> None:
        pass

    def __call__(self, observation, reward: float):
        return self.fn(observation)


class RandomPolicy:
    """Uniform random actions (seeded through ``action_space.seed``)."""

    def __init__(self, action_space: gym.Space):
        self.action_space = action_space

    def reset(self) -> None:
        pass

    def __call__(self, observation, reward: float):
        return self.action_space.sample()


def as_policy(policy: Any, action_space: gym.Space | None = None, deterministic: bool = True, env: gym.Env | None = None) -> Policy:
    """Wrap ``policy`` (see the module docstring) into a :class:`Policy`; ``env``: the env it will act in
    (an ``lram_agents`` agent or model that knows no spaces yet is bound to it)."""
    model_module = sys.modules.get("lram_agents.model")  # loaded whenever an LRAMModel exists; importing it costs torch
    if model_module is not None and isinstance(policy, model_module.LRAMModel):
        from lram_agents.agent import Agent

        policy = Agent(policy)
    if env is not None and hasattr(policy, "bind") and getattr(policy, "observation_space", True) is None:
        policy.bind(env)
    if isinstance(policy, str):
        if policy != "random":
            raise ValueError(f"unknown policy name {policy!r}; the only named policy is 'random'")
        if action_space is None:
            raise ValueError("the random policy needs the action space")
        return RandomPolicy(action_space)
    if isinstance(policy, (AgentPolicy, SB3Policy, CallablePolicy, RandomPolicy)):
        return policy
    if hasattr(policy, "act"):
        return AgentPolicy(policy)
    if hasattr(policy, "predict"):
        return SB3Policy(policy, deterministic)
    if callable(policy):
        return CallablePolicy(policy)
    raise TypeError(f"cannot use {type(policy).__name__} as a policy: give an object with act(obs, reward), "
                    "a Stable-Baselines3 model (predict), a callable f(obs) -> action, or 'random'")
