"""What the T-Maze scripts share: the run config file, the evaluation lengths, RATE's published rows
and the T-Maze vector env (imported by make_data/train/evaluate/ship)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym

import lram_agents  # noqa: F401  (registers the environments)
from lram_agents.config import LRAMConfig
from lram_agents.config_utils import ConfigError, from_dict
from lram_agents.initialization import check_init
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
BACKBONE_LABELS = {  # run name -> label in cards
    "xlstm": "xLSTM [1:0]",
    "xlstm-long": "xLSTM [1:0] + fine-tuning on ≤ 9 segments",
    "xlstm-longer": "xLSTM [1:0] + fine-tuning on ≤ 33 segments",
    "xlstm-10k": "xLSTM [1:0] + fine-tuning on ≤ 10,000 steps",
    "mamba": "Mamba",
    "rate": "RATE-3 (no cache)",
    "rate-mrv": "RATE-3 (no cache) + memory retention valve",
    "rate-dropout": "RATE-3 (no cache), dropout 0.05 (the paper's)",
    "rate-noise": "RATE-3 (no cache), memory noise σ 0.5 in training",
    "rate-dropout-noise": "RATE-3 (no cache), dropout 0.05 + memory noise σ 0.5",
    "rate-bptt": "RATE-3 (no cache), gradients through the memory across segments",
    "rate-7": "RATE-7 (no cache)",
    "transformer": "DT (90-step context)",
}


def corridor_length(segments: int, segment_steps: int = SEGMENT_STEPS) -> int:
    """L of an inference length of n segments: the episode (L + 2 steps) lasts n·K steps."""
    return segments * segment_steps - 2


def tmaze_envs(corridor: int, num_envs: int) -> gym.vector.VectorEnv:
    """``num_envs`` T-Mazes of corridor length ``corridor``; ``reset(seed=s)`` seeds env i with s + i."""
    return gym.make_vec(ENV_ID, num_envs=num_envs, vectorization_mode="sync", corridor_length=corridor)


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
        init: named initialisations (:mod:`lram_agents.initialization`), e.g. long memory; {} keeps the package's.
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
        check_init(self.init)

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
