"""Meta-World (metaworld 3.1.1) as LRAM trains on it: 39-d states, 4-d actions, 200-step episodes.

``gym.make("lram_agents/MetaWorld-<task>-v0")`` is metaworld's ``Meta-World/MT1`` for ``<task>-v3``
(a new random variation of the task, e.g. object and goal positions, at every reset; ``seed`` picks
the set of variations; without it the set is drawn anew for each env, so ``reset(seed=s)`` replays an
episode within one env but across processes only when ``seed`` is given too), cut at 200 steps as in LRAM (Wolczyk et al. 2021), observations float32 (unbounded space).
``info["success"]`` is 1.0 once the task is solved; episodes do not end at success. LRAM used the
``-v2`` tasks; metaworld 3 ships ``-v3`` versions of the same 50 tasks. Scores are data-normalised.

The scripted expert of every task (``metaworld.policies``) is :func:`expert_policy`.
"""

from __future__ import annotations

from typing import Callable

import gymnasium as gym
import numpy as np

from lram_agents.envs.domains import Domain

# LRAM appendix A.3: MT45 / MT5 (after Yu et al. 2020a).
TRAIN_TASKS = (
    "reach", "push", "pick-place", "door-open", "drawer-open", "drawer-close", "button-press-topdown", "peg-insert-side",
    "window-open", "window-close", "door-close", "reach-wall", "pick-place-wall", "push-wall", "button-press",
    "button-press-topdown-wall", "button-press-wall", "peg-unplug-side", "disassemble", "hammer", "plate-slide",
    "plate-slide-side", "plate-slide-back", "plate-slide-back-side", "handle-press", "handle-pull", "handle-press-side",
    "handle-pull-side", "stick-push", "stick-pull", "basketball", "soccer", "faucet-open", "faucet-close", "coffee-push",
    "coffee-pull", "coffee-button", "sweep", "sweep-into", "pick-out-of-hole", "assembly", "shelf-place", "push-back",
    "lever-pull", "dial-turn",
)
HOLDOUT_TASKS = ("bin-picking", "box-close", "door-lock", "door-unlock", "hand-insert")

EPISODE_STEPS = 200
VERSION_SUFFIX = "-v3"

DOMAIN = Domain(
    name="metaworld", id_prefix="MetaWorld", train_tasks=TRAIN_TASKS, holdout_tasks=HOLDOUT_TASKS, extra="metaworld",
    packages=("metaworld",), entry_point="lram_agents.envs.domains.metaworld:make_env", max_episode_steps=EPISODE_STEPS,
    note="metaworld 3's -v3 tasks (LRAM: -v2); data here from the scripted experts with action noise, not SAC replay",
)


def make_env(task: str, seed: int | None = None, **mt1_kwargs) -> gym.Env:
    """One Meta-World task (MT1) with float32 observations; ``mt1_kwargs`` go to ``Meta-World/MT1``."""
    DOMAIN.require()
    DOMAIN.split_of(task)
    import metaworld  # noqa: F401  (registers the Meta-World/ ids)

    env = gym.make("Meta-World/MT1", env_name=task + VERSION_SUFFIX, seed=seed, **mt1_kwargs)
    # metaworld's declared observation bounds are narrower than what its tasks return (e.g. the hand
    # leaves its box), so the space is widened to the reals rather than states "outside the space".
    space = gym.spaces.Box(-np.inf, np.inf, env.observation_space.shape, np.float32)
    return gym.wrappers.TransformObservation(SeededReset(env), lambda obs: np.asarray(obs, dtype=np.float32), space)


class SeededReset(gym.Wrapper):
    """Makes ``reset(seed=s)`` deterministic: metaworld picks the task variation *before* its reset and
    ignores the reset's seed (its envs are seeded with ``seed()``), so the seed is applied first."""

    def reset(self, *, seed: int | None = None, options=None):
        if seed is not None:
            self.env.unwrapped.seed(seed)
        return self.env.reset(seed=seed, options=options)


def expert_policy(task: str) -> Callable[[np.ndarray], np.ndarray]:
    """The scripted expert of ``task`` (``metaworld.policies``): observation -> action clipped to [-1, 1]."""
    DOMAIN.require()
    DOMAIN.split_of(task)
    from metaworld.policies import ENV_POLICY_MAP

    policy = ENV_POLICY_MAP[task + VERSION_SUFFIX]()

    def act(observation: np.ndarray) -> np.ndarray:
        return np.clip(policy.get_action(np.asarray(observation, dtype=np.float64)), -1.0, 1.0).astype(np.float32)

    return act
