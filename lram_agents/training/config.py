"""The trainer's hyper-parameters: one dataclass, saved as ``trainer_config.json`` in the run directory."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lram_agents.config_utils import ConfigError, from_dict, require
from lram_agents.data.sampler import WINDOW_KINDS


@dataclass
class TrainerConfig:
    """Offline training settings; defaults are LRAM's (appendix B.1, Table 5).

    Attributes:
        learning_rate / min_learning_rate: peak and final rate of the linear warm-up + cosine schedule.
        warmup_steps: optimizer steps of linear warm-up (LRAM: 4000).
        weight_decay: AdamW decay, applied to weight matrices and embeddings (not biases / norms).
        grad_clip: maximum global gradient norm (LRAM: 0.25).
        batch_size: windows per micro-batch, summed over all ranks (LRAM: 128).
        grad_accum_steps: micro-batches per optimizer step (effective batch = batch_size x this).
        context / windows: how windows are cut when ``fit`` is given datasets (see data.sampler).
        segment_steps: train segment-wise: every window runs as segments of K timesteps with the
            recurrent state detached between them (RATE's procedure, ``segments.segment_forward``);
            ``None`` (default): one forward over the window, gradients through all of it.
        update_per_segment: with ``segment_steps``, one optimizer update per segment instead of one per
            window (RATE section 3: "the model is trained on each NK full segment in N steps"; the authors'
            T-Maze trainer steps AdamW after every segment). Each segment starts from the previous one's
            state, detached; the learning-rate schedule still moves once per window (one trainer step).
        precision: "auto" (bf16 autocast on CUDA with bf16 support, fp32 otherwise), "fp32" or "bf16".
        seed: seeds the batches (with the step) and torch's RNG at the start of a fresh run.
        validation_fraction: share of episodes/histories held out when no validation data is given.
        validation_every / validation_batches: how often and on how many fixed batches to validate.
        log_every: steps between rows of metrics.csv (losses are averaged over them).
        checkpoint_every / keep_checkpoints: full training state every N steps, the newest K kept.
        num_workers: data-loading worker processes (0: load in the training process).
        prefetch: steps each worker loads ahead.
        deterministic: ``torch.use_deterministic_algorithms(True)`` (bitwise-reproducible runs).
        progress: show a tqdm progress bar (rank 0).
    """

    learning_rate: float = 1e-4
    min_learning_rate: float = 1e-6
    warmup_steps: int = 4000
    weight_decay: float = 0.01
    grad_clip: float = 0.25
    batch_size: int = 128
    grad_accum_steps: int = 1
    context: int = 50
    windows: Literal["subtrajectory", "from_start", "across_episodes"] = "subtrajectory"
    segment_steps: int | None = None
    update_per_segment: bool = False
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    seed: int = 0
    validation_fraction: float = 0.0
    validation_every: int = 1000
    validation_batches: int = 8
    log_every: int = 10
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2
    num_workers: int = 0
    prefetch: int = 2
    deterministic: bool = False
    progress: bool = True

    def __post_init__(self):
        require(self.learning_rate > 0, "learning_rate", self.learning_rate, "must be > 0")
        require(0 <= self.min_learning_rate <= self.learning_rate, "min_learning_rate", self.min_learning_rate, "must be in [0, learning_rate]")
        for name in ("warmup_steps", "num_workers"):
            require(getattr(self, name) >= 0, name, getattr(self, name), "must be >= 0")
        for name in ("batch_size", "grad_accum_steps", "context", "validation_every", "validation_batches", "log_every",
                     "checkpoint_every", "keep_checkpoints", "prefetch"):
            require(getattr(self, name) >= 1, name, getattr(self, name), "must be >= 1")
        require(self.segment_steps is None or self.segment_steps >= 1, "segment_steps", self.segment_steps, "must be >= 1 or None")
        if self.update_per_segment:
            require(self.segment_steps is not None, "update_per_segment", self.update_per_segment, "needs segment_steps")
            require(self.grad_accum_steps == 1, "update_per_segment", self.update_per_segment,
                    f"updates after every segment, so it cannot accumulate micro-batches (grad_accum_steps={self.grad_accum_steps})")
        require(self.weight_decay >= 0, "weight_decay", self.weight_decay, "must be >= 0")
        require(self.grad_clip > 0, "grad_clip", self.grad_clip, "must be > 0 (LRAM: 0.25)")
        require(self.windows in WINDOW_KINDS, "windows", self.windows, f"must be one of {list(WINDOW_KINDS)}")
        require(self.precision in ("auto", "fp32", "bf16"), "precision", self.precision, "must be 'auto', 'fp32' or 'bf16'")
        require(0.0 <= self.validation_fraction < 1.0, "validation_fraction", self.validation_fraction, "must be in [0, 1)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainerConfig:
        return from_dict(cls, data, where=" in 'trainer'")

    def save(self, path: str | Path) -> None:
        from lram_agents.serialization import atomic_write_text

        atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> TrainerConfig:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path} is not valid JSON: {err}") from None
