"""How environment data becomes model inputs, shared by agents (acting) and datasets (training).

* Rewards and returns are divided by a per-domain reward scale (LRAM: Meta-World 200, DMControl 100,
  Atari 20, others 1); at inference R̂_{t+1} = R̂_t - r_t / scale, starting at the target return.
* Observations: vectors become float32 (optionally normalised); images become uint8 (C, H, W) of the
  model's image shape (grey-scaled and resized if needed).
* Continuous actions are rescaled between the env's Box bounds and the head's [-1, 1].
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from lram_agents.action_head import CONTINUOUS_DECODINGS, ActionSpec
from lram_agents.config_utils import ConfigError, from_dict, require
from lram_agents.spaces import space_from_json

DOMAIN_REWARD_SCALES = {"metaworld": 200.0, "dmcontrol": 100.0, "atari": 20.0}
PREPROCESSING_FILE = "preprocessing.json"


def reward_scale_for(domain: str) -> float:
    """LRAM's reward scale of a domain (1 for domains the paper does not scale)."""
    return DOMAIN_REWARD_SCALES.get(domain.lower(), 1.0)


@dataclass
class Preprocessing:
    """The per-task numbers saved beside a model (``preprocessing.json``).

    Attributes:
        reward_scale: rewards and returns are divided by this.
        target_return: the (unscaled) return the agent is conditioned on at the start of an episode.
        obs_mean, obs_std: optional normalisation of vector observations.
        keep_memory: whether an agent keeps its recurrent memory across episodes by default (True for
            in-context models trained on multi-episode contexts, e.g. Dark-Room).
        deterministic: whether an agent takes argmax actions by default (False: it samples them, as
            in-context learners must, whose exploration of a new task comes from sampling).
        continuous_decoding: how deterministic continuous actions are read from a binned head:
            ``"argmax"`` (the most likely bin) or ``"mean"`` (the expected value over the bins).
        observation_space, action_space: the env's spaces in the JSON form of :mod:`lram_agents.spaces`,
            so that a saved agent can act without being bound to an env first; ``None``: not recorded.
        tasks: for a model trained on many tasks, each task's ``{"reward_scale", "target_return"}`` by
            Gymnasium env id (e.g. ``"lram_agents/MetaWorld-reach-v0"``), plus one entry per domain
            (``"domain:metaworld"``) for that domain's other tasks (zero-shot); :meth:`for_env` picks one.
            ``None``: one task, the numbers above.
    """

    reward_scale: float = 1.0
    target_return: float = 0.0
    obs_mean: list[float] | None = None
    obs_std: list[float] | None = None
    keep_memory: bool = False
    deterministic: bool = True
    continuous_decoding: str = "argmax"
    observation_space: dict | None = None
    action_space: dict | None = None
    tasks: dict[str, dict[str, float]] | None = None

    def __post_init__(self):
        require(np.isfinite(self.reward_scale) and self.reward_scale > 0, "reward_scale", self.reward_scale, "must be > 0")
        require(np.isfinite(self.target_return), "target_return", self.target_return, "must be finite")
        require((self.obs_mean is None) == (self.obs_std is None), "obs_std", self.obs_std, "give obs_mean and obs_std together")
        require(self.continuous_decoding in CONTINUOUS_DECODINGS, "continuous_decoding", self.continuous_decoding,
                f"must be one of {CONTINUOUS_DECODINGS}")
        if self.obs_std is not None:
            require(len(self.obs_mean) == len(self.obs_std), "obs_std", len(self.obs_std), f"length must equal obs_mean's ({len(self.obs_mean)})")
            require(min(self.obs_std) > 0, "obs_std", min(self.obs_std), "entries must be > 0")
        for name in ("observation_space", "action_space"):
            if getattr(self, name) is not None:
                space_from_json(getattr(self, name), field=name)  # raises ConfigError naming the field
        for key, numbers in (self.tasks or {}).items():
            require(isinstance(numbers, dict) and set(numbers) == {"reward_scale", "target_return"}, f"tasks[{key!r}]", numbers,
                    "must be {reward_scale: ..., target_return: ...}")
            dataclasses.replace(self, tasks=None, **numbers)  # validates the numbers

    def for_env(self, env_id: str) -> Preprocessing | None:
        """The preprocessing of the task with Gymnasium id ``env_id``: its own entry of :attr:`tasks`,
        else its domain's (for a domain task the model did not train on), else ``None``. A one-task
        preprocessing (``tasks is None``) is returned as it is."""
        if self.tasks is None:
            return self
        numbers = self.tasks.get(env_id)
        if numbers is None:
            from lram_agents.envs import domains  # imports no simulator

            try:
                numbers = self.tasks.get(f"domain:{domains.parse_env_id(env_id)[0].name}")
            except ValueError:
                return None
        return None if numbers is None else dataclasses.replace(self, **numbers)

    def save(self, directory: str | Path) -> None:
        from lram_agents.serialization import atomic_write_text

        atomic_write_text(Path(directory) / PREPROCESSING_FILE, json.dumps(dataclasses.asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> Preprocessing:
        path = Path(directory) / PREPROCESSING_FILE
        try:
            return from_dict(cls, json.loads(path.read_text()), where=f" in {path}")
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path} is not valid JSON: {err}") from None


def multi_task_preprocessing(entries: list[tuple[str, str, Preprocessing]]) -> Preprocessing:
    """One :class:`Preprocessing` for a model trained on many tasks, from ``(env_id, domain, preprocessing)``
    per task: each task's reward scale and target return under its env id, and per domain an entry for
    its other tasks (zero-shot) with the domain's scale and the median of its tasks' target returns."""
    tasks: dict[str, dict[str, float]] = {}
    by_domain: dict[str, list[Preprocessing]] = {}
    for env_id, domain, pre in entries:
        tasks[env_id] = {"reward_scale": pre.reward_scale, "target_return": pre.target_return}
        if domain:
            by_domain.setdefault(domain, []).append(pre)
    for domain, pres in by_domain.items():
        tasks[f"domain:{domain}"] = {"reward_scale": reward_scale_for(domain),
                                     "target_return": float(np.median([p.target_return for p in pres]))}
    return Preprocessing(tasks=tasks)


def returns_to_go(rewards: torch.Tensor | np.ndarray, reward_scale: float = 1.0) -> torch.Tensor:
    """R̂_t = (sum of rewards from t to the end) / reward_scale, along the last axis."""
    rewards = torch.as_tensor(rewards, dtype=torch.float32)
    return rewards.flip(-1).cumsum(-1).flip(-1) / reward_scale


def previous(values: torch.Tensor, fill: float | int) -> torch.Tensor:
    """Shift right by one step along T of (B, T, ...): the inputs r_{t-1} / a_{t-1}, ``fill`` at t = 0."""
    first = torch.full_like(values[:, :1], fill)
    return torch.cat([first, values[:, :-1]], dim=1)


def state_size(space: gym.Space) -> int:
    """Length of the state vector a (non-image) observation space becomes: its flattened size, or for a
    1-D MultiDiscrete space the total length of its one-hot codes (``sum(nvec)``)."""
    if isinstance(space, gym.spaces.MultiDiscrete):
        return int(space.nvec.sum())
    return int(np.prod(space.shape))


def one_hot_multi_discrete(obs: torch.Tensor, space: gym.spaces.MultiDiscrete) -> torch.Tensor:
    """(N, k) integer observations of a 1-D MultiDiscrete space -> (N, sum(nvec)) float32, one one-hot
    code per component, concatenated (as Stable-Baselines3 feeds MultiDiscrete observations)."""
    values = obs.long() - torch.as_tensor(space.start, dtype=torch.long)
    nvec = torch.as_tensor(space.nvec, dtype=torch.long)
    if ((values < 0) | (values >= nvec)).any():
        row = int(((values < 0) | (values >= nvec)).any(dim=1).nonzero()[0, 0])
        raise ValueError(f"observation {obs[row].tolist()} lies outside the observation space {space}")
    codes = [F.one_hot(values[:, i], int(n)) for i, n in enumerate(space.nvec)]
    return torch.cat(codes, dim=1).to(torch.float32)


class ObservationAdapter:
    """Turns a batch of env observations into the model's state input, validating them.

    Vector spaces (1-D Box) -> float32 (N, S); 1-D MultiDiscrete spaces (e.g. a grid cell) -> the
    concatenated one-hot codes of their components, float32 (N, sum(nvec)); image spaces (uint8 Box,
    HWC or CHW) -> uint8 (N, C, H, W) with the model's ``image_shape``.
    """

    def __init__(self, space: gym.Space, image_shape: tuple[int, int, int] | None = None, max_state_dim: int = 204,
                 preprocessing: Preprocessing | None = None):
        multi_discrete = isinstance(space, gym.spaces.MultiDiscrete) and len(space.shape) == 1
        if not (isinstance(space, gym.spaces.Box) or multi_discrete):
            raise TypeError(f"unsupported observation space {space}: use a Box (vector or uint8 image) or a 1-D MultiDiscrete")
        self.space = space
        self.is_image = space.dtype == np.uint8 and len(space.shape) == 3
        self.image_shape = image_shape
        if self.is_image and image_shape is None:
            raise ValueError(f"image observations {space.shape} need a model with an image encoder (config.image_shape)")
        if not self.is_image:
            size = state_size(space)
            if size > max_state_dim:
                raise ValueError(f"observations of {size} dims exceed the model's max_state_dim={max_state_dim}")
        pre = preprocessing or Preprocessing()
        self.mean = None if pre.obs_mean is None else torch.tensor(pre.obs_mean, dtype=torch.float32)
        self.std = None if pre.obs_std is None else torch.tensor(pre.obs_std, dtype=torch.float32)

    def __call__(self, obs: np.ndarray | torch.Tensor) -> torch.Tensor:
        """obs: (N, *space.shape) -> model states (N, S) or (N, C, H, W)."""
        obs = np.asarray(obs)
        if obs.dtype.kind not in "biuf":
            raise TypeError(f"observations must be numbers, got dtype {obs.dtype} (the space's dtype is {self.space.dtype})")
        obs = torch.as_tensor(obs)
        if tuple(obs.shape[1:]) != tuple(self.space.shape):
            raise ValueError(f"observation batch of shape {tuple(obs.shape)}; expected (N, {', '.join(map(str, self.space.shape))})")
        if self.is_image:
            if obs.dtype != torch.uint8:
                raise TypeError(f"image observations must be uint8, got {obs.dtype}")
            return to_model_image(obs, self.image_shape)
        if isinstance(self.space, gym.spaces.MultiDiscrete):
            if obs.dtype.is_floating_point and not torch.equal(obs, obs.round()):
                raise ValueError(f"MultiDiscrete observations must be integers, got {obs[obs != obs.round()][0].item()}")
            return self._normalise(one_hot_multi_discrete(obs, self.space))
        obs = obs.reshape(obs.shape[0], -1)
        if obs.dtype.is_complex:
            raise TypeError(f"vector observations must be real numbers, got {obs.dtype}")
        obs = obs.to(torch.float32)
        finite = np.isfinite(obs.numpy()) if obs.device.type == "cpu" else torch.isfinite(obs)  # numpy: ~10x less overhead
        if not finite.all():
            bad = obs[~torch.as_tensor(finite)][0].item()
            raise ValueError(f"observation contains a non-finite value ({bad})")
        return self._normalise(obs)

    def _normalise(self, states: torch.Tensor) -> torch.Tensor:
        return states if self.mean is None else (states - self.mean) / self.std


def to_model_image(images: torch.Tensor, image_shape: tuple[int, int, int]) -> torch.Tensor:
    """uint8 (N, H, W, C) or (N, C, H, W) -> uint8 (N, *image_shape): grey-scale and resize as needed."""
    channels_last = images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3)
    x = images.permute(0, 3, 1, 2) if channels_last else images
    x = x.float()
    want_c, want_h, want_w = image_shape
    if x.shape[1] == 3 and want_c == 1:
        x = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    elif x.shape[1] != want_c:
        raise ValueError(f"images with {x.shape[1]} channels cannot feed a model expecting {want_c}")
    if tuple(x.shape[-2:]) != (want_h, want_w):
        x = F.interpolate(x, size=(want_h, want_w), mode="area")
    return x.round().clamp(0, 255).to(torch.uint8)


class ActionAdapter:
    """Converts between the env's action space and the head's action space ([-1, 1] or classes)."""

    def __init__(self, space: gym.Space):
        self.space = space
        self.spec = ActionSpec.from_space(space)
        if self.spec.kind == "continuous":
            self.low = torch.as_tensor(space.low, dtype=torch.float32)
            self.high = torch.as_tensor(space.high, dtype=torch.float32)

    def to_env(self, actions: torch.Tensor) -> np.ndarray:
        """Head actions (N,) ints or (N, d) in [-1, 1] -> env actions (N, ...) numpy."""
        if self.spec.kind == "discrete":
            return actions.cpu().numpy().astype(np.int64) + int(self.space.start)
        scaled = self.low + (actions.float().cpu() + 1.0) * 0.5 * (self.high - self.low)
        return scaled.numpy().astype(self.space.dtype)

    def to_model(self, actions: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Env actions (N, ...) -> (N,) int64 or (N, d) float32 in [-1, 1] (clipped to the bounds)."""
        actions = torch.as_tensor(np.asarray(actions))
        if self.spec.kind == "discrete":
            return actions.long().reshape(-1) - int(self.space.start)
        actions = actions.float().reshape(-1, self.spec.size)
        unit = 2.0 * (actions - self.low) / (self.high - self.low) - 1.0
        return unit.clamp(-1.0, 1.0)
