"""DMControl (dm-control through shimmy) as LRAM trains on it: flat float32 states, actions in [-1, 1].

``gym.make("lram_agents/DMControl-<domain>-<task>-v0")`` is shimmy's ``dm_control/<domain>-<task>-v0``
with its dict observation flattened (keys in dm-control's order) and cast to float32. Every task
of LRAM's lists already has actions in [-1, 1]; episodes are 1000 steps (at most 1 reward per step).
Scores are data-normalised.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from lram_agents.envs.domains import Domain

# LRAM appendix A.4: DMC11 / DMC5 (after Hafner et al. 2019 and Schmied et al. 2024a,b).
TRAIN_TASKS = ("finger-turn_easy", "fish-upright", "hopper-stand", "point_mass-easy", "walker-stand", "walker-run",
               "ball_in_cup-catch", "cartpole-swingup", "cheetah-run", "finger-spin", "reacher-easy")
HOLDOUT_TASKS = ("cartpole-balance", "finger-turn_hard", "pendulum-swingup", "reacher-hard", "walker-walk")

EPISODE_STEPS = 1000

DOMAIN = Domain(
    name="dmcontrol", id_prefix="DMControl", train_tasks=TRAIN_TASKS, holdout_tasks=HOLDOUT_TASKS, extra="dmc",
    packages=("dm_control", "shimmy"), entry_point="lram_agents.envs.domains.dmcontrol:make_env",
    max_episode_steps=EPISODE_STEPS, note="data here comes from short SAC runs, not 10M-step ones",
)


def make_env(task: str, **shimmy_kwargs) -> gym.Env:
    """One DMControl task with a flat float32 observation; ``shimmy_kwargs`` go to shimmy's env."""
    DOMAIN.require()
    DOMAIN.split_of(task)
    import shimmy

    gym.register_envs(shimmy)
    env = gym.make(f"dm_control/{task}-v0", **shimmy_kwargs)
    env = gym.wrappers.FlattenObservation(env)
    return gym.wrappers.DtypeObservation(env, np.float32)
