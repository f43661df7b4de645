"""``lram_agents/ViZDoomTwoColors-v0``: remember the pillar's colour, collect items of that colour.

The RATE paper's memory task (section 4.1; original by Sorokin et al., 2022) on this project's
own scenario (see :mod:`.scenario`). ViZDoom is imported lazily, so this module imports
without the ``vizdoom`` extra.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from .scenario import COLORS, MAP_OF_COLOR, ScenarioConfig, build_scenario, cache_dir

__all__ = ["ViZDoomTwoColorsEnv", "Scene", "ACTION_NAMES", "ITEM_COLOR"]

OBS_HEIGHT, OBS_WIDTH = 64, 112
# Buttons: TURN_LEFT, TURN_RIGHT, MOVE_FORWARD.
_BUTTONS_OF_ACTION = (
    (1, 0, 0),  # 0: turn left
    (0, 1, 0),  # 1: turn right
    (0, 0, 1),  # 2: forward
    (1, 0, 1),  # 3: left + forward
    (0, 1, 1),  # 4: right + forward
)
ACTION_NAMES = ("turn_left", "turn_right", "forward", "left_forward", "right_forward")

# Actor class -> colour of the item, as the scripted policy and the analysis tools see it.
ITEM_COLOR = {
    "TwoColorsRedGood": "red",
    "TwoColorsRedBad": "red",
    "TwoColorsGreenGood": "green",
    "TwoColorsGreenBad": "green",
}
_PILLARS = ("TwoColorsRedPillar", "TwoColorsGreenPillar")


class Scene(NamedTuple):
    """What ViZDoom knows about the room: the player's pose and every item on the floor."""

    x: float  # player position, map units (the room spans [-512, 512]^2)
    y: float
    angle: float  # player heading, degrees, counter-clockwise from east
    item_xy: np.ndarray  # (N, 2) float positions
    item_color: np.ndarray  # (N,) str, "red" or "green"
    pillar: bool  # whether the pillar still stands


def _import_vizdoom():
    try:
        import vizdoom
    except ImportError as error:  # pragma: no cover - depends on the install
        raise ImportError(
            "ViZDoomTwoColors needs the 'vizdoom' package: pip install 'lram_agents[vizdoom]'"
        ) from error
    return vizdoom


class _AreaResize:
    """Box-filter resize along one axis: each target pixel averages the source span it covers.

    Done with a cumulative sum (integral image) and gathers rather than a weight matrix: a
    BLAS matmul would be as short to write, but multi-threaded BLAS is ~20x slower on a
    loaded CPU than this single pass.
    """

    def __init__(self, n_in: int, n_out: int, axis: int):
        edges = np.linspace(0.0, n_in, n_out + 1)
        self.index = np.minimum(np.floor(edges).astype(np.intp), n_in)
        self.frac = (edges - self.index).astype(np.float32)
        self.pixel = np.minimum(self.index, n_in - 1)  # frac is 0 wherever index == n_in
        self.width = np.float32(n_in / n_out)
        self.axis = axis

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.moveaxis(x, self.axis, 0)
        integral = np.concatenate([np.zeros_like(x[:1]), np.cumsum(x, axis=0)])
        shape = (-1,) + (1,) * (x.ndim - 1)
        at_edges = integral[self.index] + self.frac.reshape(shape) * x[self.pixel]
        return np.moveaxis(np.diff(at_edges, axis=0) / self.width, 0, self.axis)


class ViZDoomTwoColorsEnv(gym.Env):
    """ViZDoom-Two-Colors (RATE, section 4.1) on a scenario this project builds itself.

    The player starts in a square room with an acid floor, facing a red or green pillar that
    vanishes after ``pillar_tics`` tics. Items of both colours lie on the floor and keep
    appearing. An item of the pillar's colour gives +``heal`` HP (capped at 100) and reward
    ``pickup_reward``; an item of the other colour takes ``harm`` HP. Every tic alive earns
    ``living_reward``. The episode terminates when the player dies; the registered id adds a
    time limit of 4200 agent steps. Health is never in the observation (and ViZDoom's damage /
    pickup screen flashes are turned off, since they too would tell right from wrong).

    Observation: RGB ``uint8`` array ``(3, 64, 112)``, the 256x144 screen box-filtered down.
    Actions ``Discrete(5)``: turn left, turn right, forward, left+forward, right+forward, each
    held for ``frame_skip`` tics.

    Args:
        pillar_color: "red" or "green" for a fixed task; ``None`` draws it per episode from
            ``self.np_random``. ``reset(options={"task": color})`` overrides both.
        acid_damage, acid_interval: the floor takes ``acid_damage`` HP every ``acid_interval``
            tics. Default 8 / 32 (the authors' map); the paper's text says 5 / 32.
        pillar_tics, initial_items, spawn_period, heal, harm: see :class:`ScenarioConfig`.
        frame_skip: tics per agent step (the paper: 2).
        living_reward: reward per tic alive (0.01); a step of ``frame_skip`` tics earns it
            ``frame_skip`` times.
        pickup_reward: reward per item of the pillar's colour (1.0).
        render_mode: ``None`` or ``"rgb_array"`` (the full 144x256 RGB frame).

    ``info`` carries ``pillar_color``, ``health``, ``good_items``, ``bad_items`` (counts of
    items picked up) and ``tics`` (game time) for analysis; none of it is in the observation.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 35}

    def __init__(
        self,
        pillar_color: str | None = None,
        acid_damage: int = 8,
        acid_interval: int = 32,
        pillar_tics: int = 45,
        initial_items: int = 10,
        spawn_period: int = 30,
        heal: int = 25,
        harm: int = 25,
        frame_skip: int = 2,
        living_reward: float = 0.01,
        pickup_reward: float = 1.0,
        render_mode: str | None = None,
    ):
        if pillar_color is not None and pillar_color not in COLORS:
            raise ValueError(f"pillar_color must be None or one of {COLORS}, got {pillar_color!r}")
        if not isinstance(frame_skip, (int, np.integer)) or frame_skip < 1:
            raise ValueError(f"frame_skip must be an int >= 1, got {frame_skip!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.scenario = ScenarioConfig(
            acid_damage=acid_damage, acid_interval=acid_interval, pillar_tics=pillar_tics,
            initial_items=initial_items, spawn_period=spawn_period, heal=heal, harm=harm,
        )
        self.pillar_color = pillar_color
        self.frame_skip = int(frame_skip)
        self.living_reward = float(living_reward)
        self.pickup_reward = float(pickup_reward)
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": 35 / self.frame_skip}  # Doom runs 35 tics/s
        self.observation_space = spaces.Box(0, 255, (3, OBS_HEIGHT, OBS_WIDTH), np.uint8)
        self.action_space = spaces.Discrete(len(_BUTTONS_OF_ACTION))

        self._vzd = _import_vizdoom()
        self._game = self._make_game(build_scenario(self.scenario))
        screen_h, screen_w = self._game.get_screen_height(), self._game.get_screen_width()
        self._resize_rows = _AreaResize(screen_h, OBS_HEIGHT, axis=1)
        self._resize_cols = _AreaResize(screen_w, OBS_WIDTH, axis=2)
        self._frame = np.zeros((3, screen_h, screen_w), np.uint8)
        self._color = COLORS[0]
        self._counts = (0, 0)

    # ---- ViZDoom ---------------------------------------------------------------------------

    def _make_game(self, wad: Path):
        vzd = self._vzd
        game = vzd.DoomGame()
        game.set_doom_scenario_path(str(wad))
        # ViZDoom writes its config file to the working directory by default: keep it in the cache.
        game.set_doom_config_path(str(cache_dir() / "_vizdoom.ini"))
        game.set_screen_resolution(vzd.ScreenResolution.RES_256X144)
        game.set_screen_format(vzd.ScreenFormat.CRCGCB)
        for setter in (game.set_render_hud, game.set_render_weapon, game.set_render_crosshair,
                       game.set_render_messages, game.set_render_screen_flashes,
                       game.set_render_particles, game.set_render_decals):
            setter(False)
        # A bad item counts as a "secret" (SECRETCOUNT, the env's counter of them), and ZDoom prints "A secret is
        # revealed!" on screen at each one whatever set_render_messages says: that would show the agent which items
        # were wrong, the very thing it must remember. The CVar is archived in the .ini, so set it on every start.
        game.add_game_args("+cl_showsecretmessage 0")
        game.set_window_visible(False)
        game.set_sound_enabled(False)
        game.set_objects_info_enabled(True)
        game.set_available_buttons([vzd.Button.TURN_LEFT, vzd.Button.TURN_RIGHT, vzd.Button.MOVE_FORWARD])
        game.set_doom_skill(3)  # skills 1 and 5 scale the damage the player takes
        game.set_mode(vzd.Mode.PLAYER)
        game.init()
        return game

    def _read_state(self) -> None:
        """Copy the screen (ViZDoom has none after death: the last one stays) and the counters."""
        state = self._game.get_state()
        if state is not None:
            self._frame = state.screen_buffer
        variable = self._vzd.GameVariable
        self._counts = tuple(int(self._game.get_game_variable(v)) for v in (variable.ITEMCOUNT, variable.SECRETCOUNT))

    def _observation(self) -> np.ndarray:
        small = self._resize_cols(self._resize_rows(self._frame.astype(np.float32)))  # (3, 64, 112)
        return np.clip(np.rint(small), 0, 255).astype(np.uint8)

    def _info(self) -> dict[str, Any]:
        return {
            "pillar_color": self._color,
            "health": float(self._game.get_game_variable(self._vzd.GameVariable.HEALTH)),
            "good_items": self._counts[0],
            "bad_items": self._counts[1],
            "tics": int(self._game.get_episode_time()),
        }

    # ---- Gymnasium API ---------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start an episode; ``options={"task": "red" | "green"}`` fixes the pillar's colour."""
        super().reset(seed=seed)
        task = (options or {}).get("task", self.pillar_color)
        if task is None:
            task = COLORS[int(self.np_random.integers(len(COLORS)))]
        if task not in COLORS:
            raise ValueError(f"options['task'] must be one of {COLORS}, got {task!r}")
        self._color = task
        self._game.set_seed(int(self.np_random.integers(2**31 - 1)))
        self._game.set_doom_map(MAP_OF_COLOR[task])
        self._game.new_episode()
        self._read_state()
        return self._observation(), self._info()

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"action must be an int in [0, {self.action_space.n}), got {action!r}")
        if self._game.is_episode_finished():
            raise RuntimeError("step() called after the episode ended; call reset() first")
        tics_before, good_before = self._game.get_episode_time(), self._counts[0]
        self._game.make_action(list(_BUTTONS_OF_ACTION[int(action)]), self.frame_skip)
        self._read_state()  # after death the last frame and counters stay
        tics = self._game.get_episode_time() - tics_before
        reward = self.living_reward * tics + self.pickup_reward * (self._counts[0] - good_before)
        terminated = self._game.is_episode_finished()
        return self._observation(), float(reward), terminated, False, self._info()

    def render(self):
        """The full-resolution frame ``(144, 256, 3)`` uint8 when ``render_mode="rgb_array"``."""
        if self.render_mode == "rgb_array":
            return np.ascontiguousarray(self._frame.transpose(1, 2, 0))
        return None

    def close(self):
        game = getattr(self, "_game", None)
        if game is not None:
            game.close()
            self._game = None

    # ---- for scripted policies and analysis ------------------------------------------------

    def scene(self) -> Scene:
        """Player pose, all items in the room and whether the pillar stands (ViZDoom's objects)."""
        state = self._game.get_state()
        if state is None:
            raise RuntimeError("scene() needs a running episode; call reset() first")
        player = next(o for o in state.objects if o.name == "DoomPlayer")
        items = [o for o in state.objects if o.name in ITEM_COLOR]
        xy = np.array([(o.position_x, o.position_y) for o in items], np.float64).reshape(-1, 2)
        color = np.array([ITEM_COLOR[o.name] for o in items], dtype=object)
        pillar = any(o.name in _PILLARS for o in state.objects)
        return Scene(player.position_x, player.position_y, player.angle, xy, color, pillar)
