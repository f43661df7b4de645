"""Training batches cut from trajectory datasets: windows of C timesteps turned into model inputs.

Three ways to cut windows (``DataSource.windows``):

* ``"subtrajectory"`` (LRAM / Decision Transformer): C consecutive steps inside one episode; episodes
  are drawn with probability proportional to their length and the start uniformly in [0, T - C], so
  every window is full unless the episode is shorter than C (then it is padded at the end).
* ``"from_start"`` (RATE): the first C = N·K steps of an episode, episodes drawn uniformly; a model
  that processes N segments of K steps splits the window itself.
* ``"across_episodes"`` (Algorithm Distillation): C consecutive steps of a learning history (its
  episodes in ``episode_index`` order), crossing episode boundaries; histories drawn proportionally to
  their length. The model's memory is carried across episodes inside a window.

Token inputs (see :mod:`lram_agents.model`): ``prev_rewards`` is r_{t-1} and ``prev_actions`` is
a_{t-1}. Inside a window they are the previous row (so at an episode boundary inside an
``across_episodes`` window they are the last reward / action of the previous episode: the model sees
every reward of the history, including a final one). At the first row of a window they are the true
previous step when the window starts inside an episode, or, for ``across_episodes``, when it starts
at an episode that has a predecessor in its history; otherwise 0 / ``no_action`` (a fresh start).
An agent acting with memory kept across episodes therefore passes the previous episode's last
reward (and action) with the first observation of a new episode. Returns-to-go restart at every
episode: R̂_t = (sum of the episode's rewards from t on) / reward_scale.

Determinism: :meth:`TrajectorySampler.batch` is a pure function of ``(seed, step)``, so the sampler's
random state is its seed and the step counter, batches can be prefetched by worker processes, and a
resumed run sees the same batches. Under DistributedDataParallel every rank plans the same global
batch and loads only its rows (``rank::world_size``).

Only the fields of the model's token layout (``config.input_fields``) are filled; ``prev_states``
(s_{t-1}, the transition token) follows the same rule as ``prev_rewards``: zeros at a fresh start.

Adding inputs for another token layout (e.g. s_{t+1} for a transition token, segment ids for RATE):
read the extra field in :func:`_read_window` into :class:`_WindowData`, stack it in
:meth:`TrajectorySampler._build` and add it to :class:`Batch`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from lram_agents.action_head import ActionSpec
from lram_agents.config import LRAMConfig
from lram_agents.data.dataset import TrajectoryDataset
from lram_agents.data.format import DatasetError
from lram_agents.model import Timesteps
from lram_agents.preprocessing import (ActionAdapter, ObservationAdapter, Preprocessing, previous, returns_to_go, state_size,
                                      to_model_image)

WindowKind = Literal["subtrajectory", "from_start", "across_episodes"]
WINDOW_KINDS = ("subtrajectory", "from_start", "across_episodes")


@dataclass
class DataSource:
    """One dataset (one domain) and how windows are cut from it.

    Attributes:
        dataset: the episodes.
        context: C, timesteps per window (LRAM: 50; RATE: N·K; AD: e.g. two episodes).
        windows: see the module docstring.
        preprocessing: reward scale and observation normalisation (default: the dataset's).
        weight: share of every batch relative to the other sources (balanced mixing: all 1).
    """

    dataset: TrajectoryDataset
    context: int = 50
    windows: WindowKind = "subtrajectory"
    preprocessing: Preprocessing | None = None
    weight: float = 1.0
    sequences: list[np.ndarray] = field(init=False, repr=False)
    sequence_lengths: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        if self.windows not in WINDOW_KINDS:
            raise ValueError(f"windows={self.windows!r}: choose from {list(WINDOW_KINDS)}")
        if self.context < 1:
            raise ValueError(f"context must be >= 1 timestep, got {self.context}")
        if not (math.isfinite(self.weight) and self.weight > 0):
            raise ValueError(f"weight must be > 0, got {self.weight}")
        self.preprocessing = self.preprocessing or self.dataset.preprocessing()
        if self.windows == "across_episodes":
            self.sequences = self.dataset.histories()
        else:
            self.sequences = [np.array([i]) for i in range(self.dataset.num_episodes)]
        self.sequence_lengths = np.array([self.dataset.table.length[s].sum() for s in self.sequences], dtype=np.int64)

    @property
    def name(self) -> str:
        return self.dataset.name


class Window(NamedTuple):
    """Which steps one batch row reads: ``context`` steps of a sequence from ``offset`` on."""

    source: int
    sequence: int
    offset: int


@dataclass
class Batch:
    """Model inputs and targets for B windows of one action space (one or more sources).

    Attributes:
        inputs: the model's :class:`Timesteps`.
        actions: targets a_t, (B, T) int64 (discrete) or (B, T, d) float32 in [-1, 1].
        mask: (B, T) bool, False on padding after a sequence's end.
        episode_starts: (B, T) bool, True where s_t is the first observation of an episode.
        spec: which part of the shared action head the targets use (for merged rows of several sizes:
            the largest; continuous targets are zero-padded to it).
        source: the name(s) of the datasets the rows came from.
        action_sizes: (B,) int64, each row's own number of discrete actions or continuous dimensions,
            when rows of different sizes share the batch (``None``: all rows have ``spec.size``).
    """

    inputs: Timesteps
    actions: torch.Tensor
    mask: torch.Tensor
    episode_starts: torch.Tensor
    spec: ActionSpec
    source: str
    action_sizes: torch.Tensor | None = None

    @property
    def size(self) -> int:
        return int(self.mask.shape[0])

    def to(self, device: torch.device | str) -> Batch:
        sizes = None if self.action_sizes is None else self.action_sizes.to(device)
        return Batch(self.inputs.to(device), self.actions.to(device), self.mask.to(device), self.episode_starts.to(device), self.spec,
                     self.source, sizes)


@dataclass
class _WindowData:
    """One window's raw arrays (env units), before batching."""

    observations: np.ndarray  # (C, *obs_shape)
    actions: np.ndarray  # (C, *act_shape)
    rewards: np.ndarray  # (C,)
    returns_to_go: np.ndarray  # (C,) already divided by the reward scale
    mask: np.ndarray  # (C,) bool
    episode_starts: np.ndarray  # (C,) bool
    prev_reward: float  # r before the first row (0 at a fresh start)
    prev_action: np.ndarray | None  # a before the first row; None at a fresh start
    prev_observation: np.ndarray | None  # s before the first row; None at a fresh start


class TrajectorySampler:
    """Batches for a model from one or more :class:`DataSource` (balanced within every batch).

    Args:
        sources: one source or several (one per domain); each batch holds ``batch_size`` rows split
            between them in proportion to their weights (equal by default).
        model_config: the model the batches feed; checked against every dataset's spaces here.
        batch_size: rows per batch, summed over all ranks.
        seed: the batches of step ``s`` depend only on ``(seed, s)``.

    :meth:`batch` returns a list of :class:`Batch`, one per group of sources that share an action
    space and observation shape (different domains cannot share one tensor); the trainer sums their
    losses.
    """

    def __init__(self, sources: DataSource | Sequence[DataSource], model_config: LRAMConfig, batch_size: int, seed: int = 0):
        self.sources = [sources] if isinstance(sources, DataSource) else list(sources)
        if not self.sources:
            raise DatasetError("a sampler needs at least one data source")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.config, self.batch_size, self.seed = model_config, batch_size, seed
        for source in self.sources:
            check_compatible(source.dataset, model_config)
        self._obs = [ObservationAdapter(s.dataset.observation_space, model_config.image_shape, model_config.max_state_dim, s.preprocessing)
                     for s in self.sources]
        self._act = [ActionAdapter(s.dataset.action_space) for s in self.sources]

    # ---- planning: which windows (cheap, deterministic) ----------------------------------------
    def plan(self, step: int) -> list[Window]:
        """The windows of the global batch of ``step``, grouped by source."""
        rng = np.random.default_rng([self.seed, step])
        windows: list[Window] = []
        for i, count in enumerate(self._counts(step)):
            windows += self._plan_source(i, count, rng)
        return windows

    def _counts(self, step: int) -> list[int]:
        """Rows per source: systematic sampling of the weights' shares with an offset drawn from
        ``(seed, step)``. Every source gets the floor or the ceiling of its share (in expectation exactly
        its share, also when shares are below one row), and so does every run of consecutive sources:
        a domain listed as many task sources of weight 1/n each gets its domain's share in every batch."""
        weights = np.array([s.weight for s in self.sources], dtype=np.float64)
        edges = np.concatenate([[0.0], np.cumsum(self.batch_size * weights / weights.sum())])
        edges[-1] = self.batch_size  # no rounding drift at the end
        offset = np.random.default_rng([self.seed, step, 1]).random()
        return np.diff(np.floor(edges + offset)).astype(int).tolist()

    def _plan_source(self, i: int, count: int, rng: np.random.Generator) -> list[Window]:
        source = self.sources[i]
        lengths = source.sequence_lengths
        if source.windows == "from_start":
            sequences = rng.integers(0, len(lengths), size=count)
            offsets = np.zeros(count, dtype=np.int64)
        else:
            sequences = rng.choice(len(lengths), size=count, p=lengths / lengths.sum())
            offsets = rng.integers(0, np.maximum(lengths[sequences] - source.context, 0) + 1)
        return [Window(i, int(s), int(o)) for s, o in zip(sequences, offsets)]

    # ---- loading: read and convert ----------------------------------------------------------------
    def batch(self, step: int, rank: int = 0, world_size: int = 1) -> list[Batch]:
        """This rank's share of the batch of ``step`` (all of it when ``world_size == 1``)."""
        return self.load(self.plan(step)[rank::world_size])

    def load(self, windows: Sequence[Window]) -> list[Batch]:
        """Read ``windows`` and build one :class:`Batch` per compatible group of sources."""
        parts = []
        for i, source in enumerate(self.sources):
            mine = [w for w in windows if w.source == i]
            if mine:
                data = [_read_window(source, w) for w in mine]
                parts.append(self._build(i, data))
        return merge_compatible(parts)

    def _build(self, i: int, windows: list[_WindowData]) -> Batch:
        source, config = self.sources[i], self.config
        stack = lambda name: np.stack([getattr(w, name) for w in windows])  # noqa: E731
        B, C = len(windows), source.context
        states = self._states(i, stack("observations"))
        actions = self._act[i].to_model(stack("actions").reshape(B * C, *source.dataset.action_space.shape)).reshape(B, C, -1)
        spec = self._act[i].spec
        actions = actions.squeeze(-1) if spec.kind == "discrete" else actions
        scale = source.preprocessing.reward_scale
        prev_rewards = previous(torch.from_numpy(stack("rewards")).float() / scale, 0.0)
        prev_rewards[:, 0] = torch.tensor([w.prev_reward for w in windows], dtype=torch.float32) / scale
        inputs = {"states": states}  # only the fields of the model's token layout
        if config.needs_returns_to_go:
            inputs["returns_to_go"] = torch.from_numpy(stack("returns_to_go")).float()
        if config.needs_prev_rewards:
            inputs["prev_rewards"] = prev_rewards
        if config.needs_prev_actions:
            inputs["prev_actions"] = self._prev_actions(i, actions, windows)
        if config.needs_prev_states:
            inputs["prev_states"] = self._prev_states(i, states, windows)
        inputs = Timesteps(**inputs)
        return Batch(inputs, actions, torch.from_numpy(stack("mask")), torch.from_numpy(stack("episode_starts")), spec, source.name)

    def _states(self, i: int, observations: np.ndarray) -> torch.Tensor:
        """(B, C, *obs_shape) env observations -> model states (B, C, S) float or (B, C, *image_shape) uint8."""
        B, C = observations.shape[:2]
        flat = observations.reshape(B * C, *observations.shape[2:])
        if self._obs[i].is_image:
            return images_to_model(torch.from_numpy(flat), self.config.image_shape).view(B, C, *self.config.image_shape)
        return self._obs[i](flat).view(B, C, -1)

    def _prev_actions(self, i: int, actions: torch.Tensor, windows: list[_WindowData]) -> torch.Tensor:
        discrete = self._act[i].spec.kind == "discrete"
        fill = self.config.num_discrete_actions if discrete else 0.0  # the action encoder's "no action"
        prev = previous(actions, fill)
        for row, w in enumerate(windows):
            if w.prev_action is not None:
                prev[row, 0] = self._act[i].to_model(w.prev_action[None])[0]
        return prev

    def _prev_states(self, i: int, states: torch.Tensor, windows: list[_WindowData]) -> torch.Tensor:
        """s_{t-1} for the transition token: zeros at a fresh start, as the agent feeds them."""
        prev = previous(states, 0)
        for row, w in enumerate(windows):
            if w.prev_observation is not None:
                prev[row, 0] = self._states(i, w.prev_observation[None, None])[0, 0]
        return prev

    # ---- state ----------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """What determines the batches besides the step (checked when a run resumes)."""
        return {"seed": self.seed, "batch_size": self.batch_size,
                "sources": [{"name": s.name, "episodes": s.dataset.num_episodes, "context": s.context, "windows": s.windows,
                             "weight": s.weight} for s in self.sources]}


def images_to_model(images: torch.Tensor, image_shape: tuple[int, int, int]) -> torch.Tensor:
    """uint8 (N, C, H, W) or (N, H, W, C) frames already of the model's size -> (N, *image_shape).

    The fast path of :func:`lram_agents.preprocessing.to_model_image` (no float round trip) for
    frames whose shape matches (``check_compatible`` guarantees it); falls back to it otherwise.
    """
    if tuple(images.shape[1:]) == tuple(image_shape):
        return images
    c, h, w = image_shape
    if tuple(images.shape[1:]) == (h, w, c):
        return images.permute(0, 3, 1, 2).contiguous()
    return to_model_image(images, image_shape)


def merge_compatible(parts: list[Batch]) -> list[Batch]:
    """Concatenate parts that can share one forward pass (fewer, larger passes): the same kind of
    action and of state (vectors, or images of one shape). Vector states of different lengths are
    zero-padded to the longest (the state encoder pads them the same way), and action spaces of
    different sizes share the batch with per-row ``action_sizes`` (the loss then uses each row's own part)."""
    groups: dict[tuple, list[Batch]] = {}
    for part in parts:
        s = part.inputs.states
        shape = tuple(s.shape[2:]) if s.dtype == torch.uint8 else "vector"
        key = (part.spec.kind, shape, s.dtype, part.inputs.prev_actions is None)
        groups.setdefault(key, []).append(part)
    return [group[0] if len(group) == 1 else _concatenate(group) for group in groups.values()]


def _concatenate(parts: list[Batch]) -> Batch:
    spec = max((p.spec for p in parts), key=lambda s: s.size)
    state_size = max(p.inputs.states.shape[-1] for p in parts) if parts[0].inputs.states.dtype != torch.uint8 else None

    def pad(tensor: torch.Tensor | None, name: str) -> torch.Tensor | None:
        if tensor is None:
            return None
        if name in ("states", "prev_states") and state_size is not None:
            return F.pad(tensor, (0, state_size - tensor.shape[-1]))
        if name in ("actions", "prev_actions") and spec.kind == "continuous":
            return F.pad(tensor, (0, spec.size - tensor.shape[-1]))  # zeros: valid targets, masked out of the loss
        return tensor

    cat = lambda name, tensors: None if tensors[0] is None else torch.cat([pad(t, name) for t in tensors])  # noqa: E731
    inputs = Timesteps(*(cat(f.name, [getattr(p.inputs, f.name) for p in parts]) for f in fields(Timesteps)))
    sizes = None
    if any(p.spec != spec or p.action_sizes is not None for p in parts):
        sizes = torch.cat([p.action_sizes if p.action_sizes is not None else torch.full((p.size,), p.spec.size) for p in parts])
    return Batch(inputs, cat("actions", [p.actions for p in parts]), cat("mask", [p.mask for p in parts]),
                 cat("episode_starts", [p.episode_starts for p in parts]), spec, "+".join(p.source for p in parts), sizes)


def check_compatible(dataset: TrajectoryDataset, config: LRAMConfig) -> None:
    """Raise :class:`DatasetError` naming the mismatch if ``dataset`` cannot feed a model of ``config``."""
    space, where = dataset.observation_space, f"dataset {dataset.name}"
    if dataset.is_image:
        if config.image_shape is None:
            raise DatasetError(f"{where} has image observations {space.shape} but the model has no image encoder (config.image_shape is None)")
        c, h, w = config.image_shape
        if tuple(space.shape) not in ((c, h, w), (h, w, c)):
            raise DatasetError(f"{where} has images of shape {space.shape}; the model expects {config.image_shape} (CHW) or {(h, w, c)} "
                               "(HWC): record with TrajectoryWriter(image_shape=...) to convert the frames once")
    else:
        size = state_size(space)
        if size > config.max_state_dim:
            raise DatasetError(f"{where} has {size}-dim observations, more than the model's max_state_dim={config.max_state_dim}")
    try:
        spec = ActionSpec.from_space(dataset.action_space)
    except TypeError as err:
        raise DatasetError(f"{where}: {err}") from None
    limit = config.num_discrete_actions if spec.kind == "discrete" else config.max_action_dims
    if spec.size > limit:
        what = "num_discrete_actions" if spec.kind == "discrete" else "max_action_dims"
        raise DatasetError(f"{where} has a {spec.kind} action space of size {spec.size}, more than the model's {what}={limit}")


# ---- reading one window ------------------------------------------------------------------------------
def _read_window(source: DataSource, window: Window) -> _WindowData:
    """Read the steps of ``window`` from the episodes of its sequence, padding after the end."""
    dataset, C = source.dataset, source.context
    episodes = source.sequences[window.sequence]
    lengths = dataset.table.length[episodes]
    starts = np.concatenate([[0], np.cumsum(lengths)])
    k = int(np.searchsorted(starts, window.offset, side="right") - 1)
    local = window.offset - int(starts[k])
    prev_reward, prev_action, prev_observation = _before(source, episodes, k, local)
    pieces, filled = [], 0
    while filled < C and k < len(episodes):
        n = min(C - filled, int(lengths[k]) - local)
        pieces.append(_read_piece(source, int(episodes[k]), local, n))
        filled, k, local = filled + n, k + 1, 0
    return _assemble(pieces, C, prev_reward, prev_action, prev_observation)


def _before(source: DataSource, episodes: np.ndarray, k: int, local: int) -> tuple[float, np.ndarray | None, np.ndarray | None]:
    """The reward, action and observation of the step before the window's first row (see the module
    docstring); ``(0.0, None, None)`` at a fresh start."""
    dataset = source.dataset
    if local > 0:
        episode, at = int(episodes[k]), local - 1
    elif k > 0:  # only across_episodes sequences hold several episodes
        episode = int(episodes[k - 1])
        at = int(dataset.table.length[episode]) - 1
    else:
        return 0.0, None, None
    read = lambda name: dataset.read(episode, name, at, at + 1)[0]  # noqa: E731
    return float(read("rewards")), read("actions"), read("observations")


def _read_piece(source: DataSource, episode: int, start: int, n: int) -> dict[str, np.ndarray]:
    dataset = source.dataset
    rewards_to_end = dataset.read(episode, "rewards", start)  # R̂ needs the rest of the episode
    rtg = returns_to_go(rewards_to_end, source.preprocessing.reward_scale)[:n].numpy()
    starts = np.zeros(n, dtype=bool)
    starts[0] = start == 0
    return {"observations": dataset.read(episode, "observations", start, start + n), "actions": dataset.read(episode, "actions", start, start + n),
            "rewards": rewards_to_end[:n], "returns_to_go": rtg, "episode_starts": starts}


def _assemble(pieces: list[dict[str, np.ndarray]], C: int, prev_reward: float, prev_action: np.ndarray | None,
              prev_observation: np.ndarray | None) -> _WindowData:
    joined = {name: np.concatenate([p[name] for p in pieces]) for name in pieces[0]}
    n = len(joined["rewards"])
    pad = lambda a: a if n == C else np.concatenate([a, np.zeros((C - n, *a.shape[1:]), dtype=a.dtype)])  # noqa: E731
    mask = np.arange(C) < n
    return _WindowData(pad(joined["observations"]), pad(joined["actions"]), pad(joined["rewards"]), pad(joined["returns_to_go"]),
                       mask, pad(joined["episode_starts"]), prev_reward, prev_action, prev_observation)
