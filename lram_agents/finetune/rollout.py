"""Collecting a rollout: an agent plays a vector env, every finished episode goes to the buffer.

The vector env must use Gymnasium's default ``NEXT_STEP`` autoreset: the step after an episode ends
is a reset step whose action is ignored. The agent does not step that env then
(``act_batch(active=...)``), exactly as :func:`lram_agents.evaluate` plays, so an agent acts and
remembers the same way when it is fine-tuned and when it is evaluated. A single env is played as a
vector env of one.

A rollout starts from a reset with empty memory; each env plays consecutive episodes (memory kept
across them when the agent keeps memory) until every env has finished its share of the rollout's
episodes. Episodes finished beyond an env's share are kept as well; episodes still running at the end
are dropped. Each env's episodes of one rollout form one learning history (``history_id``, numbered
by ``episode_index``), which ``windows="across_episodes"`` trains on as a multi-episode context.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv

from lram_agents.agent import Agent
from lram_agents.data.format import Episode
from lram_agents.data.recorder import _EpisodeBuffer
from lram_agents.finetune.buffer import EpisodeBuffer
from lram_agents.preprocessing import ActionAdapter

MAX_ENVS = 1 << 16  # history ids are rollout number * MAX_ENVS + env index: unique whatever the env count


@dataclass
class StepData:
    """The vector env's last transition, for ``on_step`` hooks (arrays over the envs)."""

    observations: np.ndarray  # what the actions were chosen from
    actions: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    active: np.ndarray  # False for envs in their reset step (their action was ignored)


@dataclass
class RolloutStats:
    """What one rollout did."""

    steps: int = 0  # env transitions (reset steps not counted)
    returns: list[float] = field(default_factory=list)  # returns of the finished episodes, in the order they ended
    stopped: bool = False  # a hook returned False


def as_vector_env(env: gym.Env | VectorEnv) -> VectorEnv:
    """``env`` itself if it is a vector env with ``NEXT_STEP`` autoreset, a vector env of one for a single env."""
    if not isinstance(env, VectorEnv):
        return SyncVectorEnv([lambda: env], autoreset_mode=AutoresetMode.NEXT_STEP)
    if env.num_envs > MAX_ENVS:
        raise ValueError(f"at most {MAX_ENVS} envs, got {env.num_envs}")
    mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    if mode != AutoresetMode.NEXT_STEP:
        raise ValueError(f"online fine-tuning needs a vector env with autoreset_mode=NEXT_STEP (Gymnasium's default), got {mode}")
    return env


class RolloutCollector:
    """Plays rollouts of ``agent`` in ``env`` and writes the finished episodes to ``buffer``.

    Args:
        on_step: called after every vector-env step with a :class:`StepData`; False stops the rollout.
        on_episode: called with (episode, env index) after an episode was written; False stops it.
        epsilon: probability of taking a uniformly random action instead of the agent's (exploration);
            the agent then remembers the action taken as its previous action.
    """

    def __init__(self, agent: Agent, env: VectorEnv, buffer: EpisodeBuffer, on_step: Callable[[StepData], bool],
                 on_episode: Callable[[Episode, int], bool], epsilon: float = 0.0):
        self.agent, self.env, self.buffer = agent, env, buffer
        self.on_step, self.on_episode, self.epsilon = on_step, on_episode, epsilon
        self._actions = ActionAdapter(env.single_action_space)

    def collect(self, episodes: int, seed: int) -> RolloutStats:
        """Play until every env has finished its share of ``episodes`` (or a hook stops it)."""
        rng = np.random.default_rng(seed)
        env, n = self.env, self.env.num_envs
        share = np.array([(episodes + i) // n for i in range(n)])  # as evaluate: no bias towards short episodes
        finished = np.zeros(n, dtype=int)
        first_history = self.buffer.rollout_number * MAX_ENVS  # unique: rollout files are numbered once
        self.agent.forget()
        obs, _ = env.reset(seed=seed)
        recorders = [_EpisodeBuffer(o) for o in obs]
        rewards, starts, active = np.zeros(n), np.ones(n, dtype=bool), np.ones(n, dtype=bool)
        stats = RolloutStats()
        while (finished < share).any():
            actions = self._explore(self.agent.act_batch(obs, rewards, starts, active=active), active, rng)
            next_obs, step_rewards, terminated, truncated, _ = env.step(actions)
            stats.steps += int(active.sum())
            for i in range(n):  # a row in its reset step starts recording its new episode
                if active[i]:
                    recorders[i].add(actions[i], step_rewards[i], terminated[i], truncated[i], next_obs[i])
                else:
                    recorders[i] = _EpisodeBuffer(next_obs[i])
            done = (terminated | truncated) & active
            if self.on_step(StepData(obs, actions, step_rewards, terminated, truncated, active)) is False:
                stats.stopped = True
            for i in np.flatnonzero(done):
                episode = recorders[i].to_episode("", first_history + i, int(finished[i]))
                self.buffer.add(episode)
                stats.returns.append(episode.total_return)
                finished[i] += 1
                stats.stopped |= self.on_episode(episode, int(i)) is False
            if stats.stopped:
                break
            # a row in its reset step keeps the reward its episode ended with: the agent has not seen it yet
            rewards = np.where(active, step_rewards, rewards)
            obs, starts, active = next_obs, ~active, ~done
        return stats

    def _explore(self, actions: np.ndarray, active: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Replace each active env's action by a random one with probability ``epsilon``; tell the agent's memory."""
        swap = (rng.random(len(actions)) < self.epsilon) & active
        if not swap.any():
            return actions
        actions = actions.copy()
        space = self.env.single_action_space
        for i in np.flatnonzero(swap):
            if isinstance(space, gym.spaces.Discrete):
                actions[i] = space.start + rng.integers(space.n)
            else:
                actions[i] = rng.uniform(space.low, space.high).astype(space.dtype)
        memory = self.agent.memory  # a_{t-1} of the next step must be the action taken (include_actions models)
        taken = self._actions.to_model(actions).to(memory.prev_actions.device, memory.prev_actions.dtype)
        self.agent.memory = dataclasses.replace(memory, prev_actions=taken)
        return actions
