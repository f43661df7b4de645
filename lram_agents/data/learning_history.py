"""Writing the learning history of a Stable-Baselines3 algorithm to trajectory files (Algorithm Distillation's data).

Algorithm Distillation trains on the sequence of episodes a source RL algorithm produced while it
learned, downsampled to every k-th episode. The run and its transitions come from
:func:`lram_agents.envs.source_rl.learn_recording` (the library's one way to record a source
algorithm); this module turns that stream into episodes and writes them in our HDF5 format:

* :class:`HistoryWriter` is the transition sink: it groups each environment copy's steps into
  episodes, numbers them by the order they finished (over all copies) and keeps every k-th.
* :func:`record_learning_history` trains an SB3 algorithm with a :class:`HistoryWriter` attached.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from lram_agents.data.recorder import RecordingSummary, TrajectoryWriter, _EpisodeBuffer
from lram_agents.envs.source_rl import Transition, base_vec_env, learn_recording


class HistoryWriter:
    """Writes the episodes of a streamed learning history into ``writer``, keeping every k-th.

    Call it with every :class:`~lram_agents.envs.source_rl.Transition` of a run, in order. A finished
    episode gets ``episode_index`` = the number of episodes finished before it (over all environment
    copies) and is kept if that index is a multiple of ``keep_every``; unfinished episodes are dropped.

    Args:
        writer: where kept episodes go.
        task: stored with every episode (e.g. the goal's name).
        history_id: identifies this learning history in the dataset (use one per task and seed).
        keep_every: k, AD's downsampling (1 keeps all).
        bar: a tqdm bar advanced by one per transition (optional).
    """

    def __init__(self, writer: TrajectoryWriter, task: str = "", history_id: int = 0, keep_every: int = 1, bar: Any = None):
        if keep_every < 1:
            raise ValueError(f"keep_every must be >= 1, got {keep_every}")
        self.writer, self.task, self.history_id, self.keep_every = writer, task, history_id, keep_every
        self.episodes_finished, self.episodes_kept, self.steps = 0, 0, 0
        self.bar = bar
        self.returns: list[float] = []  # of every finished episode, kept or not
        self._buffers: dict[int, _EpisodeBuffer] = {}

    def __call__(self, transition: Transition) -> None:
        buffer = self._buffers.get(transition.env_index)
        if buffer is None:
            buffer = self._buffers[transition.env_index] = _EpisodeBuffer(transition.obs)
        buffer.add(transition.action, transition.reward, transition.terminated, transition.truncated, transition.next_obs)
        self.steps += 1
        if self.bar is not None:
            self.bar.update(1)
        if transition.terminated or transition.truncated:
            self._finish(self._buffers.pop(transition.env_index))

    def _finish(self, buffer: _EpisodeBuffer) -> None:
        index = self.episodes_finished
        self.returns.append(float(sum(buffer.rewards)))
        if index % self.keep_every == 0:
            self.writer.add(buffer.to_episode(self.task, self.history_id, index))
            self.episodes_kept += 1
        self.episodes_finished = index + 1
        if self.bar is not None:
            self.bar.set_postfix(episodes=self.episodes_finished, kept=self.episodes_kept, refresh=False)


def record_learning_history(algorithm: Any, total_timesteps: int, directory: str | Path, keep_every: int = 1, history_id: int = 0,
                            task: str = "", domain: str = "", progress_bar: bool = False, progress: bool = True,
                            **writer_kwargs) -> RecordingSummary:
    """Train ``algorithm`` (an SB3 model with its env set) for ``total_timesteps`` and record its history.

    Args:
        algorithm: any SB3 algorithm whose env is a ``DummyVecEnv`` (SB3's default), possibly wrapped
            (e.g. in ``VecNormalize``); the raw observations of the environments are recorded.
        keep_every: k, keep every k-th finished episode (AD's downsampling; 1 keeps all).
        history_id: identifies this learning history in the dataset (use one per task and seed).
        progress: a tqdm bar over the timesteps, with the episodes finished and kept.
        progress_bar: SB3's own progress bar (needs the ``rich`` package).
        writer_kwargs: passed to :class:`TrajectoryWriter` (e.g. ``episodes_per_file``).

    Returns a summary whose ``episodes`` counts the finished episodes and ``kept`` those written.
    The algorithm's ``learn`` runs with ``reset_num_timesteps=True``; episodes unfinished at the end
    are dropped. Files written before an exception stay on disk.
    """
    vec_env = base_vec_env(algorithm)
    spec = vec_env.envs[0].spec
    metadata = {"algorithm": type(algorithm).__name__, "keep_every": keep_every, "total_timesteps": int(total_timesteps)}
    with TrajectoryWriter(directory, vec_env.observation_space, vec_env.action_space, domain=domain, env_id=spec.id if spec else "",
                          metadata=metadata, **writer_kwargs) as writer:
        with tqdm(total=int(total_timesteps), unit="step", desc="learn and record", disable=not progress) as bar:
            history = HistoryWriter(writer, task=task, history_id=history_id, keep_every=keep_every, bar=bar)
            learn_recording(algorithm, history, total_timesteps, progress_bar=progress_bar)
    return RecordingSummary(episodes=history.episodes_finished, kept=history.episodes_kept, steps=history.steps,
                            returns=history.returns, files=list(writer.files))
