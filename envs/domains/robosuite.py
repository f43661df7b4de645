"""robosuite's manipulation tasks, LRAM's stand-in for Composuite and Mimicgen (neither installs here).

Composuite and Mimicgen are robosuite task suites that are not on the package index (GitHub only,
pinned to robosuite 1.4 and old gym); robosuite itself ships single-arm versions of several Mimicgen
tasks (Stack, Square = NutAssemblySquare, PickPlace, ...). ``gym.make("lram_agents/Robosuite-<task>-v0")``
is one of them with a Panda arm, its default OSC controller (7-d actions in [-1, 1]: end-effector
position and rotation deltas, gripper), no cameras, and the flat state Mimicgen's low-dimensional data
uses: proprioception then object state, float32. Rewards are robosuite's shaped rewards (at most 1 per
step); ``info["success"]`` is 1.0 while the task is solved. Scores are data-normalised.

robosuite draws object placements from NumPy's global random generator, so ``reset(seed=s)`` seeds it.
:func:`scripted_policy` is a pick-and-place script for Lift and Stack (the data's policy).
"""

from __future__ import annotations

from typing import Any, Callable

import gymnasium as gym
import numpy as np

from lram_agents.envs.domains import Domain

# task name -> robosuite environment class. Train on the Mimicgen-like tasks robosuite ships; hold out
# two variants of them (another nut, another object), as Mimicgen held out 2 of its tasks.
ROBOSUITE_NAMES = {
    "lift": "Lift", "stack": "Stack", "square": "NutAssemblySquare", "pick-place-can": "PickPlaceCan", "door": "Door",
    "tool-hang": "ToolHang", "nut-assembly-round": "NutAssemblyRound", "pick-place-bread": "PickPlaceBread",
}
TRAIN_TASKS = ("lift", "stack", "square", "pick-place-can", "door", "tool-hang")
HOLDOUT_TASKS = ("nut-assembly-round", "pick-place-bread")

HORIZON = 500  # Composuite's episodes last ~500 steps; Mimicgen's 260-850
STATE_KEYS = ("robot0_proprio-state", "object-state")

DOMAIN = Domain(
    name="robosuite", id_prefix="Robosuite", train_tasks=TRAIN_TASKS, holdout_tasks=HOLDOUT_TASKS, extra="robosuite",
    packages=("robosuite",), entry_point="lram_agents.envs.domains.robosuite:make_env", max_episode_steps=None,
    note="stand-in for Composuite and Mimicgen (not installable here): robosuite's own Panda tasks",
)


class RobosuiteEnv(gym.Env):
    """A robosuite task with a flat float32 state, as a Gymnasium env (robosuite ends it at ``horizon``)."""

    metadata = {"render_modes": []}

    def __init__(self, task: str, horizon: int = HORIZON, reward_shaping: bool = True, robot: str = "Panda", **suite_kwargs):
        DOMAIN.require()
        DOMAIN.split_of(task)
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        import robosuite

        self.task = task
        self.sim_env = robosuite.make(ROBOSUITE_NAMES[task], robots=robot, has_renderer=False, has_offscreen_renderer=False,
                                      use_camera_obs=False, reward_shaping=reward_shaping, horizon=horizon, **suite_kwargs)
        self.last_observation: dict[str, np.ndarray] = self.sim_env.reset()
        size = len(self._flat(self.last_observation))
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (size,), np.float32)
        low, high = self.sim_env.action_spec
        self.action_space = gym.spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)

    @staticmethod
    def _flat(observation: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([np.asarray(observation[k], dtype=np.float32).ravel() for k in STATE_KEYS])

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None:
            np.random.seed(seed)  # robosuite's placement samplers use the global generator
        self.last_observation = self.sim_env.reset()
        return self._flat(self.last_observation), {"success": 0.0}

    def step(self, action):
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self.action_space.shape:
            raise ValueError(f"action of shape {action.shape}; expected {self.action_space.shape}")
        self.last_observation, reward, done, info = self.sim_env.step(np.clip(action, -1.0, 1.0))
        info = {"success": float(self.sim_env._check_success())}
        return self._flat(self.last_observation), float(reward), False, bool(done), info

    def close(self):
        self.sim_env.close()


def make_env(task: str, **options) -> gym.Env:
    """One robosuite task (see :class:`RobosuiteEnv` for ``options``)."""
    return RobosuiteEnv(task, **options)


# ---- the data's policy: a pick-and-place script -------------------------------------------------------------------
_SCRIPTED = {"lift": ("cube_pos", None), "stack": ("cubeA_pos", "cubeB_pos")}


def scripted_policy(env: gym.Env, gain: float = 10.0) -> Callable[[np.ndarray], np.ndarray]:
    """A pick-and-place script for ``lift`` (pick the cube, raise it) and ``stack`` (put cube A on cube B).

    It reads object positions from ``env.unwrapped.last_observation``; call it once per env and use the
    returned ``policy(observation) -> action`` for every episode (it notices resets by itself).
    """
    robo = env.unwrapped
    if not isinstance(robo, RobosuiteEnv) or robo.task not in _SCRIPTED:
        raise ValueError(f"scripted_policy covers the robosuite tasks {sorted(_SCRIPTED)}, got {env}")
    pick_key, place_key = _SCRIPTED[robo.task]
    state = {"phase": 0, "steps": 0}

    def act(observation: np.ndarray) -> np.ndarray:
        obs = robo.last_observation
        if robo.sim_env.timestep == 0:  # a new episode
            state.update(phase=0, steps=0)
        eef, target_obj = obs["robot0_eef_pos"], obs[pick_key]
        phase, gripper = state["phase"], -1.0
        if phase == 0:  # above the object
            goal = target_obj + [0, 0, 0.06]
            if np.linalg.norm(goal - eef) < 0.01:
                state["phase"] = 1
        elif phase == 1:  # down to it
            goal = target_obj + [0, 0, -0.005]
            if np.linalg.norm(goal - eef) < 0.008:
                state["phase"], state["steps"] = 2, 0
        elif phase == 2:  # close the gripper
            goal, gripper = eef, 1.0
            state["steps"] += 1
            if state["steps"] > 12:
                state["phase"] = 3
        elif phase == 3:  # lift (Lift ends here) or carry above the other cube
            gripper = 1.0
            goal = target_obj + [0, 0, 0.2] if place_key is None else obs[place_key] + [0, 0, 0.08]
            if place_key is not None and np.linalg.norm(goal - target_obj) < 0.01:
                state["phase"] = 4
        else:  # lower onto the other cube and let go
            goal, gripper = obs[place_key] + [0, 0, 0.05], 1.0
            if np.linalg.norm(goal - target_obj) < 0.01:
                gripper = -1.0
        action = np.zeros(7, dtype=np.float32)
        action[:3] = np.clip(gain * (goal - eef), -1.0, 1.0)
        action[6] = gripper
        return action

    return act

