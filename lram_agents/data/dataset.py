"""Reading trajectory files (format in :mod:`lram_agents.data.format`) with fast random access.

:class:`TrajectoryDataset` keeps only the episode table in memory (a few numbers per episode) and
reads steps on demand. Open files and their datasets are cached per process (safe across ``fork``:
a worker process reopens them), and the small per-step fields (actions, rewards, flags) of recently
used episodes are kept in memory whole, so a sub-sequence costs one HDF5 read (its observations).
"""

from __future__ import annotations

import json
import os
import resource
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import h5py
import numpy as np

from lram_agents.data.format import (
    EPISODE_FIELDS,
    FORMAT_NAME,
    FORMAT_VERSION,
    STEP_FIELDS,
    DatasetError,
    Episode,
    space_from_json,
)
from lram_agents.preprocessing import Preprocessing, reward_scale_for

# Reopening a file costs more than reading a 50-frame window from it (measured: ~2.8 vs ~1.8 ms), so
# keep as many open as the descriptor limit comfortably allows (a quarter of it, per process).
MAX_OPEN_FILES = min(4096, max(64, resource.getrlimit(resource.RLIMIT_NOFILE)[0] // 4))
CHUNK_CACHE_BYTES = 1 << 18  # per open file: a window reads each image chunk once, a big cache only costs memory
SMALL_FIELDS = ("actions", "rewards", "terminations", "truncations")


@dataclass
class EpisodeTable:
    """One row per episode: where it lives and what it belongs to (all arrays of length E)."""

    file: np.ndarray  # index into TrajectoryDataset.files
    row: np.ndarray  # the episode's row in its file's /episodes table
    offset: np.ndarray  # first row in the file's /steps
    length: np.ndarray
    total_return: np.ndarray
    task: np.ndarray  # str objects
    history_id: np.ndarray
    episode_index: np.ndarray

    def __len__(self) -> int:
        return len(self.length)

    def select(self, rows: np.ndarray) -> EpisodeTable:
        return EpisodeTable(*(getattr(self, name)[rows] for name in self.__dataclass_fields__))

    @staticmethod
    def concatenate(tables: list[EpisodeTable]) -> EpisodeTable:
        return EpisodeTable(*(np.concatenate([getattr(t, n) for t in tables]) for n in EpisodeTable.__dataclass_fields__))


class TrajectoryDataset:
    """The episodes of one or more trajectory files of the same environment (one domain).

    Args:
        paths: a directory (all ``*.h5`` files in it, sorted), a file, or a list of files/directories.
        domain: overrides the files' ``domain`` attribute (it selects the default reward scale).
        name: a readable name for error messages and metrics (default: the path).
        cache_steps: how many steps of small fields (actions, rewards, flags) to keep in memory per
            process (whole episodes, least recently used dropped first; 0: read them every time).

    Raises:
        DatasetError: no files, an unreadable (truncated, corrupted) or foreign file, files whose
            spaces disagree, or no episodes at all.
    """

    def __init__(self, paths: str | Path | Sequence[str | Path], domain: str | None = None, name: str | None = None,
                 cache_steps: int = 1 << 22):
        self.files = find_trajectory_files(paths)
        self.name = name or (str(paths) if isinstance(paths, (str, Path)) else f"{len(self.files)} files")
        headers = [_read_header(path, i) for i, path in enumerate(self.files)]
        first = headers[0]
        for header in headers[1:]:
            _check_same_spaces(first, header)
        self.observation_space: gym.Space = first.observation_space
        self.action_space: gym.Space = first.action_space
        self.env_id: str = first.env_id
        self.domain: str = domain if domain is not None else first.domain
        self.table = EpisodeTable.concatenate([h.table for h in headers])
        if len(self.table) == 0:
            raise DatasetError(f"dataset {self.name} holds no episodes ({len(self.files)} file(s))")
        self.cache_steps = cache_steps
        self._handles, self._small = _FileCache(), _EpisodeCache(cache_steps)

    # ---- views -------------------------------------------------------------------------------------
    def subset(self, episodes: np.ndarray, name: str | None = None) -> TrajectoryDataset:
        """A dataset of the given episode rows only (shares the files; e.g. a validation split)."""
        episodes = np.asarray(episodes)
        if episodes.size == 0:
            raise DatasetError(f"a subset of {self.name} must keep at least one episode")
        view = object.__new__(TrajectoryDataset)
        view.__dict__.update(self.__dict__)
        view.table = self.table.select(episodes)
        view.name = name or f"{self.name}[subset of {episodes.size}]"
        view._handles, view._small = _FileCache(), _EpisodeCache(self.cache_steps)
        return view

    def split(self, validation_fraction: float, seed: int = 0) -> tuple[TrajectoryDataset, TrajectoryDataset]:
        """(train, validation) datasets; whole learning histories (or episodes) go to one side."""
        if not 0.0 < validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
        groups = self.histories()
        if len(groups) < 2:
            raise DatasetError(f"dataset {self.name} has {len(groups)} episode/history; a validation split needs at least 2")
        order = np.random.default_rng(seed).permutation(len(groups))
        n_val = min(len(groups) - 1, max(1, round(validation_fraction * len(groups))))
        pick = lambda ids: np.sort(np.concatenate([groups[i] for i in ids]))  # noqa: E731
        return (self.subset(pick(order[n_val:]), f"{self.name}[train]"), self.subset(pick(order[:n_val]), f"{self.name}[validation]"))

    def histories(self) -> list[np.ndarray]:
        """Episode rows grouped by learning history, each ordered by ``episode_index``.

        Episodes without a history (``history_id == -1``) form a history of their own.
        """
        t = self.table
        groups: list[np.ndarray] = [np.array([i]) for i in np.flatnonzero(t.history_id < 0)]
        for history in np.unique(t.history_id[t.history_id >= 0]):
            rows = np.flatnonzero(t.history_id == history)
            rows = rows[np.argsort(t.episode_index[rows], kind="stable")]
            order = t.episode_index[rows]
            dup = order[1:][order[1:] == order[:-1]]
            if dup.size:
                raise DatasetError(f"dataset {self.name}: history {history} has two episodes with episode_index {dup[0]}")
            groups.append(rows)
        return groups

    # ---- facts ---------------------------------------------------------------------------------------
    @property
    def num_episodes(self) -> int:
        return len(self.table)

    @property
    def num_steps(self) -> int:
        return int(self.table.length.sum())

    @property
    def is_image(self) -> bool:
        return self.observation_space.dtype == np.uint8 and len(self.observation_space.shape) == 3

    def preprocessing(self) -> Preprocessing:
        """LRAM's defaults: the domain's reward scale, target return = the best episode return."""
        return Preprocessing(reward_scale=reward_scale_for(self.domain), target_return=float(self.table.total_return.max()))

    def __repr__(self) -> str:
        return (f"TrajectoryDataset({self.name!r}, domain={self.domain!r}, episodes={self.num_episodes}, steps={self.num_steps}, "
                f"observation_space={self.observation_space}, action_space={self.action_space})")

    # ---- reading -------------------------------------------------------------------------------------
    def read(self, episode: int, field: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows ``start:stop`` of one step field (see ``STEP_FIELDS``) of episode row ``episode``."""
        t = self.table
        length = int(t.length[episode])
        stop = length if stop is None else stop
        if not 0 <= start <= stop <= length:
            raise IndexError(f"steps {start}:{stop} are outside episode {episode} of length {length}")
        if field in SMALL_FIELDS and self.cache_steps > 0:
            return self._small.get(episode, field, lambda: self._read_episode_field(episode, field))[start:stop]
        base = int(t.offset[episode])
        return self._read(int(t.file[episode]), f"steps/{field}", slice(base + start, base + stop))

    def _read_episode_field(self, episode: int, field: str) -> np.ndarray:
        base = int(self.table.offset[episode])
        return self._read(int(self.table.file[episode]), f"steps/{field}", slice(base, base + int(self.table.length[episode])))

    def final_observation(self, episode: int) -> np.ndarray:
        """s_T, the observation after the episode's last action."""
        row = int(self.table.row[episode])
        return self._read(int(self.table.file[episode]), "episodes/final_observation", slice(row, row + 1))[0]

    def episode(self, episode: int) -> Episode:
        """The whole episode (with its final observation) as an :class:`Episode`."""
        t = self.table
        observations = np.concatenate([self.read(episode, "observations"), self.final_observation(episode)[None]])
        steps = {name: self.read(episode, name) for name in STEP_FIELDS if name != "observations"}
        return Episode(observations, task=str(t.task[episode]), history_id=int(t.history_id[episode]),
                       episode_index=int(t.episode_index[episode]), **steps)

    def _read(self, file_index: int, key: str, rows: slice) -> np.ndarray:
        path = self.files[file_index]
        try:
            return self._handles.dataset(path, key)[rows]
        except (OSError, KeyError, ValueError) as err:
            raise DatasetError(f"cannot read {key} rows {rows.start}:{rows.stop} of {path} (truncated or corrupted?): {err}") from None

    def close(self) -> None:
        self._handles.close()

    def __getstate__(self):  # worker processes reopen files themselves
        state = dict(self.__dict__)
        state["_handles"] = state["_small"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._handles, self._small = _FileCache(), _EpisodeCache(self.cache_steps)


def find_trajectory_files(paths: str | Path | Sequence[str | Path]) -> list[Path]:
    """The ``.h5`` files named by ``paths`` (directories are searched, not recursively)."""
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    files: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            files += sorted(p for p in item.iterdir() if p.suffix in (".h5", ".hdf5") and not p.name.startswith("."))
        elif item.is_file():
            files.append(item)
        else:
            raise DatasetError(f"trajectory path {item} does not exist")
    if not files:
        raise DatasetError(f"no trajectory files (*.h5) found in {', '.join(map(str, items))}: the dataset is empty")
    return files


@dataclass
class _Header:
    path: Path
    observation_space: gym.Space
    action_space: gym.Space
    domain: str
    env_id: str
    table: EpisodeTable


def _read_header(path: Path, file_index: int) -> _Header:
    try:
        with h5py.File(path, "r") as f:
            return _parse_header(f, path, file_index)
    except DatasetError:
        raise
    except (OSError, KeyError, ValueError, json.JSONDecodeError) as err:
        raise DatasetError(f"{path} is not a readable trajectory file (truncated or corrupted?): {err}") from None


def _parse_header(f: h5py.File, path: Path, file_index: int) -> _Header:
    if f.attrs.get("format") != FORMAT_NAME:
        raise DatasetError(f"{path} is an HDF5 file but not an lram_agents trajectory file (attribute format={f.attrs.get('format')!r})")
    version = int(f.attrs.get("format_version", -1))
    if version > FORMAT_VERSION or version < 1:
        raise DatasetError(f"{path} has trajectory format version {version}; this library reads versions 1..{FORMAT_VERSION}")
    missing = [f"steps/{n}" for n in STEP_FIELDS if f"steps/{n}" not in f] + [f"episodes/{n}" for n in EPISODE_FIELDS if f"episodes/{n}" not in f]
    if missing:
        raise DatasetError(f"{path} is missing {missing}")
    obs_space = space_from_json(json.loads(f.attrs["observation_space"]))
    act_space = space_from_json(json.loads(f.attrs["action_space"]))
    e = {name: f[f"episodes/{name}"][()] for name in EPISODE_FIELDS if name != "final_observation"}
    count = len(e["length"])
    table = EpisodeTable(np.full(count, file_index, dtype=np.int32), np.arange(count), e["offset"].astype(np.int64), e["length"].astype(np.int64),
                         e["return"].astype(np.float64), np.array([_text(s) for s in e["task"]], dtype=object),
                         e["history_id"].astype(np.int64), e["episode_index"].astype(np.int64))
    _check_consistent(f, path, table, obs_space)
    return _Header(path, obs_space, act_space, _text(f.attrs.get("domain", "")), _text(f.attrs.get("env_id", "")), table)


def _check_consistent(f: h5py.File, path: Path, table: EpisodeTable, obs_space: gym.Space) -> None:
    steps = int(f["steps/rewards"].shape[0])
    for name in STEP_FIELDS:
        if f[f"steps/{name}"].shape[0] != steps:
            raise DatasetError(f"{path}: steps/{name} has {f[f'steps/{name}'].shape[0]} rows, steps/rewards has {steps}")
    if tuple(f["steps/observations"].shape[1:]) != tuple(obs_space.shape):
        raise DatasetError(f"{path}: observations of shape {f['steps/observations'].shape[1:]} do not match the stored space {obs_space}")
    if len(table) and (np.any(table.length < 1) or table.offset[0] != 0 or np.any(table.offset[1:] != np.cumsum(table.length)[:-1])
                       or table.length.sum() != steps):
        raise DatasetError(f"{path}: the episode table (offset/length) does not tile the {steps} stored steps")


def _check_same_spaces(a: _Header, b: _Header) -> None:
    for name in ("observation_space", "action_space"):
        if getattr(a, name) != getattr(b, name):
            raise DatasetError(f"{b.path} has {name} {getattr(b, name)}, but {a.path} has {getattr(a, name)}: "
                               "a dataset holds one environment's spaces (use one TrajectoryDataset per domain)")


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _FileCache:
    """Open HDF5 files (and their datasets) of this process, least recently used closed first."""

    def __init__(self, capacity: int = MAX_OPEN_FILES):
        self.capacity = capacity
        self.pid = os.getpid()
        self.files: OrderedDict[Path, tuple[h5py.File, dict[str, h5py.Dataset]]] = OrderedDict()

    def dataset(self, path: Path, key: str) -> h5py.Dataset:
        if self.pid != os.getpid():  # forked: handles of the parent must not be used here
            self.files, self.pid = OrderedDict(), os.getpid()
        entry = self.files.get(path)
        if entry is None:
            entry = (h5py.File(path, "r", rdcc_nbytes=CHUNK_CACHE_BYTES), {})
            self.files[path] = entry
            while len(self.files) > self.capacity:
                self.files.popitem(last=False)[1][0].close()
        self.files.move_to_end(path)
        handle, datasets = entry
        if key not in datasets:
            datasets[key] = handle[key]
        return datasets[key]

    def close(self) -> None:
        for handle, _ in self.files.values():
            handle.close()
        self.files.clear()


class _EpisodeCache:
    """Whole small per-step arrays of recently used episodes, up to ``capacity`` steps in total."""

    def __init__(self, capacity: int):
        self.capacity, self.size = capacity, 0
        self.arrays: OrderedDict[tuple[int, str], np.ndarray] = OrderedDict()

    def get(self, episode: int, field: str, load) -> np.ndarray:
        key = (episode, field)
        array = self.arrays.get(key)
        if array is None:
            array = load()
            self.arrays[key] = array
            self.size += len(array)
            while self.size > self.capacity and len(self.arrays) > 1:
                self.size -= len(self.arrays.popitem(last=False)[1])
        self.arrays.move_to_end(key)
        return array
