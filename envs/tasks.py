"""Hidden tasks shared by every environment family: sampling, a fixed train / hold-out split, validation.

A *task* is the hidden parameter of an environment (T-Maze's goal side, Dark-Room's goal cell,
HalfCheetah-Vel's target velocity, ...). Tasks are small hashable values (an ``int``, a ``float``
or a tuple of numbers) so that they can be stored next to a dataset, used as dict keys and
written to JSON.

Every family exposes the same four calls::

    family = env.unwrapped.task_family          # or lram_agents.envs.task_family(env_id)
    family.train_tasks()                         # fixed tuple, the same on every machine
    family.holdout_tasks()                       # disjoint from train_tasks(); for in-context evaluation
    family.sample(rng, split="all")              # "all" (the task distribution), "train" or "holdout"
    family.validate(task)                        # canonical form, or ValueError naming the bad value

and an environment reads / sets its task with ``env.unwrapped.task`` and
``env.reset(options={"task": task})`` (see :class:`TaskSlot` for the exact rules).

The splits are drawn once from ``numpy.random.default_rng(SPLIT_SEED)``; change ``split_seed`` only to
build a different benchmark.
"""

from __future__ import annotations

import functools
import math
from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence
from typing import Generic, Literal, TypeVar

import numpy as np

#: Seed of every fixed train / hold-out split in this package.
SPLIT_SEED = 1234

Split = Literal["all", "train", "holdout"]
TaskT = TypeVar("TaskT", bound=Hashable)

GridGoal = tuple[int, int]
KeyDoor = tuple[int, int, int, int]


class TaskFamily(ABC, Generic[TaskT]):
    """A distribution over hidden tasks with a fixed train / hold-out split."""

    #: ``True`` when a new task is drawn at every reset (T-Maze's goal side is part of the episode),
    #: ``False`` when the task is kept across resets (meta-RL: many episodes on one hidden task).
    per_episode: bool = False

    @abstractmethod
    def validate(self, task: object) -> TaskT:
        """Return ``task`` in canonical form; raise ``ValueError`` naming it when it is not a task."""

    @abstractmethod
    def train_tasks(self) -> tuple[TaskT, ...]:
        """The fixed training tasks (record source-RL histories / offline data on these)."""

    @abstractmethod
    def holdout_tasks(self) -> tuple[TaskT, ...]:
        """The fixed hold-out tasks, disjoint from :meth:`train_tasks` (evaluate generalisation here)."""

    @abstractmethod
    def _draw(self, rng: np.random.Generator) -> TaskT:
        """One task from the family's full distribution."""

    def sample(self, rng: np.random.Generator, split: Split = "all") -> TaskT:
        """Draw a task with ``rng``: from the whole distribution, or uniformly from one split."""
        if split == "all":
            return self._draw(rng)
        if split == "train":
            pool = self.train_tasks()
        elif split == "holdout":
            pool = self.holdout_tasks()
        else:
            raise ValueError(f"split must be 'all', 'train' or 'holdout', got {split!r}")
        if not pool:
            raise ValueError(f"{type(self).__name__} has no {split!r} tasks")
        return pool[int(rng.integers(len(pool)))]

    def contains(self, task: object) -> bool:
        """Whether ``task`` is a valid task of this family."""
        try:
            self.validate(task)
        except (TypeError, ValueError):
            return False
        return True


# --------------------------------------------------------------------------- helpers


def _numbers(task: object, count: int, what: str) -> tuple[float, ...]:
    """``task`` as ``count`` finite floats, or ValueError naming it."""
    try:
        array = np.asarray(task, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{what} must be {count} numbers, got {task!r}") from error
    if array.size != count or not np.all(np.isfinite(array)):
        raise ValueError(f"{what} must be {count} finite numbers, got {task!r}")
    return tuple(float(v) for v in array)


def _integers(task: object, count: int, what: str) -> tuple[int, ...]:
    """``task`` as ``count`` integers (integral floats accepted), or ValueError naming it."""
    values = _numbers(task, count, what)
    if any(v != int(v) for v in values):
        raise ValueError(f"{what} must be integers, got {task!r}")
    return tuple(int(v) for v in values)


def _split(items: Sequence[TaskT], holdout_fraction: float, seed: int) -> tuple[tuple, tuple]:
    """Permute ``items`` with ``seed``; the last ``holdout_fraction`` of them is the hold-out set."""
    order = np.random.default_rng(seed).permutation(len(items))
    n_holdout = int(round(holdout_fraction * len(items)))
    train = sorted(items[i] for i in order[: len(items) - n_holdout])
    holdout = sorted(items[i] for i in order[len(items) - n_holdout :])
    return tuple(train), tuple(holdout)


# --------------------------------------------------------------------------- discrete families


class TMazeTasks(TaskFamily[int]):
    """T-Maze goal side: ``+1`` (up) or ``-1`` (down), drawn afresh every episode.

    T-Maze tests memory, not generalisation across tasks: both sides are training tasks and the
    hold-out set is empty (generalisation is measured over corridor lengths instead).
    """

    per_episode = True

    def validate(self, task: object) -> int:
        (side,) = _integers(task, 1, "T-Maze task (goal side)")
        if side not in (-1, 1):
            raise ValueError(f"T-Maze task (goal side) must be +1 or -1, got {task!r}")
        return side

    def train_tasks(self) -> tuple[int, ...]:
        return (-1, 1)

    def holdout_tasks(self) -> tuple[int, ...]:
        return ()

    def _draw(self, rng: np.random.Generator) -> int:
        return int(rng.choice((-1, 1)))


class GridGoalTasks(TaskFamily[GridGoal]):
    """Dark-Room goal cell ``(x, y)``, one of ``size * size``; 80 % train / 20 % hold-out.

    With the default ``size=10`` this is the 80 / 20 split of the LRAM / AD papers.
    """

    def __init__(self, size: int = 10, holdout_fraction: float = 0.2, split_seed: int = SPLIT_SEED):
        if size < 2:
            raise ValueError(f"grid size must be >= 2, got {size!r}")
        self.size = size
        cells = [(x, y) for y in range(size) for x in range(size)]
        self._train, self._holdout = _split(cells, holdout_fraction, split_seed)

    def validate(self, task: object) -> GridGoal:
        x, y = _integers(task, 2, "Dark-Room task (goal x, y)")
        if not (0 <= x < self.size and 0 <= y < self.size):
            raise ValueError(
                f"Dark-Room task (goal x, y) {task!r} is outside the {self.size}x{self.size} grid"
            )
        return (x, y)

    def train_tasks(self) -> tuple[GridGoal, ...]:
        return self._train

    def holdout_tasks(self) -> tuple[GridGoal, ...]:
        return self._holdout

    def _draw(self, rng: np.random.Generator) -> GridGoal:
        x, y = rng.integers(self.size, size=2)
        return (int(x), int(y))


class KeyDoorTasks(TaskFamily[KeyDoor]):
    """Dark Key-Door task ``(key_x, key_y, door_x, door_y)`` with key != door; 80 % / 20 % split.

    On a 10 x 10 grid there are 100 * 99 = 9,900 tasks: 7,920 train and 1,980 hold-out.
    """

    def __init__(self, size: int = 10, holdout_fraction: float = 0.2, split_seed: int = SPLIT_SEED):
        if size < 2:
            raise ValueError(f"grid size must be >= 2, got {size!r}")
        self.size = size
        self._split_args = (holdout_fraction, split_seed)

    @functools.cached_property
    def _splits(self) -> tuple[tuple[KeyDoor, ...], tuple[KeyDoor, ...]]:
        # Built on first use: 9,900 pairs take ~25 ms, which every env construction would pay.
        cells = [(x, y) for y in range(self.size) for x in range(self.size)]
        pairs = [key + door for key in cells for door in cells if key != door]
        return _split(pairs, *self._split_args)

    def validate(self, task: object) -> KeyDoor:
        kx, ky, dx, dy = _integers(task, 4, "Key-Door task (key x, y, door x, y)")
        if not all(0 <= v < self.size for v in (kx, ky, dx, dy)):
            raise ValueError(f"Key-Door task {task!r} is outside the {self.size}x{self.size} grid")
        if (kx, ky) == (dx, dy):
            raise ValueError(f"Key-Door task {task!r} puts the key on the door")
        return (kx, ky, dx, dy)

    def train_tasks(self) -> tuple[KeyDoor, ...]:
        return self._splits[0]

    def holdout_tasks(self) -> tuple[KeyDoor, ...]:
        return self._splits[1]

    def _draw(self, rng: np.random.Generator) -> KeyDoor:
        cells = self.size * self.size
        key = int(rng.integers(cells))
        door = int(rng.integers(cells - 1))
        door += door >= key  # uniform over the cells other than the key
        return (key % self.size, key // self.size, door % self.size, door // self.size)


# --------------------------------------------------------------------------- continuous families


class _SampledSplitTasks(TaskFamily[TaskT]):
    """A continuous family whose train / hold-out tasks are i.i.d. draws from a fixed seed."""

    def __init__(self, n_train: int, n_holdout: int, split_seed: int = SPLIT_SEED):
        if n_train < 0 or n_holdout < 0:
            raise ValueError(f"task counts must be >= 0, got n_train={n_train!r}, n_holdout={n_holdout!r}")
        rng = np.random.default_rng(split_seed)
        tasks = tuple(self._draw(rng) for _ in range(n_train + n_holdout))
        self._train, self._holdout = tasks[:n_train], tasks[n_train:]

    def train_tasks(self) -> tuple[TaskT, ...]:
        return self._train

    def holdout_tasks(self) -> tuple[TaskT, ...]:
        return self._holdout


class ReacherGoalTasks(_SampledSplitTasks[tuple[float, float]]):
    """Reacher-Goal target ``(x, y)`` uniform in the disc of radius 0.2 (Reacher-v5's target law).

    Split: 70 train tasks (the paper's count) and 20 hold-out tasks.
    """

    radius = 0.2

    def __init__(self, n_train: int = 70, n_holdout: int = 20, split_seed: int = SPLIT_SEED):
        super().__init__(n_train, n_holdout, split_seed)

    def validate(self, task: object) -> tuple[float, float]:
        x, y = _numbers(task, 2, "Reacher-Goal task (target x, y)")
        if math.hypot(x, y) > self.radius:
            raise ValueError(
                f"Reacher-Goal task (target x, y) {task!r} is outside the circle of radius {self.radius}"
            )
        return (x, y)

    def _draw(self, rng: np.random.Generator) -> tuple[float, float]:
        while True:  # rejection sampling, as Reacher-v5 does: uniform in the disc
            x, y = rng.uniform(-self.radius, self.radius, size=2)
            if math.hypot(x, y) < self.radius:
                return (float(x), float(y))


class PusherGoalTasks(_SampledSplitTasks[tuple[float, float, float, float]]):
    """Pusher-Goal task ``(cylinder_x, cylinder_y, goal_x, goal_y)`` in world coordinates (metres).

    The cylinder starts where Pusher-v5 puts it (x in [0.25, 0.65], y in [-0.35, -0.05]); Pusher-v5
    keeps the goal fixed at (0.45, -0.05), here it is uniform in x in [0.25, 0.65], y in [-0.15, 0.15].
    Like Pusher-v5, the cylinder starts at least 0.17 from the goal. Only the goal is hidden: the
    cylinder's position is part of every observation. Split: 35 train (the paper's count), 10 hold-out.
    """

    cylinder_box = ((0.25, 0.65), (-0.35, -0.05))
    goal_box = ((0.25, 0.65), (-0.15, 0.15))
    min_separation = 0.17

    def __init__(self, n_train: int = 35, n_holdout: int = 10, split_seed: int = SPLIT_SEED):
        super().__init__(n_train, n_holdout, split_seed)

    def validate(self, task: object) -> tuple[float, float, float, float]:
        cx, cy, gx, gy = _numbers(task, 4, "Pusher-Goal task (cylinder x, y, goal x, y)")
        for name, (px, py), ((x0, x1), (y0, y1)) in (
            ("cylinder", (cx, cy), self.cylinder_box),
            ("goal", (gx, gy), self.goal_box),
        ):
            if not (x0 <= px <= x1 and y0 <= py <= y1):
                raise ValueError(
                    f"Pusher-Goal task {task!r}: {name} ({px}, {py}) is outside "
                    f"x in [{x0}, {x1}], y in [{y0}, {y1}]"
                )
        if math.hypot(cx - gx, cy - gy) < self.min_separation:
            raise ValueError(
                f"Pusher-Goal task {task!r}: the cylinder starts closer than "
                f"{self.min_separation} to the goal"
            )
        return (cx, cy, gx, gy)

    def _draw(self, rng: np.random.Generator) -> tuple[float, float, float, float]:
        (gx0, gx1), (gy0, gy1) = self.goal_box
        gx, gy = rng.uniform(gx0, gx1), rng.uniform(gy0, gy1)
        (cx0, cx1), (cy0, cy1) = self.cylinder_box
        while True:  # rejection sampling, as Pusher-v5 does for the cylinder
            cx, cy = rng.uniform(cx0, cx1), rng.uniform(cy0, cy1)
            if math.hypot(cx - gx, cy - gy) > self.min_separation:
                return (float(cx), float(cy), float(gx), float(gy))


class _IntervalTasks(_SampledSplitTasks[float]):
    """A scalar task uniform on ``[low, high]`` (``high`` excluded when ``closed`` is False)."""

    low: float
    high: float
    closed: bool = True
    what: str

    def validate(self, task: object) -> float:
        (value,) = _numbers(task, 1, self.what)
        inside = self.low <= value <= self.high if self.closed else self.low <= value < self.high
        if not inside:
            bracket = "]" if self.closed else ")"
            raise ValueError(f"{self.what} {task!r} is outside [{self.low}, {self.high}{bracket}")
        return value

    def _draw(self, rng: np.random.Generator) -> float:
        return float(rng.uniform(self.low, self.high))


class HalfCheetahVelTasks(_IntervalTasks):
    """HalfCheetah-Vel target velocity v* ~ U[0, 3] (m/s). Split: 15 train (the paper's), 10 hold-out."""

    low, high, what = 0.0, 3.0, "HalfCheetah-Vel task (target velocity)"

    def __init__(self, n_train: int = 15, n_holdout: int = 10, split_seed: int = SPLIT_SEED):
        super().__init__(n_train, n_holdout, split_seed)


class AntDirTasks(_IntervalTasks):
    """Ant-Dir direction theta ~ U[0, 2 pi) (radians, 0 = +x). Split: 30 train, 30 hold-out (the paper's)."""

    low, high, closed, what = 0.0, 2 * math.pi, False, "Ant-Dir task (direction in radians)"

    def __init__(self, n_train: int = 30, n_holdout: int = 30, split_seed: int = SPLIT_SEED):
        super().__init__(n_train, n_holdout, split_seed)


# --------------------------------------------------------------------------- per-environment state


class TaskSlot(Generic[TaskT]):
    """The hidden task of one environment instance and the rule by which ``reset`` chooses it.

    At every ``reset(seed=..., options=...)`` the task becomes:

    1. ``options["task"]`` when given (validated; it stays the task of later resets unless
       rule 3 applies);
    2. otherwise, when a task was pinned by the constructor (``task=...``), the current task
       (pinned environments never draw a task themselves);
    3. otherwise a fresh draw from the environment's ``np_random`` (so ``reset(seed=s)`` is
       reproducible) at the first reset, at any reset that receives a seed, and at every reset of a
       ``per_episode`` family (T-Maze);
    4. otherwise the current task: meta-RL episodes on one task follow each other with plain
       ``reset()`` calls, as gymnasium's and SB3's vector environments make them.
    """

    def __init__(self, family: TaskFamily[TaskT], pinned: object | None = None):
        self.family = family
        self.pinned = pinned is not None
        self.current: TaskT | None = None if pinned is None else family.validate(pinned)

    def on_reset(self, requested: object | None, rng: np.random.Generator, seeded: bool) -> TaskT:
        """Choose the task of the episode that starts now (see the class docstring)."""
        if requested is not None:
            self.current = self.family.validate(requested)
        elif not self.pinned and (self.current is None or seeded or self.family.per_episode):
            self.current = self.family.sample(rng)
        assert self.current is not None
        return self.current
