"""Dark-Room and Dark Key-Door (LRAM appendix C.4; Algorithm Distillation): find an invisible goal.

A ``size`` x ``size`` grid (default 10 x 10), the agent starts in the top-left corner (0, 0) and
observes only its own cell ``[x, y]`` (``MultiDiscrete([size, size])``, x to the right, y down).
Actions (``Discrete(5)``): 0 up (y-1), 1 down (y+1), 2 left (x-1), 3 right (x+1), 4 stay; moves
into the border leave the agent in place. Episodes never terminate; they are truncated after
``episode_length`` = 100 steps. A reward is given for the cell the agent is on *after* a step.

* Dark-Room: +1 for every step that ends on the goal cell. Task: the goal ``(x, y)``
  (:class:`~lram_agents.envs.tasks.GridGoalTasks`, 100 goals, 80 train / 20 hold-out).
* Dark Key-Door: +1 once, on the first step that ends on the key; after that, +1 for every step
  that ends on the door (``door_reward="per_step"``, envs.md) or only for the first one
  (``door_reward="once"``, the AD paper's wording). Task: ``(key_x, key_y, door_x, door_y)``
  with key != door (:class:`~lram_agents.envs.tasks.KeyDoorTasks`).

The task is kept across resets (many episodes on one goal, as in-context learning needs) and set by
``task=`` or ``reset(options={"task": ...})``; see :class:`~lram_agents.envs.tasks.TaskSlot`.
"""

from __future__ import annotations

from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from lram_agents.envs import _render
from lram_agents.envs._validation import check_discrete_action, check_reset_options
from lram_agents.envs.tasks import GridGoal, GridGoalTasks, KeyDoor, KeyDoorTasks, TaskFamily, TaskSlot

UP, DOWN, LEFT, RIGHT, STAY = 0, 1, 2, 3, 4
_MOVES = {UP: (0, -1), DOWN: (0, 1), LEFT: (-1, 0), RIGHT: (1, 0), STAY: (0, 0)}
_CELL_PX = 32


def move(position: GridGoal, action: int, size: int) -> GridGoal:
    """The cell reached from ``position`` by ``action`` on a ``size`` x ``size`` grid (walls block)."""
    dx, dy = _MOVES[action]
    x, y = position
    return (min(max(x + dx, 0), size - 1), min(max(y + dy, 0), size - 1))


def step_towards(position: GridGoal, target: GridGoal) -> int:
    """One shortest-path action from ``position`` to ``target`` (x first, then y; stay when there)."""
    (x, y), (tx, ty) = position, target
    if x != tx:
        return RIGHT if tx > x else LEFT
    if y != ty:
        return DOWN if ty > y else UP
    return STAY


class _DarkGrid(gym.Env[np.ndarray, np.int64]):
    """Mechanics shared by the two dark grid worlds; subclasses define the reward and task markers."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        family: TaskFamily,
        size: int,
        episode_length: int,
        task: object | None,
        render_mode: str | None,
    ):
        if not isinstance(episode_length, (int, np.integer)) or episode_length < 1:
            raise ValueError(f"episode_length must be an integer >= 1, got {episode_length!r}")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.size = size
        self.episode_length = int(episode_length)
        self.render_mode = render_mode
        self.observation_space = spaces.MultiDiscrete([size, size])
        self.action_space = spaces.Discrete(5)
        self.task_family = family
        self._task = TaskSlot(family, task)
        self._position: GridGoal = (0, 0)
        self._t = 0

    @property
    def task(self) -> Any:
        """The current hidden task; ``None`` before the first reset unless pinned."""
        return self._task.current

    @property
    def position(self) -> GridGoal:
        """The agent's cell ``(x, y)`` (also its observation)."""
        return self._position

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        requested = check_reset_options(options)
        super().reset(seed=seed)
        self._task.on_reset(requested, self.np_random, seeded=seed is not None)
        self._position, self._t = (0, 0), 0
        self._start_episode()
        return self._observation(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        action = check_discrete_action(self.action_space, action)
        self._position = move(self._position, action, self.size)
        self._t += 1
        reward = self._reward()
        return self._observation(), reward, False, self._t >= self.episode_length, {}

    def _observation(self) -> np.ndarray:
        return np.array(self._position, dtype=np.int64)

    def render(self) -> np.ndarray | None:
        """An RGB frame of the grid (task cells coloured, agent in blue); row 0 is y = 0."""
        if self.render_mode != "rgb_array":
            return None
        colors = np.empty((self.size, self.size, 3), dtype=np.uint8)
        colors[:] = _render.FLOOR
        for (x, y), color in self._markers():
            colors[y, x] = color
        image = _render.draw_grid(colors, _CELL_PX)
        _render.draw_dot(image, self._position[1], self._position[0], _CELL_PX, _render.AGENT)
        return image

    def _start_episode(self) -> None:
        """Reset per-episode state beyond the position (none by default)."""

    def _reward(self) -> float:
        raise NotImplementedError

    def _markers(self) -> list[tuple[GridGoal, _render.Color]]:
        raise NotImplementedError


class DarkRoomEnv(_DarkGrid):
    """Dark-Room: +1 for every step that ends on the invisible goal cell.

    Args:
        size: grid side (10 in the papers).
        episode_length: steps per episode (100 in the papers).
        task: pin the goal ``(x, y)``; ``None`` draws one at the first (or a seeded) reset.
        render_mode: ``None`` or ``"rgb_array"``.
    """

    def __init__(
        self,
        size: int = 10,
        episode_length: int = 100,
        task: GridGoal | None = None,
        render_mode: str | None = None,
    ):
        super().__init__(GridGoalTasks(size), size, episode_length, task, render_mode)

    def _reward(self) -> float:
        return float(self._position == self._task.current)

    def _markers(self) -> list[tuple[GridGoal, _render.Color]]:
        return [(self._task.current, _render.GOAL)] if self._task.current is not None else []


class DarkKeyDoorEnv(_DarkGrid):
    """Dark Key-Door: +1 on first reaching the invisible key, then +1 at the invisible door.

    Args:
        size: grid side (10, as Dark-Room).
        episode_length: steps per episode (100, as Dark-Room).
        door_reward: ``"per_step"`` (+1 for every step on the door once the key is held, envs.md)
            or ``"once"`` (+1 the first time only, as the AD paper words it).
        task: pin ``(key_x, key_y, door_x, door_y)``; ``None`` draws one at the first (or a seeded) reset.
        render_mode: ``None`` or ``"rgb_array"``.
    """

    def __init__(
        self,
        size: int = 10,
        episode_length: int = 100,
        door_reward: Literal["per_step", "once"] = "per_step",
        task: KeyDoor | None = None,
        render_mode: str | None = None,
    ):
        if door_reward not in ("per_step", "once"):
            raise ValueError(f"door_reward must be 'per_step' or 'once', got {door_reward!r}")
        self.door_reward = door_reward
        self._has_key = self._door_opened = False
        super().__init__(KeyDoorTasks(size), size, episode_length, task, render_mode)

    def _start_episode(self) -> None:
        self._has_key = self._door_opened = False

    def _reward(self) -> float:
        key, door = self._task.current[:2], self._task.current[2:]
        if not self._has_key:
            self._has_key = self._position == key
            return float(self._has_key)
        if self._position != door or (self._door_opened and self.door_reward == "once"):
            return 0.0
        self._door_opened = True
        return 1.0

    def _markers(self) -> list[tuple[GridGoal, _render.Color]]:
        if self._task.current is None:
            return []
        key, door = self._task.current[:2], self._task.current[2:]
        return [(door, _render.DOOR)] + ([] if self._has_key else [(key, _render.KEY)])


class DarkRoomExpert:
    """Shortest-path expert for Dark-Room: walk to the goal, then stay on it."""

    def __init__(self, goal: GridGoal):
        self.goal = (int(goal[0]), int(goal[1]))

    def reset(self) -> None:
        """Nothing to forget; present so that all experts share one interface."""

    def act(self, observation: np.ndarray) -> int:
        """The action for the agent's cell ``observation`` = ``[x, y]``."""
        return step_towards((int(observation[0]), int(observation[1])), self.goal)


class DarkKeyDoorExpert:
    """Shortest-path expert for Dark Key-Door: to the key, then to the door, then stay on it.

    It tracks whether the key is held from its own moves, so call :meth:`reset` at every episode start.
    """

    def __init__(self, task: KeyDoor, size: int = 10):
        self.key = (int(task[0]), int(task[1]))
        self.door = (int(task[2]), int(task[3]))
        self.size = size
        self.reset()

    def reset(self) -> None:
        """Start a new episode without the key."""
        self._has_key = False

    def act(self, observation: np.ndarray) -> int:
        """The action for the agent's cell ``observation`` = ``[x, y]``."""
        position = (int(observation[0]), int(observation[1]))
        action = step_towards(position, self.door if self._has_key else self.key)
        # The key is collected by the step that ends on it (staying on it counts, as in the env).
        self._has_key = self._has_key or move(position, action, self.size) == self.key
        return action
