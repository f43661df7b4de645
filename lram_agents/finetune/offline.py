"""Offline fine-tuning of a pretrained model on a new task's trajectories, on the offline :class:`Trainer`.

    from lram_agents.finetune import FinetuneConfig, finetune
    result = finetune("xlstm-tmaze", "data/new_task", steps=2000,
                      config=FinetuneConfig(method="lora", top_fraction=0.05),
                      trainer_config=TrainerConfig(batch_size=32, warmup_steps=100), output_dir="runs/ft")
    agent = result.agent                      # also saved in runs/ft/model (lram_agents.load works on it)

Steps: load the pretrained agent (zoo name, saved directory or training checkpoint ``step-*``
directory), check that the new task's spaces fit its shared encoders and head
(:func:`~lram_agents.finetune.spaces.check_transfer`), keep the top ``top_fraction`` of the episodes
by return, wrap the model for the chosen method (full, or LoRA adapters with the rest frozen), and
train with :class:`~lram_agents.training.Trainer`: callbacks, atomic checkpoints, ``resume=True``.

The run directory holds the Trainer's files plus ``finetune.json`` (the fine-tuning settings, the
pretrained model's name and the selected episodes), checked again when a run resumes.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lram_agents.agent import Agent
from lram_agents.config_utils import require
from lram_agents.data.dataset import TrajectoryDataset
from lram_agents.data.sampler import DataSource, check_compatible
from lram_agents.finetune.config import FinetuneConfig
from lram_agents.data.selection import top_episodes
from lram_agents.finetune.spaces import check_transfer
from lram_agents.lora import load_base_weights, lora_parameter_names, merge_lora
from lram_agents.model import LRAMModel
from lram_agents.preprocessing import Preprocessing, reward_scale_for
from lram_agents.serialization import CheckpointError, atomic_write_text
from lram_agents.spaces import space_to_json
from lram_agents.training.callbacks import Callback
from lram_agents.training.checkpoint import list_checkpoints
from lram_agents.training.config import TrainerConfig
from lram_agents.training.trainer import Trainer, TrainResult

logger = logging.getLogger(__name__)

RUN_FILE = "finetune.json"
Pretrained = str | Path | Agent | LRAMModel


@dataclass
class FinetuneResult:
    """What :func:`finetune` did.

    Attributes:
        agent: the fine-tuned agent (its model merged when ``config.merge``), also saved in ``model_dir``.
        train: the Trainer's result (steps, losses, last checkpoint).
        model_dir: ``output_dir/model``.
        episodes_used / episodes_total: the selected episodes and all of the dataset's.
        spaces: how the new task's spaces map onto the model (see ``check_transfer``).
        trainable_parameters: how many weights were trained.
    """

    agent: Agent
    train: TrainResult
    model_dir: Path
    episodes_used: int
    episodes_total: int
    spaces: list[str]
    trainable_parameters: int


def finetune(pretrained: Pretrained, data: TrajectoryDataset | str | Path | Sequence[str | Path], steps: int,
             config: FinetuneConfig | None = None, trainer_config: TrainerConfig | None = None,
             output_dir: str | Path = "runs/finetune", callbacks: Sequence[Callback] = (), resume: bool = False,
             device: str | torch.device = "auto", validation: TrajectoryDataset | None = None) -> FinetuneResult:
    """Fine-tune ``pretrained`` on ``data`` for ``steps`` optimizer steps (see the module docstring).

    Args:
        pretrained: a zoo name or a directory (``lram_agents.load``), or an Agent / LRAMModel (copied,
            the original is left untouched; a bare model brings no preprocessing, so the defaults apply).
        data: the new task's trajectories (a dataset, or paths of trajectory files).
        steps: optimizer steps of the whole run (a resumed run counts on from its checkpoint).
        config: method, selection and conditioning (see :class:`FinetuneConfig`).
        trainer_config: the Trainer's settings; ``context`` and ``windows`` cut the training windows.
        callbacks: :class:`~lram_agents.training.Callback` objects (SB3-style hooks).
        resume: continue the run in ``output_dir`` from its newest checkpoint.
        validation: held-out episodes of the new task (default: ``trainer_config.validation_fraction``).
    """
    config, trainer_config = config or FinetuneConfig(), trainer_config or TrainerConfig()
    name, model, base_preprocessing = _load_pretrained(pretrained, device)
    dataset = data if isinstance(data, TrajectoryDataset) else TrajectoryDataset(data)
    spaces = check_transfer(model.config, dataset.observation_space, dataset.action_space)
    check_compatible(dataset, model.config)  # what the data files add (e.g. image sizes must match already)
    selected = top_episodes(dataset, config.top_fraction, config.per_task)
    preprocessing = finetuned_preprocessing(base_preprocessing, selected, config)
    model = prepare_model(model, config)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    for line in spaces:
        logger.info("%s", line)
    logger.info("fine-tuning %s (%s): %d of %d episodes, %d of %d weights trainable", name, config.method, selected.num_episodes,
                dataset.num_episodes, trainable, model.num_parameters())
    output_dir = Path(output_dir)
    _record_run(output_dir, _run_record(name, config, selected, dataset), resume)
    source = DataSource(selected, trainer_config.context, trainer_config.windows, preprocessing)
    trainer = Trainer(model, trainer_config, output_dir, callbacks, device)
    train = trainer.fit(source, steps, validation=validation, resume=resume)
    agent = Agent(merge_lora(model) if config.merge and model.config.lora is not None else model.eval(), preprocessing)
    if trainer.dist.is_main:
        agent.save_pretrained(output_dir / "model", name=f"{name} fine-tuned")
    return FinetuneResult(agent, train, output_dir / "model", selected.num_episodes, dataset.num_episodes, spaces, trainable)


def _load_pretrained(pretrained: Pretrained, device) -> tuple[str, LRAMModel, Preprocessing]:
    """(a readable name, a copy of the model, its preprocessing)."""
    if isinstance(pretrained, LRAMModel):
        return "a model", copy.deepcopy(pretrained), Preprocessing()
    if isinstance(pretrained, Agent):
        return "an agent", copy.deepcopy(pretrained.model), pretrained.saved_preprocessing()
    from lram_agents.pretrained import load

    agent = load(pretrained, device=device)
    return str(pretrained), agent.model, agent.saved_preprocessing()


def prepare_model(model: LRAMModel, config: FinetuneConfig) -> LRAMModel:
    """The model to train, with ``requires_grad`` set for ``config.method``.

    ``"full"``: ``model`` itself, every weight trainable. ``"lora"``: a new model with adapters
    (``config.lora``) around ``model``'s weights; only the adapters and ``config.train_also`` train.
    A model that already has adapters is merged first, so fine-tuning always starts from plain weights.
    """
    if model.config.lora is not None:
        model = merge_lora(model)
    if config.method == "full":
        model.requires_grad_(True)
        return model
    adapted = LRAMModel(dataclasses.replace(model.config, lora=config.lora)).to(next(model.parameters()).device)
    load_base_weights(adapted, model.state_dict())
    modules = dict(adapted.named_children())
    unknown = [m for m in config.train_also if modules.get(m) is None]
    require(not unknown, "train_also", unknown, f"name no module of this model; its modules: {sorted(k for k, v in modules.items() if v is not None)}")
    adapters = set(lora_parameter_names(adapted))
    for name, param in adapted.named_parameters():
        param.requires_grad_(name in adapters or name.split(".", 1)[0] in config.train_also)
    return adapted


def finetuned_preprocessing(base: Preprocessing, dataset: TrajectoryDataset, config: FinetuneConfig) -> Preprocessing:
    """The pretrained model's preprocessing adapted to the new task.

    Kept: the reward scale (unless ``config.reward_scale``), the memory setting and the observation
    normalisation (when its size matches the new observations). A multi-task model's table
    (``base.tasks``) gives way to the new task's entry, its domain's, or else the domain's reward scale. New: the target return (``config``'s,
    or the best return of ``dataset``) and the spaces.
    """
    if base.tasks is not None:  # a multi-task model: start from the new task's entry (else its domain's scale)
        task = base.for_env(dataset.env_id) or dataclasses.replace(base, reward_scale=reward_scale_for(dataset.domain))
        base = dataclasses.replace(task, tasks=None)
    size = int(np.prod(dataset.observation_space.shape))
    normalisation = {}
    if base.obs_mean is not None and len(base.obs_mean) != size:
        logger.warning("dropping the pretrained observation normalisation (%d values) for %d-dim observations", len(base.obs_mean), size)
        normalisation = {"obs_mean": None, "obs_std": None}
    target = config.target_return if config.target_return is not None else float(dataset.table.total_return.max())
    return dataclasses.replace(
        base, **normalisation, target_return=target, reward_scale=config.reward_scale or base.reward_scale,
        observation_space=space_to_json(dataset.observation_space), action_space=space_to_json(dataset.action_space))


def _run_record(name: str, config: FinetuneConfig, selected: TrajectoryDataset, dataset: TrajectoryDataset) -> dict[str, Any]:
    table = selected.table
    return {"pretrained": name, "finetune": config.to_dict(), "dataset": dataset.name, "episodes_total": dataset.num_episodes,
            "episodes_used": selected.num_episodes, "min_return_used": float(table.total_return.min()),
            "files": sorted({str(Path(selected.files[i]).resolve()) for i in np.unique(table.file)})}


def _record_run(output_dir: Path, record: dict[str, Any], resume: bool) -> None:
    """Write ``finetune.json``; a resumed run must have the same settings, model and selection."""
    path = output_dir / RUN_FILE
    if not resume and list_checkpoints(output_dir / "checkpoints"):
        raise CheckpointError(f"{output_dir / 'checkpoints'} already holds checkpoints: resume the run (resume=True, "
                              "lram finetune --resume) or choose another output_dir")
    if resume and path.is_file():
        saved = json.loads(path.read_text())
        for key in ("pretrained", "finetune", "episodes_used", "files"):
            if saved.get(key) != json.loads(json.dumps(record[key])):
                raise CheckpointError(f"cannot resume {output_dir}: {key} differs from the run's {RUN_FILE}\n"
                                      f"  now:   {record[key]}\n  saved: {saved.get(key)}")
        return
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
