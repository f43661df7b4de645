"""The Two-Colors scenario, written by this project: a PWAD built from text lumps.

What goes into the WAD (all generated here or read from ``lumps/`` beside this file):

- ``MAPINFO`` and ``DECORATE`` (text templates in ``lumps/``): the two levels, the pillar,
  the four item actors and the two item spawners;
- ``MAP01`` / ``MAP02``: UDMF ``TEXTMAP`` of one square room, written by :func:`textmap`;
  the maps differ only in the pillar and spawner they place (MAP01 red, MAP02 green);
- sprites and textures: small PNGs drawn from code by :func:`art_lumps`.

No compiled lump (ACS, nodes) is needed: ZDoom builds the nodes of a UDMF map itself,
the timing lives in DECORATE states and the acid in the sector's ``damageamount``.
The WAD is built on first use into a cache directory, named by a hash of its bytes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import string
import struct
from pathlib import Path

import numpy as np

from .png import encode_png

__all__ = ["ScenarioConfig", "build_scenario", "cache_dir", "scenario_lumps", "textmap", "COLORS", "MAP_OF_COLOR"]

_LUMP_DIR = Path(__file__).with_name("lumps")

COLORS = ("red", "green")
MAP_OF_COLOR = {"red": "MAP01", "green": "MAP02"}

# DoomEdNums of the actors placed in the maps (free in Doom 2 / ZDoom's own range).
_EDNUM = {
    "red_pillar": 30101,
    "green_pillar": 30102,
    "red_spawner": 30111,
    "green_spawner": 30112,
}

# Geometry, in map units (a Doom player is 32 units wide, eyes 41 above the floor).
ROOM_HALF_SIZE = 512  # the room spans [-512, 512]^2; the pillar stands at the centre
ROOM_HEIGHT = 160
PLAYER_START = (-ROOM_HALF_SIZE // 2, 0)  # midway between the pillar and the west wall, facing east
SPAWN_MARGIN = 32  # items keep this far from the walls

# RGB colours of the painted objects; pure hues so they survive the 8-bit game palette.
RED = (230, 20, 20)
GREEN = (20, 220, 20)


@dataclasses.dataclass(frozen=True)
class ScenarioConfig:
    """Numbers of the scenario that end up inside the WAD.

    Defaults follow the authors' map (acid: 8 HP every 32 tics); the RATE paper's text says
    5/32 HP per tic, i.e. ``acid_damage=5``. See ``envs/vizdoom_two_colors/README.md``.
    """

    acid_damage: int = 8  # HP taken from the player on the acid floor ...
    acid_interval: int = 32  # ... once every this many tics
    pillar_tics: int = 45  # the pillar is removed after this many tics
    initial_items: int = 10  # items of each colour present at the start
    spawn_period: int = 30  # then one more item of each colour every this many tics
    heal: int = 25  # HP given by an item of the pillar's colour (capped at 100)
    harm: int = 25  # HP taken by an item of the other colour

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise TypeError(f"ScenarioConfig.{field.name} must be an int, got {value!r}")
        lower = {"acid_damage": 0, "acid_interval": 1, "pillar_tics": 2, "initial_items": 0,
                 "spawn_period": 1, "heal": 0, "harm": 0}
        for name, low in lower.items():
            if getattr(self, name) < low:
                raise ValueError(f"ScenarioConfig.{name} must be >= {low}, got {getattr(self, name)}")


def cache_dir() -> Path:
    """Where built scenarios live: ``$LRAM_AGENTS_HOME/vizdoom`` or ``~/.cache/lram_agents/vizdoom``."""
    home = os.environ.get("LRAM_AGENTS_HOME")
    root = Path(home) if home else Path.home() / ".cache" / "lram_agents"
    return root / "vizdoom"


def textmap(color: str, config: ScenarioConfig) -> str:
    """UDMF TEXTMAP of the room for a pillar of ``color`` ("red" or "green")."""
    if color not in COLORS:
        raise ValueError(f"color must be one of {COLORS}, got {color!r}")
    h = ROOM_HALF_SIZE
    # Clockwise corners: a linedef's front (right-hand) side then faces the room's inside.
    corners = [(-h, h), (h, h), (h, -h), (-h, -h)]
    lines = ['namespace = "zdoom";', ""]
    for x, y in corners:
        lines.append(f"vertex {{ x = {x:.1f}; y = {y:.1f}; }}")
    for i in range(4):
        lines.append(f"linedef {{ v1 = {i}; v2 = {(i + 1) % 4}; sidefront = {i}; blocking = true; }}")
    for _ in range(4):
        lines.append('sidedef { sector = 0; texturemiddle = "TCWALL"; }')
    lines.append(
        "sector { heightfloor = 0; heightceiling = %d; texturefloor = \"TCACID\"; "
        "textureceiling = \"TCCEIL\"; lightlevel = 224; damageamount = %d; damageinterval = %d; }"
        % (ROOM_HEIGHT, config.acid_damage, config.acid_interval)
    )
    every_skill = "skill1 = true; skill2 = true; skill3 = true; skill4 = true; skill5 = true; single = true;"
    things = [
        (PLAYER_START, 1),  # player 1 start, angle 0 = east, towards the pillar
        ((0, 0), _EDNUM[f"{color}_pillar"]),
        ((0, 0), _EDNUM[f"{color}_spawner"]),
    ]
    for (x, y), ednum in things:
        lines.append(f"thing {{ x = {x:.1f}; y = {y:.1f}; angle = 0; type = {ednum}; {every_skill} }}")
    return "\n".join(lines) + "\n"


def _template(name: str, **values) -> bytes:
    text = (_LUMP_DIR / name).read_text()
    return string.Template(text).substitute(**values).encode()


def _decorate(config: ScenarioConfig) -> bytes:
    return _template(
        "DECORATE.txt",
        pillar_tics=config.pillar_tics,
        pillar_rest_tics=config.pillar_tics - 1,
        heal=config.heal,
        harm=config.harm,
        initial_items=config.initial_items,
        spawn_period=config.spawn_period,
        spawn_extent=ROOM_HALF_SIZE - SPAWN_MARGIN,
        **{f"ednum_{key}": value for key, value in _EDNUM.items()},
    )


# ---- art -----------------------------------------------------------------------------------

def _noise(shape: tuple[int, int], seed: int) -> np.ndarray:
    """Fixed pseudo-random texture detail in [-1, 1] (a seeded generator: same bytes every build)."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, size=shape)


def _solid(height: int, width: int, rgb, detail: float, seed: int) -> np.ndarray:
    base = np.array(rgb, np.float64)
    shade = 1.0 + detail * _noise((height, width), seed)[..., None]
    return np.clip(base * shade, 0, 255).astype(np.uint8)


def _wall() -> np.ndarray:
    """Grey blocks with dark seams, 64x128."""
    img = _solid(128, 64, (118, 118, 124), 0.08, seed=1).astype(np.int16)
    img[::32, :] -= 50  # horizontal seams every 32 px
    for row in range(0, 128, 32):  # staggered vertical seams, like brickwork
        col = 0 if (row // 32) % 2 == 0 else 32
        img[row:row + 32, col] -= 50
    return np.clip(img, 0, 255).astype(np.uint8)


def _pillar(rgb) -> np.ndarray:
    """A shaded column, 40 wide and 128 tall (RGBA), lit from the front."""
    width, height = 40, 128
    x = (np.arange(width) + 0.5) / width * 2.0 - 1.0
    light = 0.55 + 0.45 * np.sqrt(1.0 - x ** 2)  # cylinder shading
    rgb = np.array(rgb, np.float64)
    img = np.broadcast_to(light[None, :, None] * rgb, (height, width, 3))
    alpha = np.full((height, width, 1), 255.0)
    return np.concatenate([img, alpha], axis=2).astype(np.uint8)


def _orb(rgb) -> np.ndarray:
    """A shaded ball 32 px across (RGBA), transparent outside the disc."""
    size = 32
    y, x = (np.mgrid[0:size, 0:size] + 0.5) / size * 2.0 - 1.0
    r2 = x ** 2 + y ** 2
    inside = r2 <= 1.0
    light = 0.5 + 0.5 * np.sqrt(np.clip(1.0 - r2, 0.0, 1.0))
    img = light[..., None] * np.array(rgb, np.float64)
    alpha = np.where(inside, 255.0, 0.0)[..., None]
    return np.concatenate([img, alpha], axis=2).astype(np.uint8)


def art_lumps() -> dict[str, list[tuple[str, bytes]]]:
    """PNG lumps by WAD namespace: ``sprites`` (S_START..S_END) and ``textures`` (TX_START..TX_END)."""
    def sprite(img):
        return encode_png(img, offset=(img.shape[1] // 2, img.shape[0]))  # stands on the floor

    return {
        "sprites": [
            ("PLRDA0", sprite(_pillar(RED))),
            ("PLGRA0", sprite(_pillar(GREEN))),
            ("ITRDA0", sprite(_orb(RED))),
            ("ITGRA0", sprite(_orb(GREEN))),
        ],
        "textures": [
            ("TCWALL", encode_png(_wall())),
            ("TCACID", encode_png(_solid(64, 64, (84, 78, 96), 0.15, seed=2))),  # greyish violet
            ("TCCEIL", encode_png(_solid(64, 64, (70, 70, 70), 0.05, seed=3))),
        ],
    }


# ---- the WAD -------------------------------------------------------------------------------

def scenario_lumps(config: ScenarioConfig) -> list[tuple[str, bytes]]:
    """The ordered ``(name, data)`` lumps of the scenario WAD."""
    lumps = [("MAPINFO", _template("MAPINFO.txt")), ("DECORATE", _decorate(config))]
    for color in COLORS:
        lumps += [(MAP_OF_COLOR[color], b""), ("TEXTMAP", textmap(color, config).encode()), ("ENDMAP", b"")]
    art = art_lumps()
    lumps += [("S_START", b""), *art["sprites"], ("S_END", b"")]
    lumps += [("TX_START", b""), *art["textures"], ("TX_END", b"")]
    return lumps


def pack_wad(lumps: list[tuple[str, bytes]]) -> bytes:
    """A PWAD: 12-byte header, the lumps' data, then a directory of 16-byte entries."""
    header_size = 12
    data = bytearray()
    directory = bytearray()
    for name, payload in lumps:
        if len(name) > 8 or not name.isascii():
            raise ValueError(f"lump name must be at most 8 ASCII characters, got {name!r}")
        directory += struct.pack("<ii8s", header_size + len(data), len(payload), name.encode())
        data += payload
    header = struct.pack("<4sii", b"PWAD", len(lumps), header_size + len(data))
    return header + bytes(data) + bytes(directory)


def build_scenario(config: ScenarioConfig | None = None, directory: str | os.PathLike | None = None) -> Path:
    """Return the path of the scenario WAD for ``config``, building it on first use.

    The file is named by a hash of its content, so every config gets its own file and a
    changed generator never reuses a stale one; it is written to a temporary file and
    renamed, so concurrent builders never see a half-written WAD.
    """
    config = config or ScenarioConfig()
    wad = pack_wad(scenario_lumps(config))
    folder = Path(directory) if directory is not None else cache_dir()
    path = folder / f"two_colors-{hashlib.sha256(wad).hexdigest()[:16]}.wad"
    if path.is_file():
        return path
    from lram_agents.serialization import atomic_path

    with atomic_path(path) as tmp:  # concurrent makers each write whole files; the file honours the umask
        Path(tmp).write_bytes(wad)
    return path
