"""Trajectory data: the HDF5 format, recording, reading and sampling training batches.

* :mod:`~lram_agents.data.format` — the on-disk format (documented there), :class:`Episode`.
* :mod:`~lram_agents.data.dataset` — :class:`TrajectoryDataset`, random access to episodes.
* :mod:`~lram_agents.data.sampler` — :class:`TrajectorySampler`: LRAM / RATE / AD windows, balanced mixing.
* :mod:`~lram_agents.data.recorder` — :class:`TrajectoryWriter`, :class:`RecordEpisodes`, :func:`record`.
* :mod:`~lram_agents.data.learning_history` — :func:`record_learning_history` for SB3 algorithms.
* :mod:`~lram_agents.data.minari_io` — import / export of Minari datasets (optional ``minari`` extra).
"""

from lram_agents.data.dataset import TrajectoryDataset
from lram_agents.data.format import DatasetError, Episode, write_episodes
from lram_agents.data.policies import Policy, as_policy
from lram_agents.data.recorder import RecordEpisodes, RecordingSummary, TrajectoryWriter, record
from lram_agents.data.sampler import Batch, DataSource, TrajectorySampler, check_compatible

__all__ = [
    "Batch", "DataSource", "DatasetError", "Episode", "Policy", "RecordEpisodes", "RecordingSummary", "TrajectoryDataset",
    "TrajectorySampler", "TrajectoryWriter", "as_policy", "check_compatible", "record", "write_episodes",
]
