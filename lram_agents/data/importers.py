"""Importers for public offline-RL data sets a user with internet access brings, into our trajectory format.

* :func:`import_lram` — the LRAM authors' layout (their ``ml-jku/LRAM`` loader, ``src/buffers/buffer_utils.py``):
  ``.hdf5`` / ``.npz`` files with ``states`` (T, ...), ``actions`` (T, ...), ``rewards`` (T,) and ``dones``
  (a scalar: the file is one trajectory; or (T,) flags: the file holds several, split after each done),
  e.g. their Meta-World (``ml-jku/meta-world``) and DMControl (``ml-jku/dm_control_10M``) data.
  ``.pkl`` files of the same keys are read only with ``allow_pickle=True`` (pickle runs code from the file).
* :func:`import_robomimic` — robomimic's HDF5 (MimicGen's data sets): ``data/demo_<i>/{actions, rewards,
  dones, obs/<key>, next_obs/<key>}``; the state is the chosen low-dimensional ``obs`` keys concatenated.
* :func:`import_dqn_replay` — one checkpoint of DQN-Replay (Agarwal et al. 2020; Dopamine's replay
  buffer): gzipped NumPy arrays ``$store$_{observation,action,reward,terminal}_ckpt.<n>.gz`` (84 x 84
  grey frames, a circular buffer whose oldest entry is at ``add_count % capacity``); frames are resized
  to the model's (1, 64, 64) and episodes are split at terminals (the partial first and last ones dropped).

These files keep the states an action was taken from but not the observation after the last action;
our format stores one (``final_observation``), so the importers repeat the last state there.
Each importer writes one episode per file (LRAM's layout) and returns a :class:`RecordingSummary`.
"""

from __future__ import annotations

import gzip
import json
import pickle
from pathlib import Path
from typing import Iterable, Iterator

import gymnasium as gym
import h5py
import numpy as np
import torch

from lram_agents.data.format import Episode
from lram_agents.data.recorder import RecordingSummary, TrajectoryWriter
from lram_agents.preprocessing import to_model_image

LRAM_SUFFIXES = (".hdf5", ".h5", ".npz", ".pkl")
DISCRETE_ACTIONS = {"atari": 18, "procgen": 15}


def split_at_dones(states, actions, rewards, dones, task: str = "", drop_unfinished: bool = False) -> Iterator[Episode]:
    """Episodes of concatenated transitions, each ending after a done (a trailing rest is truncated)."""
    dones = np.asarray(dones, dtype=bool).reshape(-1)
    ends = list(np.flatnonzero(dones) + 1)
    if not ends or ends[-1] != len(rewards):
        if not drop_unfinished:
            ends.append(len(rewards))
    start = 0
    for end in ends:
        if end > start:
            yield _episode(states[start:end], actions[start:end], rewards[start:end], bool(dones[end - 1]), task)
        start = end


def _episode(states, actions, rewards, terminated: bool, task: str) -> Episode:
    states = np.asarray(states)
    T = len(rewards)
    terminations, truncations = np.zeros(T, bool), np.zeros(T, bool)
    (terminations if terminated else truncations)[-1] = True
    return Episode(np.concatenate([states, states[-1:]]), np.asarray(actions), rewards, terminations, truncations, task)


def _spaces(states: np.ndarray, actions: np.ndarray, domain: str) -> tuple[gym.Space, gym.Space]:
    if states.dtype == np.uint8 and states.ndim == 4:
        observation_space = gym.spaces.Box(0, 255, states.shape[1:], np.uint8)
    else:
        observation_space = gym.spaces.Box(-np.inf, np.inf, states.shape[1:], np.float32)
    if np.issubdtype(actions.dtype, np.integer) or domain in DISCRETE_ACTIONS:
        action_space = gym.spaces.Discrete(DISCRETE_ACTIONS.get(domain, int(actions.max()) + 1))
    else:
        action_space = gym.spaces.Box(-1.0, 1.0, actions.shape[1:], np.float32)
    return observation_space, action_space


def _write(episodes: Iterable[Episode], output, domain: str, env_id: str, metadata: dict,
           image_shape=None) -> RecordingSummary:
    summary, writer = RecordingSummary(), None
    for episode in episodes:
        if writer is None:
            observation_space, action_space = _spaces(episode.observations, episode.actions, domain)
            writer = TrajectoryWriter(output, observation_space, action_space, domain=domain, env_id=env_id, metadata=metadata,
                                      image_shape=image_shape)
        if isinstance(writer.action_space, gym.spaces.Discrete):
            episode.actions = episode.actions.astype(np.int64).reshape(-1)
        writer.add(episode)
        summary.episodes += 1
        summary.steps += len(episode)
        summary.returns.append(episode.total_return)
    if writer is None:
        raise ValueError(f"no episodes found to write to {output}")
    writer.close()
    summary.files = list(writer.files)
    return summary


# ---- LRAM ---------------------------------------------------------------------------------------------------------
def _read_lram_file(path: Path, allow_pickle: bool) -> dict[str, np.ndarray]:
    if path.suffix in (".hdf5", ".h5"):
        with h5py.File(path, "r") as f:
            return {k: f[k][()] for k in ("states", "actions", "rewards", "dones") if k in f}
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in ("states", "actions", "rewards", "dones") if k in f}
    if not allow_pickle:
        raise ValueError(f"{path} is a pickle file, which can run code when read: pass allow_pickle=True if you trust it")
    with path.open("rb") as f:
        data = pickle.load(f)  # noqa: S301  (opt-in above)
    return {k: np.asarray(data[k]) for k in ("states", "actions", "rewards", "dones") if k in data}


def import_lram(source: str | Path, output: str | Path, domain: str, task: str = "", env_id: str = "",
                allow_pickle: bool = False) -> RecordingSummary:
    """Import a file or a folder of files in the LRAM authors' layout (see the module docstring)."""
    source = Path(source)
    paths = sorted(p for p in source.rglob("*") if p.suffix in LRAM_SUFFIXES) if source.is_dir() else [source]
    if not paths:
        raise ValueError(f"no {'/'.join(LRAM_SUFFIXES)} files under {source}")

    def episodes() -> Iterator[Episode]:
        for path in paths:
            data = _read_lram_file(path, allow_pickle)
            missing = {"states", "actions", "rewards", "dones"} - set(data)
            if missing:
                raise ValueError(f"{path} lacks {sorted(missing)}: not the LRAM layout")
            rewards = np.asarray(data["rewards"], dtype=np.float32).reshape(-1)
            dones = np.asarray(data["dones"]).reshape(-1)
            if dones.size == 1:  # one trajectory per file: its done flag says how it ended
                dones = np.r_[np.zeros(len(rewards) - 1, bool), bool(dones[0])]
            yield from split_at_dones(data["states"], data["actions"], rewards, dones, task)

    return _write(episodes(), output, domain, env_id, {"source": "lram", "imported_from": str(source)})


# ---- robomimic ----------------------------------------------------------------------------------------------------
def import_robomimic(path: str | Path, output: str | Path, domain: str = "robosuite", task: str = "",
                     obs_keys: list[str] | None = None, env_id: str = "") -> RecordingSummary:
    """Import every demo of a robomimic-format HDF5 file; ``obs_keys`` default: all low-dimensional keys, sorted."""
    path = Path(path)
    with h5py.File(path, "r") as f:
        if "data" not in f or not len(f["data"]):
            raise ValueError(f"{path} has no data/demo_* groups: not a robomimic file")
        env_args = json.loads(f["data"].attrs.get("env_args", "{}"))
        demos = sorted(f["data"], key=lambda name: int(name.rsplit("_", 1)[-1]))
        keys = obs_keys or sorted(k for k in f["data"][demos[0]]["obs"] if f["data"][demos[0]]["obs"][k].ndim <= 2)
        episodes = [_robomimic_episode(f["data"][name], keys, task or env_args.get("env_name", "")) for name in demos]
    metadata = {"source": "robomimic", "imported_from": str(path), "obs_keys": keys, "env_args": env_args}
    return _write(episodes, output, domain, env_id, metadata)


def _robomimic_episode(demo: h5py.Group, keys: list[str], task: str) -> Episode:
    def state(group: h5py.Group) -> np.ndarray:
        parts = [np.asarray(group[k][()], dtype=np.float32) for k in keys]
        return np.concatenate([p.reshape(len(p), -1) for p in parts], axis=1)

    states = state(demo["obs"])
    final = state(demo["next_obs"])[-1:] if "next_obs" in demo else states[-1:]
    rewards = np.asarray(demo["rewards"][()], dtype=np.float32)
    dones = np.asarray(demo["dones"][()], dtype=bool) if "dones" in demo else np.zeros(len(rewards), bool)
    terminations, truncations = dones.copy(), np.zeros(len(rewards), bool)
    if not dones[-1]:
        truncations[-1] = True  # a demonstration that stops without a done flag
    return Episode(np.concatenate([states, final]), np.asarray(demo["actions"][()], dtype=np.float32), rewards, terminations,
                   truncations, task)


# ---- DQN-Replay ---------------------------------------------------------------------------------------------------
def _load_gz(directory: Path, name: str, checkpoint: int) -> np.ndarray:
    path = directory / f"$store$_{name}_ckpt.{checkpoint}.gz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: not a DQN-Replay checkpoint folder")
    with gzip.open(path, "rb") as f:
        return np.load(f, allow_pickle=False)


def import_dqn_replay(directory: str | Path, output: str | Path, game: str, checkpoint: int = 50,
                      env_id: str = "") -> RecordingSummary:
    """Import one DQN-Replay checkpoint of ``game`` (rewards stored unclipped as DQN saw them: clipped)."""
    directory = Path(directory)
    observations, actions, rewards, terminals = (_load_gz(directory, name, checkpoint)
                                                 for name in ("observation", "action", "reward", "terminal"))
    count_file = directory / f"add_count_ckpt.{checkpoint}.gz"
    if count_file.is_file():  # the circular buffer's oldest entry goes first
        with gzip.open(count_file, "rb") as f:
            shift = int(np.load(f, allow_pickle=False)) % len(rewards)
        observations, actions, rewards, terminals = (np.roll(a, -shift, axis=0) for a in (observations, actions, rewards, terminals))
    frames = observations[:, None] if observations.ndim == 3 else observations  # (N, 1, 84, 84)

    def episodes() -> Iterator[Episode]:
        first_end = int(np.flatnonzero(terminals)[0]) + 1 if terminals.any() else len(rewards)
        for episode in split_at_dones(frames[first_end:], actions[first_end:], rewards[first_end:].astype(np.float32),
                                      terminals[first_end:], task=game, drop_unfinished=True):
            episode.observations = to_model_image(torch.from_numpy(episode.observations), (1, 64, 64)).numpy()
            yield episode

    return _write(episodes(), output, "atari", env_id, {"source": "dqn-replay", "imported_from": str(directory),
                                                        "checkpoint": checkpoint})
