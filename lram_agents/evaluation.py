"""Evaluating an agent: episode returns and lengths, and the per-step latency of acting.

Works with a single Gymnasium env and with Gymnasium vector envs in each autoreset mode:

* ``SAME_STEP``: the observation returned with ``done`` is already the next episode's first one.
* ``NEXT_STEP`` (gymnasium 1.x's default): the step after ``done`` is a reset step whose action is
  ignored and whose reward (0) belongs to no episode. The agent does not step that env then
  (``act_batch(active=...)``), so its memory and return-to-go skip the reset step entirely.
* ``DISABLED``: finished envs are reset with ``reset(options={"reset_mask": done})``.

With ``keep_memory=True`` each env plays consecutive episodes (trials) with its memory kept across
them, the in-context protocol; :meth:`EvaluationResult.trial_returns` gives the returns per trial.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from tqdm.auto import tqdm

from lram_agents.agent import Agent


@dataclass(frozen=True)
class EvaluationResult:
    """Finished episodes, in the order they finished, and the latency of every agent call.

    Attributes:
        returns, lengths: (E,) undiscounted return and length of each episode.
        env_indices: (E,) the env (row of the vector env) that played it.
        trials: (E,) its position among that env's consecutive episodes (0, 1, ...).
        step_latencies: (S,) seconds per agent call; one call acts in every env of a vector env.
        num_envs: envs played in parallel.
        successes: (E,) 1.0 if the env's ``info["success"]`` was true at any step of the episode, 0.0 if
            never, NaN for envs that do not report success.
    """

    returns: np.ndarray
    lengths: np.ndarray
    env_indices: np.ndarray
    trials: np.ndarray
    step_latencies: np.ndarray
    num_envs: int
    successes: np.ndarray | None = None

    @property
    def success_rate(self) -> float:
        """Mean of :attr:`successes` over the episodes that report one (NaN if none does)."""
        known = self.successes[np.isfinite(self.successes)] if self.successes is not None else np.array([])
        return float(known.mean()) if known.size else float("nan")

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))

    @property
    def latency_median_ms(self) -> float:
        return float(1e3 * np.median(self.step_latencies))

    @property
    def latency_p95_ms(self) -> float:
        return float(1e3 * np.percentile(self.step_latencies, 95))

    def trial_returns(self) -> np.ndarray:
        """(num_envs, trials) returns by env and trial; NaN where an env played fewer trials."""
        table = np.full((self.num_envs, int(self.trials.max()) + 1), np.nan)
        table[self.env_indices, self.trials] = self.returns
        return table

    def summary(self) -> dict[str, float]:
        """The headline numbers (e.g. for a model card)."""
        return {
            "episodes": int(len(self.returns)),
            "mean return": self.mean_return,
            "std return": float(np.std(self.returns)),
            "mean length": float(np.mean(self.lengths)),
            "latency median (ms per call)": self.latency_median_ms,
            "latency p95 (ms per call)": self.latency_p95_ms,
            "envs per call": self.num_envs,
            **({} if np.isnan(self.success_rate) else {"success rate": self.success_rate}),
        }

    def __str__(self) -> str:
        return (
            f"{len(self.returns)} episodes: return {self.mean_return:.3f} ± {np.std(self.returns):.3f}, "
            f"length {np.mean(self.lengths):.1f}; latency median {self.latency_median_ms:.2f} ms, "
            f"p95 {self.latency_p95_ms:.2f} ms per call ({self.num_envs} env(s))"
        )


def evaluate(
    agent: Agent,
    env: gym.Env | VectorEnv,
    n_episodes: int,
    *,
    keep_memory: bool | None = None,
    deterministic: bool | None = None,
    seed: int | None = None,
    progress: bool = True,
) -> EvaluationResult:
    """Play ``n_episodes`` episodes (spread evenly over the envs of a vector env) and measure them.

    Args:
        agent: bound to ``env``'s spaces here; its memory starts empty and is emptied again at the end.
        env: a Gymnasium env or vector env (any autoreset mode).
        keep_memory: keep memory across each env's consecutive episodes (in-context evaluation);
            default: the agent's setting.
        deterministic: overrides the agent's setting.
        seed: seeds the env's first reset.
        progress: show a progress bar over episodes.
    """
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    vector = env if isinstance(env, VectorEnv) else _SingleAsVector(env)
    agent.bind(vector)
    agent.forget()
    saved_setting = agent.keep_memory
    agent.keep_memory = saved_setting if keep_memory is None else bool(keep_memory)
    try:
        with tqdm(total=n_episodes, desc="evaluate", unit="episode", disable=not progress) as bar:
            return _run(agent, vector, n_episodes, deterministic, seed, bar)
    finally:
        agent.keep_memory = saved_setting
        agent.forget()  # the memory holds the vector env's rows: no use to a later act()


def _run(agent: Agent, env, n_episodes: int, deterministic: bool | None, seed: int | None, bar) -> EvaluationResult:
    n = env.num_envs
    mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
    targets = np.array([(n_episodes + i) // n for i in range(n)])  # as SB3: no bias towards short episodes
    counts = np.zeros(n, dtype=int)
    ep_return, ep_length, ep_success = np.zeros(n), np.zeros(n, dtype=int), np.full(n, np.nan)
    episodes, latencies = [], []
    obs, _ = env.reset(seed=seed)
    rewards = np.zeros(n)
    starts, active = np.ones(n, dtype=bool), np.ones(n, dtype=bool)
    while (counts < targets).any():
        begin = time.perf_counter()
        actions = agent.act_batch(obs, rewards, starts, active=active, deterministic=deterministic)
        latencies.append(time.perf_counter() - begin)
        obs, step_rewards, terminated, truncated, info = env.step(actions)
        done = (terminated | truncated) & active
        # a row in its reset step keeps the reward its episode ended with: the agent has not seen it yet
        rewards = np.where(active, step_rewards, rewards)
        ep_return[active] += step_rewards[active]
        ep_length[active] += 1
        success = _success_of(info, n)
        ep_success[active] = np.fmax(ep_success[active], success[active])
        for i in np.flatnonzero(done):
            if counts[i] < targets[i]:
                episodes.append((ep_return[i], ep_length[i], i, counts[i], ep_success[i]))
                counts[i] += 1
                bar.update(1)
        ep_return[done], ep_length[done], ep_success[done] = 0.0, 0, np.nan
        if mode == AutoresetMode.NEXT_STEP:
            starts, active = ~active, ~done  # envs in their reset step now start; finished ones sit one out
        else:
            if mode == AutoresetMode.DISABLED and done.any():
                obs = _reset_done(env, obs, done)
            starts, active = done, np.ones(n, dtype=bool)
    returns, lengths, env_indices, trials, successes = (np.array(column) for column in zip(*episodes))
    return EvaluationResult(returns, lengths, env_indices, trials, np.array(latencies), n, successes.astype(float))


def _success_of(info: dict, n: int) -> np.ndarray:
    """(n,) the step's ``info["success"]`` as 0/1 per env, NaN where an env gives none (vector infos
    carry a ``"_success"`` mask; a single env's info a scalar)."""
    if "success" not in info:
        return np.full(n, np.nan)
    values = np.asarray(info["success"], dtype=float).reshape(-1)
    values = np.broadcast_to(values, (n,)).copy()
    mask = np.asarray(info.get("_success", np.ones(n, dtype=bool))).reshape(-1)
    values[~mask] = np.nan
    return np.where(np.isnan(values), np.nan, (values > 0).astype(float))


def _reset_done(env: VectorEnv, obs: np.ndarray, done: np.ndarray) -> np.ndarray:
    new_obs, _ = env.reset(options={"reset_mask": done})
    return np.where(done.reshape(-1, *([1] * (obs.ndim - 1))), new_obs, obs)


class _SingleAsVector:
    """A single env seen as a vector env of one, resetting in the step that ends an episode."""

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}
    num_envs = 1

    def __init__(self, env: gym.Env):
        self.env = env
        self.envs = [env]  # as in SyncVectorEnv (what Agent.bind reads the env id from)
        self.single_observation_space, self.single_action_space = env.observation_space, env.action_space

    def reset(self, seed: int | None = None):
        obs, info = self.env.reset(seed=seed)
        return np.asarray(obs)[None], info

    def step(self, actions: np.ndarray):
        obs, reward, terminated, truncated, info = self.env.step(actions[0])
        if terminated or truncated:
            obs, _ = self.env.reset()
        return np.asarray(obs)[None], np.array([float(reward)]), np.array([terminated]), np.array([truncated]), info
