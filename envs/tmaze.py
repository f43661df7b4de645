"""T-Maze of the RATE paper (section 4.1): remember a hint from the first step for L steps.

Layout (L = ``corridor_length``)::

    y=+1                      G+      goal if hint = +1
    y= 0   S - - - - - - - -  J       start S at x=0, junction J at x=L
    y=-1                      G-      goal if hint = -1

Observation ``[y, hint, flag, noise]`` (float32): ``hint`` is the goal side in the first
observation only (0 afterwards), ``flag`` is 1 once at the junction (see ``flag_mode``), ``noise``
is uniform in {-1, 0, +1} at every step. Actions: 0 right (+x), 1 up (+y), 2 left (-x),
3 down (-y); walls leave the agent in place. The episode ends (``terminated``) when a goal cell is
entered, with reward 1 for the hinted one and 0 for the other; it is truncated after
``episode_length`` = L + 2 steps (the paper's T) with reward 0. There is no step penalty.

The hidden task is the goal side (:class:`~lram_agents.envs.tasks.TMazeTasks`), drawn from
``np_random`` at every reset unless pinned by ``task=`` or given by ``reset(options={"task": +1})``.

Paper vs code (both kept, chosen by ``flag_mode``):

* ``"junction"`` (default): the flag is 1 in the observation where the agent first stands on the
  junction (x = L), as in the authors' evaluation code (``val_tmaze.py``) and, for the oracle, their
  data generator. This is what a model trained on the oracle's data sees.
* ``"before_junction"``: the flag is 1 one cell before it (x = L - 1), the paper's wording.

Like the authors' code, the flag is shown once, the first time the agent reaches that cell.
"""

from __future__ import annotations

from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from lram_agents.envs import _render
from lram_agents.envs._validation import check_discrete_action, check_reset_options
from lram_agents.envs.tasks import TaskSlot, TMazeTasks

FlagMode = Literal["junction", "before_junction"]

RIGHT, UP, LEFT, DOWN = 0, 1, 2, 3
_MOVES = {RIGHT: (1, 0), UP: (0, 1), LEFT: (-1, 0), DOWN: (0, -1)}
_MAX_DRAWN_COLUMNS = 64  # long corridors are drawn compressed so frames stay small


class TMazeEnv(gym.Env[np.ndarray, np.int64]):
    """Passive-memory T-Maze with observation ``[y, hint, flag, noise]`` (see the module docstring).

    Args:
        corridor_length: L >= 1, the number of cells from the start to the junction.
        flag_mode: ``"junction"`` (authors' code, default) or ``"before_junction"`` (paper text).
        episode_length: time limit; ``None`` means the paper's T = L + 2.
        task: pin the goal side (+1 up, -1 down) for every episode; ``None`` draws it per episode.
        render_mode: ``None`` or ``"rgb_array"``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        corridor_length: int = 10,
        flag_mode: FlagMode = "junction",
        episode_length: int | None = None,
        task: int | None = None,
        render_mode: str | None = None,
    ):
        if not isinstance(corridor_length, (int, np.integer)) or corridor_length < 1:
            raise ValueError(f"corridor_length must be an integer >= 1, got {corridor_length!r}")
        if flag_mode not in ("junction", "before_junction"):
            raise ValueError(f"flag_mode must be 'junction' or 'before_junction', got {flag_mode!r}")
        if episode_length is None:
            episode_length = int(corridor_length) + 2
        if not isinstance(episode_length, (int, np.integer)) or episode_length < 1:
            raise ValueError(f"episode_length must be an integer >= 1, got {episode_length!r}")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.corridor_length = int(corridor_length)
        self.flag_mode = flag_mode
        self.episode_length = int(episode_length)
        self.render_mode = render_mode
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32)
        self.action_space = spaces.Discrete(4)
        self.task_family = TMazeTasks()
        self._task = TaskSlot(self.task_family, task)
        self._x, self._y, self._t, self._flag_shown = 0, 0, 0, False

    @property
    def task(self) -> int | None:
        """The current goal side (+1 up, -1 down); ``None`` before the first reset."""
        return self._task.current

    @property
    def position(self) -> tuple[int, int]:
        """The agent's cell ``(x, y)``: x along the corridor, y in {-1, 0, +1}."""
        return (self._x, self._y)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        requested = check_reset_options(options)
        super().reset(seed=seed)
        self._task.on_reset(requested, self.np_random, seeded=seed is not None)
        self._x, self._y, self._t, self._flag_shown = 0, 0, 0, False
        return self._observation(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        dx, dy = _MOVES[check_discrete_action(self.action_space, action)]
        if self._is_open(self._x + dx, self._y + dy):
            self._x, self._y = self._x + dx, self._y + dy
        self._t += 1
        terminated = self._y != 0  # the only cells off the corridor are the two goals
        truncated = not terminated and self._t >= self.episode_length
        success = terminated and self._y == self._task.current
        info = {"is_success": bool(success)} if terminated or truncated else {}
        return self._observation(), float(success), bool(terminated), bool(truncated), info

    def _is_open(self, x: int, y: int) -> bool:
        on_corridor = y == 0 and 0 <= x <= self.corridor_length
        return on_corridor or (x == self.corridor_length and y in (-1, 1))

    def _observation(self) -> np.ndarray:
        hint = self._task.current if self._t == 0 else 0
        flag_x = self.corridor_length if self.flag_mode == "junction" else self.corridor_length - 1
        flag = not self._flag_shown and self._y == 0 and self._x == flag_x
        self._flag_shown |= flag
        noise = self.np_random.integers(-1, 2)
        return np.array([self._y, hint, float(flag), noise], dtype=np.float32)

    def render(self) -> np.ndarray | None:
        """An RGB frame: corridor, both goal cells (green = hinted, red = other), agent in blue."""
        if self.render_mode != "rgb_array":
            return None
        columns = min(self.corridor_length + 1, _MAX_DRAWN_COLUMNS)
        colors = np.empty((3, columns, 3), dtype=np.uint8)
        colors[:] = _render.WALL
        colors[1, :] = _render.FLOOR
        goal_row = {1: 0, -1: 2}
        hinted = self._task.current if self._task.current is not None else 1
        colors[goal_row[hinted], -1] = _render.GOAL
        colors[goal_row[-hinted], -1] = _render.WRONG
        cell_px = 24
        image = _render.draw_grid(colors, cell_px)
        _render.draw_dot(image, 1 - self._y, self._column(columns), cell_px, _render.AGENT)
        return image

    def _column(self, columns: int) -> int:
        """Drawn column of the agent's x (compressed when the corridor is long)."""
        return round(self._x * (columns - 1) / self.corridor_length)


class TMazeOracle:
    """The optimal policy: ``corridor_length`` x right, then up or down as the first hint said.

    Usage: ``oracle.reset()`` at each episode start, then ``oracle.act(obs)`` on every observation.
    """

    def __init__(self, corridor_length: int):
        self.corridor_length = corridor_length
        self.reset()

    def reset(self) -> None:
        """Forget the hint and the step count (call at every episode start)."""
        self._hint: float | None = None
        self._steps = 0

    def act(self, observation: np.ndarray) -> int:
        """The action for ``observation``; the first observation after :meth:`reset` gives the hint."""
        if self._hint is None:
            self._hint = float(observation[1])
        action = RIGHT if self._steps < self.corridor_length else (UP if self._hint > 0 else DOWN)
        self._steps += 1
        return action
