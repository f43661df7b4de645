"""The episodes collected by online fine-tuning, on disk as trajectory files the moment they end.

Layout of the buffer's directory::

    rollout-0000000.h5               the episodes of one finished rollout (one file, written atomically)
    pending/rollout-0000001-0003.h5  an episode of the rollout in progress, written when it ended

Every finished episode is written at once (a kill loses only unfinished episodes); when a rollout
ends, its episodes are joined into one rollout file (fewer files to open when training) and the
pending files are removed. A buffer opened on a directory with pending files (a killed run) joins
them into their rollout file first, or drops them when that file was already written.

Training reads the newest rollout files holding at least ``capacity`` episodes (Online Decision
Transformer keeps the most recent trajectories).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import gymnasium as gym
import h5py
import numpy as np

from lram_agents.data.dataset import TrajectoryDataset
from lram_agents.data.format import Episode, write_episodes

logger = logging.getLogger(__name__)

_ROLLOUT = re.compile(r"^rollout-(\d{7})\.h5$")
_PENDING = re.compile(r"^rollout-(\d{7})-(\d{4})\.h5$")


class EpisodeBuffer:
    """Collected episodes of one online run (see the module docstring).

    Args:
        directory: created if missing; a killed run's pending episodes are recovered here.
        observation_space, action_space: the env's (single) spaces, stored in every file.
        capacity: train on the newest rollouts holding at least this many episodes.
        domain, env_id: stored in every file.
    """

    def __init__(self, directory: str | Path, observation_space: gym.Space, action_space: gym.Space, capacity: int = 1000,
                 domain: str = "", env_id: str = ""):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1 episode, got {capacity}")
        self.directory = Path(directory)
        self.pending_dir = self.directory / "pending"
        self.pending_dir.mkdir(parents=True, exist_ok=True)
        self.observation_space, self.action_space = observation_space, action_space
        self.capacity, self.domain, self.env_id = capacity, domain, env_id
        self._summaries: dict[Path, tuple[np.ndarray, np.ndarray]] = {}  # file -> (returns, lengths)
        self._current: list[Episode] = []
        self.recovered_episodes = self._recover()
        self.rollout_number = max((_number(p) for p in self.rollout_files()), default=-1) + 1

    # ---- writing -------------------------------------------------------------------------------------
    def add(self, episode: Episode) -> Path:
        """Write ``episode`` (a finished one) to disk now; it joins the rollout file at :meth:`end_rollout`."""
        path = self.pending_dir / f"rollout-{self.rollout_number:07d}-{len(self._current):04d}.h5"
        self._write(path, [episode])
        self._current.append(episode)
        return path

    def end_rollout(self) -> Path | None:
        """Join the rollout's episodes into one file and start the next rollout (None: it had none)."""
        episodes, self._current = self._current, []
        number, self.rollout_number = self.rollout_number, self.rollout_number + 1
        if not episodes:
            return None
        path = self._write(self.directory / f"rollout-{number:07d}.h5", episodes)
        self._remove_pending(number)
        return path

    def _write(self, path: Path, episodes: list[Episode]) -> Path:
        return write_episodes(path, episodes, self.observation_space, self.action_space, self.domain, self.env_id,
                              metadata={"source": "online fine-tuning"})

    # ---- reading -------------------------------------------------------------------------------------
    def rollout_files(self) -> list[Path]:
        """The finished rollouts' files, oldest first."""
        return sorted(p for p in self.directory.iterdir() if _ROLLOUT.match(p.name))

    def dataset(self) -> TrajectoryDataset | None:
        """The newest rollouts holding at least ``capacity`` episodes (None before the first one)."""
        chosen, count = [], 0
        for path in reversed(self.rollout_files()):
            chosen.append(path)
            count += len(self.summary(path)[0])
            if count >= self.capacity:
                break
        return TrajectoryDataset(sorted(chosen), name=f"online buffer ({count} episodes)") if chosen else None

    def summary(self, path: Path) -> tuple[np.ndarray, np.ndarray]:
        """(returns, lengths) of the episodes of a rollout file (read once, files never change)."""
        if path not in self._summaries:
            with h5py.File(path, "r") as f:
                self._summaries[path] = (f["episodes/return"][()], f["episodes/length"][()])
        return self._summaries[path]

    # ---- recovery ------------------------------------------------------------------------------------
    def _recover(self) -> int:
        """Join a killed run's pending episodes into their rollout file; returns how many were joined."""
        for leftover in [*self.pending_dir.glob(".*.tmp"), *self.directory.glob(".*.tmp")]:  # writes cut by the kill
            leftover.unlink()
        groups: dict[int, list[Path]] = {}
        for path in self.pending_dir.iterdir():
            match = _PENDING.match(path.name)
            if match:
                groups.setdefault(int(match.group(1)), []).append(path)
        joined = 0
        for number, paths in sorted(groups.items()):
            final = self.directory / f"rollout-{number:07d}.h5"
            if not final.exists():  # else the join finished before the kill: the pending files are copies
                pending = TrajectoryDataset(sorted(paths))
                self._write(final, [pending.episode(i) for i in range(pending.num_episodes)])
                pending.close()
                joined += len(paths)
                logger.info("recovered %d episodes of an interrupted rollout into %s", len(paths), final.name)
            self._remove_pending(number)
        return joined

    def _remove_pending(self, number: int) -> None:
        for path in self.pending_dir.glob(f"rollout-{number:07d}-*.h5"):
            path.unlink()


def _number(path: Path) -> int:
    return int(_ROLLOUT.match(path.name).group(1))
