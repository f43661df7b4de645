"""Import and export of Minari datasets (the optional ``minari`` extra; it needs numpy >= 2).

Minari stores T + 1 observations per episode, like our ``observations`` + ``final_observation``.
Our per-episode task, history id and episode index travel as the episode's reset ``options``
(``{"task": ..., "history_id": ..., "episode_index": ...}``), which Minari keeps per episode;
images are exported without Minari's (lossy) JPEG encoding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lram_agents.data.dataset import TrajectoryDataset
from lram_agents.data.format import DatasetError, Episode
from lram_agents.data.recorder import TrajectoryWriter


def _minari():
    try:
        import minari
    except ImportError as err:
        raise ImportError("Minari support needs the optional extra: pip install 'lram_agents[minari]' (minari needs numpy >= 2)") from err
    return minari


def export_to_minari(dataset: TrajectoryDataset, dataset_id: str, **minari_kwargs: Any):
    """Write ``dataset`` as the local Minari dataset ``dataset_id`` and return it (a ``MinariDataset``).

    ``minari_kwargs`` go to ``minari.create_dataset_from_buffers`` (e.g. ``author``, ``description``).
    """
    minari = _minari()
    from minari.data_collector import EpisodeBuffer

    buffers = []
    for i in range(dataset.num_episodes):
        e = dataset.episode(i)
        options = {"task": e.task, "history_id": e.history_id, "episode_index": e.episode_index}
        buffers.append(EpisodeBuffer(id=i, options=options, observations=e.observations, actions=e.actions, rewards=e.rewards,
                                     terminations=e.terminations, truncations=e.truncations))
    env = minari_kwargs.pop("env", dataset.env_id or None)
    return minari.create_dataset_from_buffers(dataset_id, buffers, env=env, observation_space=dataset.observation_space,
                                              action_space=dataset.action_space, jpeg_encoding=False, **minari_kwargs)


def import_from_minari(source: Any, directory: str | Path, domain: str = "", **writer_kwargs: Any) -> TrajectoryDataset:
    """Convert a Minari dataset (an id of a local dataset, or a ``MinariDataset``) into trajectory files.

    Episodes keep Minari's order; ``writer_kwargs`` go to :class:`TrajectoryWriter` (e.g.
    ``episodes_per_file``, ``image_shape``). Dict/Tuple observation spaces are rejected with the
    advice to flatten them.
    """
    minari = _minari()
    data = minari.load_dataset(source) if isinstance(source, str) else source
    env_id = data.spec.env_spec.id if data.spec.env_spec is not None else ""
    with TrajectoryWriter(directory, data.observation_space, data.action_space, domain=domain, env_id=env_id,
                          metadata={"minari_id": data.spec.dataset_id}, **writer_kwargs) as writer:
        indices = list(data.episode_indices)
        metadata = list(data.storage.get_episode_metadata(indices))
        for episode, meta in zip(data.iterate_episodes(indices), metadata):
            writer.add(_to_episode(episode, meta.get("options") or {}))
    if writer.episodes_written == 0:
        raise DatasetError(f"Minari dataset {data.spec.dataset_id} holds no episodes")
    return TrajectoryDataset(writer.files, domain=domain or None, name=data.spec.dataset_id)


def _to_episode(episode, options: dict) -> Episode:
    if isinstance(episode.observations, (dict, tuple)):
        raise DatasetError("Minari episode observations are a Dict/Tuple; flatten them first (trajectories store Box observations)")
    return Episode(np.asarray(episode.observations), np.asarray(episode.actions), episode.rewards, episode.terminations, episode.truncations,
                   task=str(options.get("task", "")), history_id=int(options.get("history_id", -1)),
                   episode_index=int(options.get("episode_index", -1)))
