"""Recording the learning history of a Stable-Baselines3 algorithm (Algorithm Distillation's data).

Algorithm Distillation trains on the sequence of episodes a source RL algorithm produced while it
learned, downsampled to every k-th episode. :func:`record_learning_history` wraps the algorithm's
``VecEnv`` in :class:`VecRecordEpisodes`, runs ``learn`` and stores the kept episodes with one
``history_id`` and their ``episode_index`` (the number of episodes finished before, over all
sub-environments, in the order they finished).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from lram_agents.data.recorder import RecordingSummary, TrajectoryWriter, _EpisodeBuffer


class VecRecordEpisodes(VecEnvWrapper):
    """Records the finished episodes of every sub-environment of an SB3 ``VecEnv``.

    What is recorded is what the algorithm sees (wrap inside ``VecNormalize`` to record raw
    observations) and the actions it sends. ``keep_every`` and ``history_id`` as in
    :class:`lram_agents.data.recorder.RecordEpisodes`.
    """

    def __init__(self, venv: VecEnv, writer: TrajectoryWriter, task: str = "", history_id: int = 0, keep_every: int = 1):
        super().__init__(venv)
        if keep_every < 1:
            raise ValueError(f"keep_every must be >= 1, got {keep_every}")
        self.writer, self.task, self.history_id, self.keep_every = writer, task, history_id, keep_every
        self.episodes_finished, self.returns = 0, []
        self.buffers: list[_EpisodeBuffer | None] = [None] * venv.num_envs
        self._actions = None

    def reset(self):
        obs = self.venv.reset()
        self.buffers = [_EpisodeBuffer(o) for o in obs]
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.array(actions)
        self.venv.step_async(actions)

    def step_wait(self):
        obs, rewards, dones, infos = self.venv.step_wait()
        for i, buffer in enumerate(self.buffers):
            if buffer is None:
                continue
            if dones[i]:  # SB3 resets the sub-env itself: obs[i] already starts the next episode
                truncated = bool(infos[i].get("TimeLimit.truncated", False))
                buffer.add(self._actions[i], rewards[i], not truncated, truncated, infos[i]["terminal_observation"])
                self._finish(buffer)
                self.buffers[i] = _EpisodeBuffer(obs[i])
            else:
                buffer.add(self._actions[i], rewards[i], False, False, obs[i])
        return obs, rewards, dones, infos

    def _finish(self, buffer: _EpisodeBuffer) -> None:
        index = self.episodes_finished
        self.returns.append(float(np.sum(buffer.rewards)))
        if index % self.keep_every == 0:
            self.writer.add(buffer.to_episode(self.task, self.history_id, index))
        self.episodes_finished = index + 1


def record_learning_history(algorithm: Any, total_timesteps: int, directory: str | Path, keep_every: int = 1, history_id: int = 0,
                            task: str = "", domain: str = "", progress_bar: bool = False, **writer_kwargs) -> RecordingSummary:
    """Train ``algorithm`` (an SB3 model with its env set) for ``total_timesteps`` and record its history.

    Args:
        keep_every: k, keep every k-th finished episode (AD's downsampling; 1 keeps all).
        history_id: identifies this learning history in the dataset (use one per task and seed).
        writer_kwargs: passed to :class:`TrajectoryWriter` (e.g. ``episodes_per_file``).

    The algorithm's ``learn`` runs with ``reset_num_timesteps=True``; episodes unfinished at the end
    are dropped. Files written before an exception stay on disk.
    """
    venv = algorithm.get_env()
    if venv is None:
        raise ValueError("the algorithm has no environment: create it with env=... or call set_env first")
    env_id = venv.envs[0].spec.id if hasattr(venv, "envs") and venv.envs[0].spec else ""
    with TrajectoryWriter(directory, venv.observation_space, venv.action_space, domain=domain, env_id=env_id,
                          metadata={"algorithm": type(algorithm).__name__, "keep_every": keep_every}, **writer_kwargs) as writer:
        recorder = VecRecordEpisodes(venv, writer, task=task, history_id=history_id, keep_every=keep_every)
        algorithm.set_env(recorder)
        try:
            algorithm.learn(total_timesteps=total_timesteps, progress_bar=progress_bar)
        finally:
            algorithm.set_env(venv)
    return RecordingSummary(episodes=recorder.episodes_finished, steps=int(algorithm.num_timesteps), returns=recorder.returns,
                            files=list(writer.files))
