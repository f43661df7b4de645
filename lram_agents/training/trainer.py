"""The offline trainer: ``Trainer(model, config).fit(data, steps)``.

One optimizer step: ``grad_accum_steps`` micro-batches of ``batch_size`` windows (summed over ranks),
loss = action cross-entropy averaged over every valid timestep of the whole effective batch, AdamW,
global-norm clipping, the warm-up + cosine schedule. Under ``torchrun`` the model is wrapped in
DistributedDataParallel and every rank loads its share of the same global batch, so N processes
compute the same update as one process with the same global batch.

Run directory (``output_dir``): ``metrics.csv``, ``learning_curves.png``, ``trainer_config.json``,
``checkpoints/step-*`` (see :mod:`lram_agents.training.checkpoint`), ``model/`` (the final model with
its ``preprocessing.json``) and ``tensorboard/`` when TensorBoard is installed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from lram_agents.backbones.base import final_state_unread
from lram_agents.data.curriculum import CurriculumSampler
from lram_agents.data.dataset import TrajectoryDataset
from lram_agents.data.sampler import Batch, DataSource, TrajectorySampler
from lram_agents.model import LRAMModel
from lram_agents.preprocessing import multi_task_preprocessing
from lram_agents.segments import detach_state, segment_forward
from lram_agents.serialization import CheckpointError
from lram_agents.training import checkpoint as ckpt
from lram_agents.training.callbacks import Callback, CallbackList
from lram_agents.training.config import TrainerConfig
from lram_agents.training.distributed import DistInfo, all_gather, all_reduce_sum, barrier, init_distributed
from lram_agents.training.metrics import MetricsLogger
from lram_agents.training.schedule import warmup_cosine

logger = logging.getLogger(__name__)

Sampler = TrajectorySampler | CurriculumSampler
Data = Sampler | TrajectoryDataset | DataSource | Sequence[TrajectoryDataset | DataSource]
VALIDATION_SEED_OFFSET = 1_000_003  # validation batches never coincide with training batches


@dataclass
class TrainResult:
    """What ``fit`` did."""

    step: int
    loss: float | None  # mean training loss over the last logged interval
    val_loss: float | None
    stopped_early: bool  # a callback returned False
    output_dir: Path
    checkpoint: Path | None  # the last checkpoint written


class Trainer:
    """Trains an :class:`LRAMModel` offline on trajectory data (see the module docstring).

    Args:
        model: the model to train (its config decides the inputs the batches carry).
        config: hyper-parameters (LRAM's by default).
        output_dir: the run directory; ``fit(..., resume=True)`` continues the run found there.
        callbacks: :class:`Callback` objects with SB3-style hooks.
        device: "auto" (CUDA if available), "cpu", "cuda", ...; under torchrun each rank takes its GPU.
    """

    def __init__(self, model: LRAMModel, config: TrainerConfig | None = None, output_dir: str | Path = "runs/lram",
                 callbacks: Sequence[Callback] = (), device: str | torch.device = "auto"):
        self.model, self.config = model, config or TrainerConfig()
        self.output_dir = Path(output_dir)
        self.callback = CallbackList(callbacks)
        self.device_preference = device
        self.step, self.metrics = 0, {}
        self.dist: DistInfo | None = None
        self._last_checkpoint: Path | None = None

    @property
    def checkpoint_dir(self) -> Path:
        return self.output_dir / "checkpoints"

    # ---- the public entry point -----------------------------------------------------------------------
    def fit(self, data: Data, steps: int, validation: Data | None = None, resume: bool = False) -> TrainResult:
        """Train until optimizer step ``steps`` (the schedule's horizon), validating and checkpointing.

        Args:
            data: a :class:`TrajectorySampler` or :class:`CurriculumSampler`, or datasets / sources
                (one per domain, balanced in every batch) cut with ``config.context`` and ``config.windows``.
            steps: the total number of optimizer steps of the run (a resumed run counts on from its
                checkpoint's step).
            validation: held-out data (same kinds as ``data``); default: ``config.validation_fraction``
                of ``data``'s episodes, or none.
            resume: continue from the newest valid checkpoint in ``output_dir/checkpoints``.
        """
        cfg = self.config
        if cfg.warmup_steps >= steps / 2:
            warnings.warn(f"warmup_steps={cfg.warmup_steps} is {'longer than' if cfg.warmup_steps >= steps else 'over half of'} the run's "
                          f"{steps} steps: the learning rate stays below {cfg.learning_rate * min(1.0, steps / max(cfg.warmup_steps, 1)):.2g} "
                          f"(peak {cfg.learning_rate:g}) and the model barely trains; set TrainerConfig(warmup_steps=...) to a "
                          "small share of the steps (LRAM: 4,000 of 200,000)", stacklevel=2)
        self.dist = init_distributed(self.device_preference)
        if cfg.update_per_segment and self.dist.world_size > 1:
            raise ValueError(f"update_per_segment runs on one process; this run has {self.dist.world_size} ranks")
        if cfg.batch_size < self.dist.world_size:
            raise ValueError(f"batch_size={cfg.batch_size} is smaller than the {self.dist.world_size} ranks: every rank needs a window")
        if cfg.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
        self.sampler, self.val_sampler = self._samplers(data, validation)
        self.model.to(self.dist.device).train()
        self.optimizer = build_optimizer(self.model, cfg)
        self.scheduler = warmup_cosine(self.optimizer, cfg.warmup_steps, steps, cfg.learning_rate, cfg.min_learning_rate)
        self.step = self._restore(steps) if resume else self._fresh_start()
        self.total_steps = steps
        self._metrics_log = MetricsLogger(self.output_dir, self.step) if self.dist.is_main else None
        try:
            return self._train(steps)
        finally:
            if self._metrics_log is not None:
                self._metrics_log.close()

    def _train(self, steps: int) -> TrainResult:
        self.callback.init_callback(self)
        self.callback.on_training_start()
        objective = _Objective(self.model, self.config.segment_steps)
        if self.dist.world_size > 1:
            ids = [self.dist.device.index] if self.dist.device.type == "cuda" else None
            # a model with an image encoder or an action encoder leaves parts unused on some batches
            may_skip = self.model.image_encoder is not None or self.model.action_encoder is not None
            objective = DistributedDataParallel(objective, device_ids=ids, find_unused_parameters=may_skip)
        stopped = self._loop(objective, steps)
        if self._last_checkpoint is None or self._last_checkpoint.name != f"{ckpt.PREFIX}{self.step:08d}":
            self._checkpoint()
        self._save_final_model()
        self.callback.on_training_end()
        rows = self._metrics_log.rows if self._metrics_log else []
        last = lambda name: next((r[name] for r in reversed(rows) if r.get(name) is not None), None)  # noqa: E731
        return TrainResult(self.step, last("loss"), last("val_loss"), stopped, self.output_dir, self._last_checkpoint)

    # ---- data ---------------------------------------------------------------------------------------
    def _samplers(self, data: Data, validation: Data | None) -> tuple[Sampler, Sampler | None]:
        cfg = self.config
        if isinstance(data, (TrajectorySampler, CurriculumSampler)):
            if validation is None and cfg.validation_fraction > 0:
                raise ValueError("validation_fraction needs datasets, not a ready sampler: pass validation=... instead")
            train = data
        else:
            sources = self._sources(data)
            if validation is None and cfg.validation_fraction > 0:
                splits = [s.dataset.split(cfg.validation_fraction, seed=cfg.seed) for s in sources]
                sources, validation = ([_with_dataset(s, split[k]) for s, split in zip(sources, splits)] for k in (0, 1))
            train = TrajectorySampler(sources, self.model.config, cfg.batch_size, seed=cfg.seed)
        if validation is None or isinstance(validation, (TrajectorySampler, CurriculumSampler)):
            return train, validation
        val = TrajectorySampler(self._sources(validation), self.model.config, cfg.batch_size, seed=cfg.seed + VALIDATION_SEED_OFFSET)
        return train, val

    def _sources(self, data) -> list[DataSource]:
        items = [data] if isinstance(data, (TrajectoryDataset, DataSource)) else list(data)
        return [item if isinstance(item, DataSource) else DataSource(item, self.config.context, self.config.windows) for item in items]

    def _batches(self, first: int, last: int) -> Iterator[list[list[Batch]]]:
        """The micro-batches of every step in [first, last), prefetched by workers if configured."""
        steps = _StepBatches(self.sampler, first, last, self.config.grad_accum_steps, self.dist.rank, self.dist.world_size)
        if self.config.num_workers == 0:
            return (steps[i] for i in range(len(steps)))
        loader = torch.utils.data.DataLoader(steps, batch_size=None, shuffle=False, num_workers=self.config.num_workers,
                                             prefetch_factor=self.config.prefetch, collate_fn=_identity)
        return iter(loader)

    # ---- the loop -----------------------------------------------------------------------------------
    def _loop(self, objective: nn.Module, steps: int) -> bool:
        """Train from ``self.step`` to ``steps``; True if a callback stopped it."""
        cfg, interval = self.config, _Interval()
        bar = tqdm(total=steps, initial=self.step, disable=not (cfg.progress and self.dist.is_main), desc="train", unit="step")
        batches = self._batches(self.step, steps)
        try:
            while self.step < steps:
                begin = time.perf_counter()
                micro = next(batches)
                loaded, lr = time.perf_counter(), self.optimizer.param_groups[0]["lr"]  # the rate this step uses
                loss, grad_norm = self._train_step(objective, micro)
                self.step += 1
                interval.add(loss, grad_norm, loaded - begin, time.perf_counter() - loaded)
                self.metrics = {"loss": loss, "grad_norm": grad_norm, "lr": lr}
                self._after_step(interval, bar)
                if self.callback.on_step() is False:
                    return True
        finally:
            bar.close()
        return False

    def _after_step(self, interval: _Interval, bar: tqdm) -> None:
        cfg = self.config
        due_val = self.val_sampler is not None and (self.step % cfg.validation_every == 0 or self.step == self.total_steps)
        if due_val:
            self.metrics.update(self._validate())
        if self.step % cfg.log_every == 0 or due_val or self.step == self.total_steps:
            row = interval.flush(cfg.batch_size * cfg.grad_accum_steps)
            row.update({"lr": self.metrics["lr"], "val_loss": self.metrics.get("val_loss"), "val_perplexity": self.metrics.get("val_perplexity")})
            if self._metrics_log is not None:
                self._metrics_log.log(self.step, row)
            bar.set_postfix(loss=f"{row['loss']:.4f}", lr=f"{row['lr']:.2e}", refresh=False)
        bar.update(1)
        if self.step % cfg.checkpoint_every == 0:
            self._checkpoint()

    def _train_step(self, objective: nn.Module, micro: list[list[Batch]]) -> tuple[float, float]:
        """One optimizer step over the micro-batches; returns (global mean loss, gradient norm)."""
        if self.config.update_per_segment:
            return self._segment_updates(micro[0])
        device, world = self.dist.device, self.dist.world_size
        local_count = sum(float(part.mask.sum()) for parts in micro for part in parts)
        count = float(all_reduce_sum(torch.tensor([local_count], dtype=torch.float64, device=device), self.dist).item())
        self.optimizer.zero_grad(set_to_none=True)
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        for i, parts in enumerate(micro):
            last = i == len(micro) - 1
            sync = contextlib.nullcontext() if last or world == 1 else objective.no_sync()
            with sync:
                with self._autocast():
                    summed = objective([p.to(device) for p in parts])
                (summed * (world / count)).backward()  # DDP averages over ranks: scale to a global mean
            loss_sum += summed.detach().double()
        loss = float(all_reduce_sum(loss_sum.reshape(1), self.dist).item()) / count
        if not math.isfinite(loss):
            raise FloatingPointError(f"the training loss is {loss} at step {self.step + 1}; the last checkpoint is intact")
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip))
        self.optimizer.step()
        self.scheduler.step()
        return loss, grad_norm

    def _segment_updates(self, parts: list[Batch]) -> tuple[float, float]:
        """RATE's update rule: an optimizer update per segment of K timesteps, each segment starting from the
        state the previous one left (detached, computed before that update); the schedule moves once.
        Returns the windows' mean loss and the mean gradient norm of the updates."""
        parts = [p.to(self.dist.device) for p in parts]
        states = [None] * len(parts)
        K, T = self.config.segment_steps, max(p.mask.shape[1] for p in parts)
        loss_sum, count, norms = 0.0, 0.0, []
        for start in range(0, T, K):
            self.optimizer.zero_grad(set_to_none=True)
            summed, segment_count = torch.zeros((), device=self.dist.device), 0.0
            for j, part in enumerate(parts):
                if start >= part.mask.shape[1]:
                    continue
                seg = slice(start, start + K)
                with self._autocast():
                    out = self.model(part.inputs.map(lambda t: t[:, seg]), states[j])
                states[j] = detach_state(out.state)
                mask = part.mask[:, seg]
                if mask.any():  # a segment of padding only (a shorter episode's tail) teaches nothing
                    mean = self.model.head.loss(out.logits.float(), part.actions[:, seg], part.spec, mask, part.action_sizes)
                    summed, segment_count = summed + mean * mask.sum(), segment_count + float(mask.sum())
            if segment_count == 0:
                continue
            (summed / segment_count).backward()
            norms.append(float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)))
            self.optimizer.step()
            loss_sum, count = loss_sum + float(summed.detach()), count + segment_count
        loss = loss_sum / count if count else float("nan")
        if not math.isfinite(loss):
            raise FloatingPointError(f"the training loss is {loss} at step {self.step + 1}; the last checkpoint is intact")
        self.scheduler.step()
        return loss, sum(norms) / len(norms)

    def _autocast(self):
        precision, device = self.config.precision, self.dist.device
        if precision == "auto":
            precision = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")

    @torch.no_grad()
    def _validate(self) -> dict[str, float]:
        """Mean action cross-entropy and perplexity over ``validation_batches`` fixed held-out batches."""
        self.model.eval()
        sums = torch.zeros(2, dtype=torch.float64, device=self.dist.device)
        for i in range(self.config.validation_batches):
            for part in self.val_sampler.batch(i, self.dist.rank, self.dist.world_size):
                part = part.to(self.dist.device)
                with self._autocast(), final_state_unread():
                    logits = self.model(part.inputs).logits
                mean = self.model.head.loss(logits.float(), part.actions, part.spec, part.mask, part.action_sizes)
                count = part.mask.sum()
                sums += torch.stack([mean.double() * count, count.double()])
        self.model.train()
        total, count = all_reduce_sum(sums, self.dist).tolist()
        val_loss = total / count
        return {"val_loss": val_loss, "val_perplexity": math.exp(min(val_loss, 700.0))}

    # ---- state ------------------------------------------------------------------------------------------
    def _fresh_start(self) -> int:
        if ckpt.list_checkpoints(self.checkpoint_dir):
            raise CheckpointError(f"{self.checkpoint_dir} already holds checkpoints: resume the run (resume=True, lram train --resume) "
                                  "or choose another output_dir")
        torch.manual_seed(self.config.seed + self.dist.rank)
        if self.dist.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            self.config.save(self.output_dir / "trainer_config.json")
        return 0

    def _restore(self, steps: int) -> int:
        path = ckpt.latest_valid_checkpoint(self.checkpoint_dir)
        if path is None:
            raise CheckpointError(f"nothing to resume: no valid checkpoint in {self.checkpoint_dir}")
        state, rng = ckpt.load_checkpoint(path, self.model, self.optimizer, self.scheduler)
        self._check_same_run(state, path)
        if self.scheduler.lr_lambdas[0].total_steps != steps:
            logger.warning("resuming with steps=%d instead of %d: the cosine schedule is stretched to the new horizon",
                           steps, self.scheduler.lr_lambdas[0].total_steps)
            self.scheduler.lr_lambdas[0].total_steps = steps
        self._set_torch_rng(rng)
        if self.dist.is_main:
            logger.info("resumed from %s at step %d", path, state["step"])
        return int(state["step"])

    def _check_same_run(self, state: dict[str, Any], path: Path) -> None:
        """Refuse to resume a run whose data, model or accumulation changed (it could not reproduce)."""
        now = {"sampler": self.sampler.state_dict(), "model_config": self.model.config.to_dict(), "grad_accum_steps": self.config.grad_accum_steps}
        for key, value in now.items():
            if json.loads(json.dumps(value)) != state.get(key):
                raise CheckpointError(f"cannot resume from {path}: {key} differs from the checkpoint's\n  now:   {value}\n  saved: {state.get(key)}")
        if state.get("world_size") != self.dist.world_size:
            logger.warning("resuming on %d ranks, the checkpoint was written by %d: batches are the same, "
                           "float sums may differ in the last bits", self.dist.world_size, state.get("world_size"))

    def _rng_tensors(self) -> dict[str, torch.Tensor]:
        device = self.dist.device
        gather_device = device if device.type == "cuda" else torch.device("cpu")
        states = {"torch_cpu": torch.get_rng_state()}
        if device.type == "cuda":
            states["torch_cuda"] = torch.cuda.get_rng_state(device)
        out = {}
        for name, state in states.items():
            for rank, tensor in enumerate(all_gather(state.to(gather_device), self.dist)):
                out[f"{name}.rank{rank}"] = tensor.cpu()
        return out

    def _set_torch_rng(self, rng: dict[str, torch.Tensor]) -> None:
        rank = self.dist.rank if f"torch_cpu.rank{self.dist.rank}" in rng else 0
        torch.set_rng_state(rng[f"torch_cpu.rank{rank}"])
        if self.dist.device.type == "cuda" and f"torch_cuda.rank{rank}" in rng:
            torch.cuda.set_rng_state(rng[f"torch_cuda.rank{rank}"], self.dist.device)

    def _checkpoint(self) -> Path:
        rng = self._rng_tensors()  # a collective: every rank takes part
        path = self.checkpoint_dir / f"{ckpt.PREFIX}{self.step:08d}"
        if self.dist.is_main:
            extra = {"sampler": self.sampler.state_dict(), "model_config": self.model.config.to_dict(), "trainer_config": self.config.to_dict(),
                     "grad_accum_steps": self.config.grad_accum_steps, "world_size": self.dist.world_size, "total_steps": self.total_steps}
            path = ckpt.save_checkpoint(self.checkpoint_dir, self.step, self.model, self.optimizer, self.scheduler, rng, extra)
            ckpt.prune_checkpoints(self.checkpoint_dir, self.config.keep_checkpoints)
            self._metrics_log.plot()
        barrier(self.dist)
        self._last_checkpoint = path
        return path

    def _save_final_model(self) -> None:
        if not self.dist.is_main:
            return
        directory = self.output_dir / "model"
        self.model.save_pretrained(directory)
        sources = self.sampler.sources
        if len(sources) == 1:
            sources[0].preprocessing.save(directory)
        elif all(s.dataset.env_id for s in sources):  # a multi-task model: each task's numbers by env id
            multi_task_preprocessing([(s.dataset.env_id, s.dataset.domain, s.preprocessing) for s in sources]).save(directory)
        self._metrics_log.plot()


class _Objective(nn.Module):
    """Summed action cross-entropy over the valid steps of a list of batch parts (one DDP forward).

    ``segment_steps``: run each window as segments of K timesteps with the recurrent state detached
    between them (RATE's procedure, :func:`lram_agents.segments.segment_forward`); None: one forward.
    """

    def __init__(self, model: LRAMModel, segment_steps: int | None = None):
        super().__init__()
        self.model, self.segment_steps = model, segment_steps

    def forward(self, parts: list[Batch]) -> torch.Tensor:
        total = torch.zeros((), device=parts[0].mask.device)
        for part in parts:
            if self.segment_steps is None:
                with final_state_unread():  # only the logits are read
                    logits = self.model(part.inputs).logits
            else:
                logits = segment_forward(self.model, part.inputs, self.segment_steps).logits
            mean = self.model.head.loss(logits.float(), part.actions, part.spec, part.mask, part.action_sizes)
            total = total + mean * part.mask.sum()
        return total


class _StepBatches(torch.utils.data.Dataset):
    """Item i: this rank's micro-batches of optimizer step ``first + i`` (a pure function of the step)."""

    def __init__(self, sampler: Sampler, first: int, last: int, accum: int, rank: int, world_size: int):
        self.sampler, self.first, self.last, self.accum, self.rank, self.world_size = sampler, first, last, accum, rank, world_size

    def __len__(self) -> int:
        return max(0, self.last - self.first)

    def __getitem__(self, i: int) -> list[list[Batch]]:
        step = self.first + i
        return [self.sampler.batch(step * self.accum + k, self.rank, self.world_size) for k in range(self.accum)]


def _identity(x):
    return x


class _Interval:
    """Averages of the steps since the last logged row."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.losses, self.norms, self.data_s, self.step_s, self.start = [], [], [], [], time.perf_counter()

    def add(self, loss: float, grad_norm: float, data_s: float, step_s: float) -> None:
        self.losses.append(loss)
        self.norms.append(grad_norm)
        self.data_s.append(data_s)
        self.step_s.append(step_s)

    def flush(self, windows_per_step: int) -> dict[str, float]:
        n, elapsed = len(self.losses), time.perf_counter() - self.start
        mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
        row = {"time_s": time.time(), "loss": mean(self.losses), "grad_norm": mean(self.norms), "data_s": mean(self.data_s),
               "step_s": mean(self.step_s), "steps_per_s": n / elapsed, "windows_per_s": n * windows_per_step / elapsed}
        self.reset()
        return row


def build_optimizer(model: nn.Module, config: TrainerConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices and embeddings (dim >= 2), none on biases and norm gains."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.learning_rate)


def _with_dataset(source: DataSource, dataset: TrajectoryDataset) -> DataSource:
    return DataSource(dataset, source.context, source.windows, source.preprocessing, source.weight)
