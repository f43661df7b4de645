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

from .env import OBS_WIDTH, Scene, ViZDoomTwoColorsEnv
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
    horizon: only the upper half of a central band is counted.
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
    to reach -- distance plus a penalty for every item of the other colour near the straight
    path -- and turns or walks towards it.

    Args:
        env: the environment (wrapped or not) the policy acts in.
        avoid_penalty: extra cost, in map units, per other-coloured item on the way.
        clearance: how near the path (map units) an other-coloured item counts as on the way;
            a pickup happens when the player's and the item's radii (16 + 16) touch.
    """

    def __init__(self, env, avoid_penalty: float = 400.0, clearance: float = 40.0):
        self.env = env.unwrapped
        if not isinstance(self.env, ViZDoomTwoColorsEnv):
            raise TypeError(f"env must be a ViZDoomTwoColorsEnv, got {type(self.env).__name__}")
        if avoid_penalty < 0 or clearance < 0:
            raise ValueError(f"avoid_penalty and clearance must be >= 0, got {avoid_penalty}, {clearance}")
        self.avoid_penalty = float(avoid_penalty)
        self.clearance = float(clearance)
        self.color: str | None = None

    def reset(self, obs, info=None, color: str | None = None) -> None:
        """Remember ``color``, or the pillar's colour as seen in ``obs`` when ``color`` is None."""
        if color is not None and color not in COLORS:
            raise ValueError(f"color must be None or one of {COLORS}, got {color!r}")
        self.color = color if color is not None else detect_pillar_color(obs)

    def act(self, obs=None, info=None) -> int:
        if self.color is None:
            raise RuntimeError("call reset(obs, info) before act()")
        scene = self.env.scene()
        target = self._choose_target(scene)
        if target is None:
            return TURN_LEFT  # nothing of our colour in the room: look around
        return self._steer(scene, target)

    def _choose_target(self, scene: Scene) -> np.ndarray | None:
        mine = scene.item_color == self.color
        if not mine.any():
            return None
        here = np.array([scene.x, scene.y])
        targets, others = scene.item_xy[mine], scene.item_xy[~mine]
        cost = np.linalg.norm(targets - here, axis=1)
        if len(others):
            cost = cost + self.avoid_penalty * _count_near_segments(here, targets, others, self.clearance)
        return targets[int(np.argmin(cost))]

    def _steer(self, scene: Scene, target: np.ndarray) -> int:
        dx, dy = target[0] - scene.x, target[1] - scene.y
        distance = math.hypot(dx, dy)
        error = (math.degrees(math.atan2(dy, dx)) - scene.angle + 180.0) % 360.0 - 180.0  # > 0: left
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
