"""Recording trajectories: a writer, a Gymnasium wrapper and an entry point.

* :class:`TrajectoryWriter` buffers finished episodes and writes them to ``*.h5`` files atomically
  (``episodes_per_file`` at a time; 1 is LRAM's layout). Files already written are never touched
  again, so an exception or a kill loses at most the episodes not yet flushed.
* :class:`RecordEpisodes` (``gym.Wrapper``) records every finished episode of an env.
* :func:`record` runs any policy (see :mod:`lram_agents.data.policies`) for N episodes or N steps.

The learning histories of an SB3 algorithm (Algorithm Distillation) are recorded by
:func:`lram_agents.data.learning_history.record_learning_history`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from tqdm.auto import tqdm

from lram_agents.data.format import Episode, is_image_space, write_episodes
from lram_agents.data.policies import as_policy
from lram_agents.preprocessing import to_model_image

logger = logging.getLogger(__name__)


class TrajectoryWriter:
    """Writes episodes into ``directory`` as trajectory files named ``{prefix}-{n:07d}.h5``.

    Args:
        directory: created if missing; numbering continues after files already there.
        observation_space, action_space: the env's spaces (Box observations; Discrete or Box actions).
        domain, env_id, metadata: stored in every file.
        episodes_per_file: episodes buffered per file (1: every episode is on disk when it ends).
        image_shape: convert image observations once, here, to the model's (C, H, W) (grey-scale and
            resize), so training reads ready frames.
        compression: lossless compression of image observations ("gzip", "lzf" or None).
    """

    def __init__(self, directory: str | Path, observation_space: gym.Space, action_space: gym.Space, domain: str = "", env_id: str = "",
                 episodes_per_file: int = 1, image_shape: tuple[int, int, int] | None = None, compression: str | None = "gzip",
                 metadata: dict[str, Any] | None = None, prefix: str = "episodes"):
        if episodes_per_file < 1:
            raise ValueError(f"episodes_per_file must be >= 1, got {episodes_per_file}")
        if image_shape is not None and not is_image_space(observation_space):
            raise ValueError(f"image_shape={image_shape} needs uint8 image observations, the space is {observation_space}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.image_shape = tuple(image_shape) if image_shape is not None else None
        self.observation_space = gym.spaces.Box(0, 255, self.image_shape, np.uint8) if self.image_shape else observation_space
        self.action_space, self.domain, self.env_id = action_space, domain, env_id
        self.episodes_per_file, self.compression, self.metadata, self.prefix = episodes_per_file, compression, metadata or {}, prefix
        self.pending: list[Episode] = []
        self.files: list[Path] = []
        self.episodes_written = 0
        self._next = self._first_free_number()

    def add(self, episode: Episode) -> None:
        """Queue ``episode``; a file is written once ``episodes_per_file`` are queued."""
        if self.image_shape is not None:
            episode.observations = to_model_image(torch.from_numpy(episode.observations), self.image_shape).numpy()
        self.pending.append(episode)
        if len(self.pending) >= self.episodes_per_file:
            self.flush()

    def flush(self) -> None:
        """Write the queued episodes (if any) to a new file."""
        if not self.pending:
            return
        path = self.directory / f"{self.prefix}-{self._next:07d}.h5"
        write_episodes(path, self.pending, self.observation_space, self.action_space, self.domain, self.env_id, self.metadata, self.compression)
        self.files.append(path)
        self.episodes_written += len(self.pending)
        self.pending, self._next = [], self._next + 1

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> TrajectoryWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()  # also on errors: finished episodes are kept

    def _first_free_number(self) -> int:
        taken = [int(p.stem.rsplit("-", 1)[1]) for p in self.directory.glob(f"{self.prefix}-*.h5") if p.stem.rsplit("-", 1)[1].isdigit()]
        return max(taken, default=-1) + 1


class _EpisodeBuffer:
    """The transitions of the running episode."""

    def __init__(self, first_observation):
        self.observations = [np.array(first_observation)]
        self.actions, self.rewards, self.terminations, self.truncations = [], [], [], []

    def add(self, action, reward, terminated, truncated, next_observation) -> None:
        self.actions.append(np.array(action))
        self.rewards.append(float(reward))
        self.terminations.append(bool(terminated))
        self.truncations.append(bool(truncated))
        self.observations.append(np.array(next_observation))

    def __len__(self) -> int:
        return len(self.rewards)

    def to_episode(self, task: str, history_id: int, episode_index: int) -> Episode:
        return Episode(np.stack(self.observations), np.stack(self.actions), np.array(self.rewards, dtype=np.float32),
                       np.array(self.terminations), np.array(self.truncations), task, history_id, episode_index)


class RecordEpisodes(gym.Wrapper):
    """Records every finished episode of ``env`` into ``writer`` (unfinished ones are dropped).

    Args:
        task: stored with every episode; ``reset(options={"task": ...})`` overrides it per episode.
        history_id: >= 0 marks the episodes as one learning history, numbered in order.
        keep_every: keep episode ``i`` only if ``i % keep_every == 0`` (the index counts all episodes).
    """

    def __init__(self, env: gym.Env, writer: TrajectoryWriter, task: str = "", history_id: int = -1, keep_every: int = 1):
        super().__init__(env)
        if keep_every < 1:
            raise ValueError(f"keep_every must be >= 1, got {keep_every}")
        self.writer, self.default_task, self.history_id, self.keep_every = writer, task, history_id, keep_every
        self.task, self.episodes_finished, self.buffer = task, 0, None

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        self.task = str(options["task"]) if options and "task" in options else self.default_task
        self.buffer = _EpisodeBuffer(obs)
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self.buffer is not None:
            self.buffer.add(action, reward, terminated, truncated, obs)
            if terminated or truncated:
                self._finish()
        return obs, reward, terminated, truncated, info

    def end_episode_early(self) -> None:
        """Keep the running episode, marked truncated at its last step (e.g. a step budget ran out)."""
        if self.buffer is not None and len(self.buffer):
            self.buffer.truncations[-1] = True
            self._finish()

    def _finish(self) -> None:
        index = self.episodes_finished
        if index % self.keep_every == 0:
            history_index = index if self.history_id >= 0 else -1
            self.writer.add(self.buffer.to_episode(self.task, self.history_id, history_index))
        self.episodes_finished, self.buffer = index + 1, None

    def close(self):
        self.writer.close()
        return super().close()


@dataclass
class RecordingSummary:
    """What a recording produced."""

    episodes: int = 0  # episodes finished (kept or not)
    kept: int | None = None  # episodes written, where fewer than finished (a learning history keeps every k-th)
    steps: int = 0
    env_errors: int = 0
    returns: list[float] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def record(env: gym.Env, policy: Any, directory: str | Path | TrajectoryWriter, episodes: int | None = None, steps: int | None = None,
           seed: int | None = None, task: str = "", domain: str = "", max_env_errors: int = 0, progress: bool = True,
           **writer_kwargs) -> RecordingSummary:
    """Run ``policy`` in ``env`` for ``episodes`` episodes or ``steps`` steps and record them.

    With ``steps``, the episode running when the budget ends is kept, marked truncated. An exception
    raised by the env drops the running episode only; up to ``max_env_errors`` of them are logged and
    recording goes on from a reset, one more is re-raised. Finished episodes are on disk either way.
    ``writer_kwargs`` go to :class:`TrajectoryWriter` when ``directory`` is a path.
    """
    if (episodes is None) == (steps is None) or (episodes or steps) < 1:
        raise ValueError(f"give exactly one positive budget: episodes={episodes}, steps={steps}")
    policy = as_policy(policy, env.action_space, env=env)
    writer = directory if isinstance(directory, TrajectoryWriter) else TrajectoryWriter(
        directory, env.observation_space, env.action_space, domain=domain, env_id=env.spec.id if env.spec else "", **writer_kwargs)
    recorder, summary = RecordEpisodes(env, writer, task=task), RecordingSummary()
    if seed is not None:
        env.action_space.seed(seed)
    with writer, tqdm(total=episodes or steps, unit="episode" if episodes else "step", disable=not progress, desc="record") as bar:
        _run(recorder, policy, summary, episodes, steps, seed, max_env_errors, bar)
    summary.files = list(writer.files)
    return summary


def _run(recorder: RecordEpisodes, policy, summary: RecordingSummary, episodes, steps, seed, max_env_errors, bar) -> None:
    obs, reward, episode_return = _reset(recorder, policy, summary, max_env_errors, seed), 0.0, 0.0
    while (episodes is None or summary.episodes < episodes) and (steps is None or summary.steps < steps):
        action = policy(obs, reward)
        try:
            obs, reward, terminated, truncated, _ = recorder.step(action)
        except Exception as err:  # noqa: BLE001  (an env failure: keep what is recorded, maybe go on)
            _count_error(summary, max_env_errors, err)
            obs, reward, episode_return = _reset(recorder, policy, summary, max_env_errors), 0.0, 0.0
            continue
        summary.steps += 1
        episode_return += float(reward)
        bar.update(0 if episodes else 1)
        if terminated or truncated:
            summary.episodes += 1
            summary.returns.append(episode_return)
            bar.update(1 if episodes else 0)
            if (episodes is None or summary.episodes < episodes) and (steps is None or summary.steps < steps):
                obs, reward, episode_return = _reset(recorder, policy, summary, max_env_errors), 0.0, 0.0
    if recorder.buffer is not None and len(recorder.buffer):
        recorder.end_episode_early()
        summary.episodes += 1
        summary.returns.append(episode_return)


def _reset(recorder: RecordEpisodes, policy, summary: RecordingSummary, max_env_errors: int, seed: int | None = None):
    while True:
        try:
            obs, _ = recorder.reset(seed=seed)
            policy.reset()
            return obs
        except Exception as err:  # noqa: BLE001
            _count_error(summary, max_env_errors, err)


def _count_error(summary: RecordingSummary, max_env_errors: int, err: Exception) -> None:
    summary.env_errors += 1
    if summary.env_errors > max_env_errors:
        raise err
    logger.warning("env raised %r (%d of %d tolerated); the running episode is dropped", err, summary.env_errors, max_env_errors)
