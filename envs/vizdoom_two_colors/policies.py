"""Reference policies for ViZDoom-Two-Colors: a random one and a scripted "memory" one.

Both follow the same small protocol, so a data-collection loop treats them alike::

    obs, info = env.reset(seed=0)
    policy.reset(obs, info)
    while True:
        obs, reward, terminated, truncated, info = env.step(policy.act(obs, info))
        if terminated or truncated: break
"""

from __future__ import annotations

import math

import numpy as np

from .env import OBS_WIDTH, ViZDoomTwoColorsEnv
from .scenario import COLORS

__all__ = ["RandomPolicy", "ScriptedMemoryPolicy", "detect_pillar_color", "other_color"]

TURN_LEFT, TURN_RIGHT, FORWARD, LEFT_FORWARD, RIGHT_FORWARD = range(5)


def other_color(color: str) -> str:
    """The colour that is not ``color``."""
    if color not in COLORS:
        raise ValueError(f"color must be one of {COLORS}, got {color!r}")
    return COLORS[1 - COLORS.index(color)]


def detect_pillar_color(obs: np.ndarray) -> str:
    """Read the pillar's colour from an observation ``(3, 64, 112)`` taken while it stands.

    The pillar stands in the centre columns of the first frames and reaches the ceiling.
    Items of both colours are lower than the player's eyes, so they never appear above the
    horizon: only the upper half of a central band is counted (a tie reads as red).
    """
    obs = np.asarray(obs)
    if obs.ndim != 3 or obs.shape[0] != 3:
        raise ValueError(f"obs must be a (3, H, W) RGB array, got shape {obs.shape}")
    mid = obs.shape[2] // 2
    band = obs[:, : obs.shape[1] // 2, mid - OBS_WIDTH // 16 : mid + OBS_WIDTH // 16].astype(np.int16)
    r, g, b = band
    red = np.count_nonzero((r > 100) & (r > 2 * g) & (r > 2 * b))
    green = np.count_nonzero((g > 100) & (g > 2 * r) & (g > 2 * b))
    return "red" if red >= green else "green"


class RandomPolicy:
    """Uniformly random actions, seeded (the RATE paper's RANDOM baseline)."""

    def __init__(self, n_actions: int = 5, seed: int | None = None):
        if n_actions < 1:
            raise ValueError(f"n_actions must be >= 1, got {n_actions}")
        self.n_actions = n_actions
        self.rng = np.random.default_rng(seed)

    def reset(self, obs=None, info=None) -> None:
        """Nothing to remember."""

    def act(self, obs=None, info=None) -> int:
        return int(self.rng.integers(self.n_actions))


class ScriptedMemoryPolicy:
    """Remembers a colour, then walks to the items of that colour, steering clear of the others.

    At :meth:`reset` it reads the pillar's colour from the first observation, or takes the
    ``color`` it is told (pass the wrong one to measure what forgetting costs). Each step it
    reads the room from ViZDoom's objects information (:meth:`ViZDoomTwoColorsEnv.scene`,
    which also lists items behind the player), picks the item of its colour that is cheapest
    to reach -- distance, plus ``turn_cost`` per degree to turn, plus ``avoid_penalty`` for
    every item of the other colour near the straight path -- and heads for it, passing the
    first other-coloured item in the way at ``clearance`` (a pickup happens when the
    bounding boxes of player and item, 16 + 16 units from their centres, touch).

    Args:
        env: the environment (wrapped or not) the policy acts in.
        avoid_penalty: extra cost, in map units, per other-coloured item near the path.
        clearance: distance (map units) at which other-coloured items are passed.
        lookahead: how far ahead (map units) an item in the way makes the policy swerve.
        switch_margin: how much cheaper (map units) another item must be to change target.
        turn_cost: cost (map units) per degree the player must turn to face an item (turning
            round takes ~50 tics, in which the player walks ~400 units; a lower weight did
            as well or better over 20 seeds).
    """

    def __init__(
        self,
        env,
        avoid_penalty: float = 400.0,
        clearance: float = 48.0,
        lookahead: float = 160.0,
        switch_margin: float = 50.0,
        turn_cost: float = 0.7,
    ):
        self.env = env.unwrapped
        if not isinstance(self.env, ViZDoomTwoColorsEnv):
            raise TypeError(f"env must be a ViZDoomTwoColorsEnv, got {type(self.env).__name__}")
        for name, value in (("avoid_penalty", avoid_penalty), ("clearance", clearance),
                            ("lookahead", lookahead), ("switch_margin", switch_margin), ("turn_cost", turn_cost)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        self.avoid_penalty = float(avoid_penalty)
        self.clearance = float(clearance)
        self.lookahead = float(lookahead)
        self.switch_margin = float(switch_margin)
        self.turn_cost = float(turn_cost)
        self.color: str | None = None
        self._target: np.ndarray | None = None

    def reset(self, obs, info=None, color: str | None = None) -> None:
        """Remember ``color``, or the pillar's colour as seen in ``obs`` when ``color`` is None."""
        if color is not None and color not in COLORS:
            raise ValueError(f"color must be None or one of {COLORS}, got {color!r}")
        self.color = color if color is not None else detect_pillar_color(obs)
        self._target = None

    def act(self, obs=None, info=None) -> int:
        if self.color is None:
            raise RuntimeError("call reset(obs, info) before act()")
        scene = self.env.scene()
        here = np.array([scene.x, scene.y])
        mine = scene.item_color == self.color
        if not mine.any():
            return TURN_LEFT  # nothing of our colour in the room: look around
        targets, others = scene.item_xy[mine], scene.item_xy[~mine]
        target = self._choose_target(here, scene.angle, targets, others)
        heading = self._heading(here, target, others)
        return self._steer(scene.angle, heading, float(np.linalg.norm(target - here)))

    def _choose_target(self, here: np.ndarray, angle: float, targets: np.ndarray, others: np.ndarray) -> np.ndarray:
        rel = targets - here
        bearing = np.degrees(np.arctan2(rel[:, 1], rel[:, 0]))
        turn = np.abs((bearing - angle + 180.0) % 360.0 - 180.0)
        cost = np.linalg.norm(rel, axis=1) + self.turn_cost * turn
        if len(others):
            cost = cost + self.avoid_penalty * _count_near_segments(here, targets, others, self.clearance)
        best = int(np.argmin(cost))
        # Keep the current target unless another is clearly cheaper: costs of far items
        # cross often as the player moves, and flipping between them wastes the walk.
        if self._target is not None:
            same = np.all(np.abs(targets - self._target) < 1e-3, axis=1)
            if same.any() and cost[int(np.argmax(same))] <= cost[best] + self.switch_margin:
                best = int(np.argmax(same))
        self._target = targets[best]
        return self._target

    def _heading(self, here: np.ndarray, target: np.ndarray, others: np.ndarray) -> float:
        """Direction to walk (degrees): towards ``target``, or past the first item in the way."""
        to_target = target - here
        distance = max(float(np.linalg.norm(to_target)), 1e-6)
        unit = to_target / distance
        rel = others - here
        along = rel @ unit
        side = unit[0] * rel[:, 1] - unit[1] * rel[:, 0]  # > 0: the item is left of the path
        in_way = (along > 0) & (along < min(distance, self.lookahead)) & (np.abs(side) < self.clearance)
        if not in_way.any():
            return math.degrees(math.atan2(to_target[1], to_target[0]))
        i = int(np.argmin(np.where(in_way, along, np.inf)))
        bearing = math.atan2(rel[i, 1], rel[i, 0])
        swerve = math.asin(min(1.0, self.clearance / max(float(np.linalg.norm(rel[i])), 1e-6)))
        return math.degrees(bearing - swerve if side[i] > 0 else bearing + swerve)

    @staticmethod
    def _steer(angle: float, heading: float, distance: float) -> int:
        error = (heading - angle + 180.0) % 360.0 - 180.0  # > 0: turn left
        # Walk straight when the item's body (radius 16) is ahead; Doom's momentum makes
        # turning while walking orbit a near item, so near items are faced first, in place.
        tolerance = min(max(math.degrees(math.atan2(12.0, distance)), 5.0), 30.0)
        if abs(error) <= tolerance:
            return FORWARD
        if abs(error) <= 45.0 and distance > 128.0:
            return LEFT_FORWARD if error > 0 else RIGHT_FORWARD
        return TURN_LEFT if error > 0 else TURN_RIGHT


def _count_near_segments(start: np.ndarray, ends: np.ndarray, points: np.ndarray, radius: float) -> np.ndarray:
    """For each segment ``start -> ends[i]``, how many ``points`` lie within ``radius`` of it."""
    direction = ends - start  # (T, 2)
    length2 = np.maximum((direction ** 2).sum(axis=1), 1e-9)  # (T,)
    rel = points[None, :, :] - start  # (1, P, 2)
    t = np.clip((rel * direction[:, None, :]).sum(axis=2) / length2[:, None], 0.0, 1.0)  # (T, P)
    nearest = start + t[..., None] * direction[:, None, :]  # (T, P, 2)
    dist = np.linalg.norm(points[None, :, :] - nearest, axis=2)
    return (dist < radius).sum(axis=1)
