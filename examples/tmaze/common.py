"""What the T-Maze scripts share: the run config file, the long-memory initialisation, the evaluation
lengths, RATE's published rows and the T-Maze vector env (imported by make_data/train/evaluate/ship)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

import lram_agents  # noqa: F401  (registers the environments)
from lram_agents.config import LRAMConfig
from lram_agents.config_utils import ConfigError, from_dict, require
from lram_agents.model import LRAMModel
from lram_agents.training import TrainerConfig

ENV_ID = "lram_agents/TMaze-v0"
SEGMENT_STEPS = 30  # K, RATE's segment length on T-Maze
EVAL_SEGMENTS = (1, 2, 3, 5, 9, 12, 25, 50, 100)  # RATE's Table 2 lengths, then up to 100 segments (3000 steps)
PUBLISHED = {  # RATE Table 2 (mean over 10 runs x 100 seeds) at 1/2/3/5/9/12 segments
    "DT-7": (1.000, 0.499, 0.506, 0.489, 0.489, 0.515),
    "RATE-3": (1.000, 1.000, 1.000, 0.895, 0.496, 0.453),
    "RATE-7": (1.000, 1.000, 1.000, 0.993, 0.750, 0.661),
}
PUBLISHED_SEGMENTS = (1, 2, 3, 5, 9, 12)
BACKBONE_LABELS = {"xlstm": "xLSTM [1:0]", "xlstm-long": "xLSTM [1:0] + fine-tuning on ≤ 9 segments", "mamba": "Mamba", "rate": "RATE", "transformer": "DT (90-step context)"}


def corridor_length(segments: int, segment_steps: int = SEGMENT_STEPS) -> int:
    """L of an inference length of n segments: the episode (L + 2 steps) lasts n·K steps."""
    return segments * segment_steps - 2


def tmaze_envs(segments: int, num_envs: int) -> gym.vector.VectorEnv:
    """``num_envs`` T-Mazes of n segments; ``reset(seed=s)`` seeds env i with s + i."""
    return gym.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode="sync", corridor_length=corridor_length(segments))


@dataclass
class CurriculumSettings:
    """RATE's curriculum (see ``lram_agents.data.curriculum``): stages of 1..max_segments segments of K steps.

    ``min_segments`` > 1 skips the first stages (e.g. fine-tuning on longer episodes only).
    ``context`` None: the stage's n·K steps from the episode's start; a number: windows of that many
    steps (``windows="subtrajectory"`` for the Decision-Transformer baseline).
    """

    segment_steps: int = SEGMENT_STEPS
    max_segments: int = 3
    min_segments: int = 1
    batches_per_stage: int = 300
    context: int | None = None
    windows: str = "from_start"


@dataclass
class RunConfig:
    """One backbone's T-Maze run, read from ``examples/tmaze/configs/<backbone>.json``.

    Attributes:
        name: the zoo name the model would be shipped under, e.g. ``xlstm-tmaze``.
        model: the :class:`LRAMConfig` fields.
        init: the long-memory initialisation (:func:`long_memory_init`); {} keeps the package's.
        curriculum: :class:`CurriculumSettings` fields.
        trainer: :class:`TrainerConfig` fields.
        notes: a sentence for the model card on what this config chose and why.
        data: the data directory (make_data.py's output) unless ``--data`` says otherwise.
        init_from: a saved agent (e.g. another run's ``model/``) whose weights this run starts from
            (fine-tuning); None: a fresh model with the ``init`` section applied.
    """

    name: str
    model: dict
    curriculum: dict = field(default_factory=dict)
    trainer: dict = field(default_factory=dict)
    init: dict = field(default_factory=dict)
    notes: str = ""
    data: str = "data/tmaze"
    init_from: str | None = None

    def __post_init__(self):
        self.model_config = LRAMConfig.from_dict(self.model)
        self.curriculum_settings = from_dict(CurriculumSettings, self.curriculum, where=" in 'curriculum'")
        self.trainer_config = TrainerConfig.from_dict(self.trainer)
        unknown = sorted(set(self.init) - set(_INITS))
        require(not unknown, "init", unknown, f"known: {sorted(_INITS)}")

    @property
    def backbone(self) -> str:
        return self.model_config.backbone.type

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        try:
            data = json.loads(Path(path).read_text())
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path} is not valid JSON: {err}") from None
        return from_dict(cls, data, where=f" in {path}")


# ---- long-memory initialisation ---------------------------------------------------------------------
def _mlstm_cells(model: LRAMModel):
    blocks = model.backbone.stack.blocks
    return [block.xlstm.mlstm_cell for block in blocks if hasattr(block.xlstm, "mlstm_cell")]


def _mlstm_forget_bias(model: LRAMModel, low: float, high: float) -> None:
    """Forget-gate biases spread over the heads from ``low`` to ``high`` (the package: 3 to 6).

    sigmoid(b) per token keeps a fraction exp(-n·e^-b) of the memory after n tokens: b = 6 forgets
    90 steps of 3 tokens by half, b = 20 keeps 3000 steps within 1e-5.
    """
    for cell in _mlstm_cells(model):
        cell.fgate.bias.copy_(torch.linspace(low, high, cell.fgate.bias.numel()))


def _mlstm_input_bias(model: LRAMModel, bias: float) -> None:
    """Input-gate bias (the package: N(0, 0.1)): a token writes exp(bias) unless its input says more."""
    for cell in _mlstm_cells(model):
        cell.igate.bias.fill_(bias)


def _mamba_dt_range(model: LRAMModel, low: float, high: float) -> None:
    """Step sizes Δ log-uniform in [low, high] at initialisation (mamba-ssm: [1e-3, 1e-1]); a small Δ
    decays the state slowly (exp(-Δ·A) per token) and writes little."""
    for layer in model.backbone.layers:
        bias = layer.mixer.dt_proj.bias
        dt = torch.exp(torch.rand(bias.numel()) * (math.log(high) - math.log(low)) + math.log(low))
        bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # the inverse of softplus


_INITS = {"mlstm_forget_bias": _mlstm_forget_bias, "mlstm_input_bias": _mlstm_input_bias, "mamba_dt_range": _mamba_dt_range}


@torch.no_grad()
def long_memory_init(model: LRAMModel, settings: dict[str, Any]) -> None:
    """Apply the ``init`` section of a run config, e.g. ``{"mlstm_forget_bias": [8, 20]}``."""
    for name, value in settings.items():
        args = value if isinstance(value, list) else [value]
        _INITS[name](model, *args)
