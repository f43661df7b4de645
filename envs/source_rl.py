"""Source-RL learning histories for Algorithm Distillation: train an SB3 agent on one task, keep every step.

Algorithm Distillation (Laskin et al. 2022) trains a sequence model on the *learning history* of a
source RL algorithm: every transition it experienced on one task, from the first (random) step to
the last (good) one, in order. This module records those histories with Stable-Baselines3.

Entry points:

* :func:`run_source_rl` streams: it calls ``on_transition(t)`` for every environment step, in the
  order the steps happened, while SB3 trains (write them to disk as they come, or downsample).
  It is :func:`make_source_algorithm` (a fresh SB3 agent on one task) followed by
  :func:`learn_recording` (train any SB3 agent built on a ``DummyVecEnv``, streaming its steps).
* :func:`record_learning_history` collects the whole run into a :class:`LearningHistory` of arrays.
* :func:`lram_agents.data.learning_history.record_learning_history` writes the run to trajectory
  files (every k-th episode) through :func:`learn_recording`: the one recording path of the library.

Defaults follow the papers: PPO for the grid worlds (Dark-Room, Dark Key-Door), SAC for the MuJoCo
tasks (the Mamba-AD paper uses PPO for Pusher and DroQ for Ant: :mod:`lram_agents.envs.droq`; pass ``algorithm=``),
with SB3's default hyper-parameters unless ``algorithm_kwargs`` says otherwise. The steps are
recorded by a Gymnasium wrapper around each environment copy, so a transition holds exactly what the
environment received and returned: the action after SB3's clipping / rescaling, and the true next
observation at episode ends (not the next episode's first one). Because SB3 collects whole rollouts,
a run may take a few more steps than ``total_timesteps`` (PPO rounds up to ``n_steps * n_envs``);
every one of them is recorded.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnvWrapper

from lram_agents.envs import MUJOCO_ENV_IDS
from lram_agents.envs.droq import DroQ

#: The source algorithms :func:`run_source_rl` accepts by name (SB3's, and DroQ as a subclass of its SAC).
ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"PPO": PPO, "SAC": SAC, "DroQ": DroQ}


@dataclass(frozen=True)
class Transition:
    """One environment step of a source-RL run.

    Attributes:
        index: position in the run's history (0, 1, 2, ...; copies interleave when ``n_envs > 1``).
        env_index: which environment copy took the step.
        episode: the episode number of that copy (0-based).
        obs: observation the action was chosen from.
        action: the action the environment received.
        reward: reward of the step.
        next_obs: observation after the step (the true last one when the episode ended).
        terminated: the episode ended in a terminal state.
        truncated: the episode was cut by the time limit.
    """

    index: int
    env_index: int
    episode: int
    obs: np.ndarray
    action: np.ndarray
    reward: float
    next_obs: np.ndarray
    terminated: bool
    truncated: bool


class TransitionRecorder(gym.Wrapper):
    """Calls ``sink(transition)`` after every step of the wrapped environment.

    Args:
        env: the environment to record.
        sink: called once per step with a :class:`Transition`.
        env_index: stored in every transition (which copy of a vector env this is).
        counter: shared iterator of history indices, so that copies number their steps jointly.
    """

    def __init__(
        self,
        env: gym.Env,
        sink: Callable[[Transition], Any],
        env_index: int = 0,
        counter: Iterator[int] | None = None,
    ):
        super().__init__(env)
        self._sink = sink
        self._env_index = env_index
        self._counter = counter if counter is not None else itertools.count()
        self._episode = -1
        self._obs: np.ndarray | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._obs = np.array(obs, copy=True)
        self._episode += 1
        return obs, info

    def step(self, action: Any):
        if self._obs is None:
            raise RuntimeError("TransitionRecorder: call reset() before step()")
        next_obs, reward, terminated, truncated, info = self.env.step(action)
        transition = Transition(
            index=next(self._counter),
            env_index=self._env_index,
            episode=self._episode,
            obs=self._obs,
            action=np.array(action, copy=True),
            reward=float(reward),
            next_obs=np.array(next_obs, copy=True),
            terminated=bool(terminated),
            truncated=bool(truncated),
        )
        self._obs = transition.next_obs
        self._sink(transition)
        return next_obs, reward, terminated, truncated, info


def algorithm_class(name: str) -> type[BaseAlgorithm]:
    """The source algorithm called ``name``: one of :data:`ALGORITHMS` or any other Stable-Baselines3 algorithm."""
    import stable_baselines3

    found = ALGORITHMS.get(name, getattr(stable_baselines3, str(name), None))
    if not (isinstance(found, type) and issubclass(found, BaseAlgorithm)):
        raise ValueError(f"algorithm must be one of {sorted(ALGORITHMS)} or another Stable-Baselines3 algorithm "
                         f"(A2C, DQN, TD3, ...), got {name!r}")
    return found


def default_algorithm(env_id: str) -> str:
    """``"SAC"`` for the MuJoCo tasks, ``"PPO"`` for the grid worlds."""
    return "SAC" if env_id in MUJOCO_ENV_IDS else "PPO"


def make_source_algorithm(
    env_id: str,
    task: object,
    *,
    algorithm: str | None = None,
    seed: int = 0,
    n_envs: int = 1,
    env_kwargs: dict[str, Any] | None = None,
    algorithm_kwargs: dict[str, Any] | None = None,
) -> BaseAlgorithm:
    """A fresh SB3 agent on ``n_envs`` copies of ``env_id`` pinned to ``task`` (not trained yet).

    The copies are Monitor-wrapped environments in a ``DummyVecEnv``, as SB3 builds them itself.
    Arguments as in :func:`run_source_rl`.
    """
    if task is None:
        raise ValueError("task must be given: a learning history belongs to one task, got None")
    algorithm_type = algorithm_class(algorithm or default_algorithm(env_id))
    if not isinstance(n_envs, (int, np.integer)) or n_envs < 1:
        raise ValueError(f"n_envs must be an integer >= 1, got {n_envs!r}")
    make_kwargs = {**(env_kwargs or {}), "task": task}
    vec_env = DummyVecEnv([lambda: Monitor(gym.make(env_id, **make_kwargs)) for _ in range(n_envs)])
    return algorithm_type("MlpPolicy", vec_env, seed=seed, verbose=0, **(algorithm_kwargs or {}))


def learn_recording(
    model: BaseAlgorithm,
    on_transition: Callable[[Transition], Any],
    total_timesteps: int,
    *,
    progress_bar: bool = False,
) -> BaseAlgorithm:
    """Run ``model.learn(total_timesteps)`` and call ``on_transition`` for every environment step, in order.

    Works with any SB3 algorithm whose environment is a ``DummyVecEnv`` (possibly inside
    ``VecEnvWrapper`` s such as ``VecNormalize``): each copy is wrapped in a :class:`TransitionRecorder`
    for the run and unwrapped afterwards, so the transitions hold the raw observations and the
    actions the environments received. ``learn`` starts with a reset (``reset_num_timesteps=True``).

    Returns:
        ``model``, trained.
    """
    if not isinstance(total_timesteps, (int, np.integer)) or total_timesteps < 1:
        raise ValueError(f"total_timesteps must be an integer >= 1, got {total_timesteps!r}")
    vec_env = base_vec_env(model)
    originals = list(vec_env.envs)
    counter = itertools.count()  # one numbering over all copies: the order the steps happened
    vec_env.envs = [TransitionRecorder(env, on_transition, i, counter) for i, env in enumerate(originals)]
    try:
        model.learn(total_timesteps=int(total_timesteps), progress_bar=progress_bar)
    finally:
        vec_env.envs = originals
    return model


def base_vec_env(model: BaseAlgorithm) -> DummyVecEnv:
    """The ``DummyVecEnv`` holding ``model``'s environment copies (under any ``VecEnvWrapper``)."""
    vec_env = model.get_env()
    if vec_env is None:
        raise ValueError("the algorithm has no environment: create it with env=... or call set_env first")
    while isinstance(vec_env, VecEnvWrapper):
        vec_env = vec_env.venv
    if not isinstance(vec_env, DummyVecEnv):
        raise TypeError(
            f"recording needs the environment copies in this process (a DummyVecEnv), got {type(vec_env).__name__}"
        )
    return vec_env


def run_source_rl(
    env_id: str,
    task: object,
    on_transition: Callable[[Transition], Any],
    *,
    total_timesteps: int,
    **options: Any,
) -> BaseAlgorithm:
    """Train a fresh SB3 agent on one task and call ``on_transition`` for every step, in order.

    Args:
        env_id: a registered id, e.g. ``"lram_agents/DarkRoom-v0"``.
        task: the hidden task, pinned in every environment copy (validated by the environment).
        on_transition: called with each :class:`Transition` as it happens.
        total_timesteps: SB3's ``learn(total_timesteps=...)``.
        options: :func:`make_source_algorithm`'s keywords (``algorithm``, ``seed``, ``n_envs``,
            ``env_kwargs``, ``algorithm_kwargs``).

    Returns:
        The trained SB3 model (its environment is left open: ``model.get_env()``).
    """
    model = make_source_algorithm(env_id, task, **options)
    return learn_recording(model, on_transition, total_timesteps)


@dataclass
class LearningHistory:
    """A whole source-RL run as arrays, one row per transition in history order.

    ``observations[i]``, ``actions[i]``, ``rewards[i]``, ``next_observations[i]``,
    ``terminated[i]``, ``truncated[i]``, ``env_index[i]`` and ``episode[i]`` describe step ``i``.
    """

    env_id: str
    task: object
    algorithm: str
    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    env_index: np.ndarray
    episode: np.ndarray

    def __len__(self) -> int:
        return len(self.rewards)

    def episode_returns(self) -> np.ndarray:
        """Returns of the completed episodes, in the order they ended."""
        ends = np.flatnonzero(self.terminated | self.truncated)
        returns = [
            self.rewards[(self.env_index == self.env_index[i]) & (self.episode == self.episode[i])].sum()
            for i in ends
        ]
        return np.asarray(returns, dtype=np.float64)


def record_learning_history(
    env_id: str, task: object, *, total_timesteps: int, algorithm: str | None = None, **kwargs: Any
) -> LearningHistory:
    """Run :func:`run_source_rl` and return every transition as a :class:`LearningHistory`.

    ``kwargs`` are :func:`run_source_rl`'s (``seed``, ``n_envs``, ``env_kwargs``, ``algorithm_kwargs``).
    """
    steps: list[Transition] = []
    name = algorithm or default_algorithm(env_id)
    model = run_source_rl(
        env_id, task, steps.append, total_timesteps=total_timesteps, algorithm=name, **kwargs
    )
    task = model.get_env().env_method("get_wrapper_attr", "task", indices=0)[0]  # canonical form
    return LearningHistory(
        env_id=env_id,
        task=task,
        algorithm=name,
        observations=np.stack([s.obs for s in steps]),
        actions=np.stack([s.action for s in steps]),
        rewards=np.array([s.reward for s in steps], dtype=np.float64),
        next_observations=np.stack([s.next_obs for s in steps]),
        terminated=np.array([s.terminated for s in steps], dtype=bool),
        truncated=np.array([s.truncated for s in steps], dtype=bool),
        env_index=np.array([s.env_index for s in steps], dtype=np.int64),
        episode=np.array([s.episode for s in steps], dtype=np.int64),
    )
