"""RATE's curriculum as a sampler the :class:`~lram_agents.training.Trainer` runs like any other.

Stage n of :func:`lram_agents.segments.curriculum` trains on Q_n = q_1 ∪ ... ∪ q_n, the episodes
that fit in n segments of K steps, with windows of n·K steps from the episode's start (RATE, the
recurrent models) or with a fixed context (the Decision Transformer baseline: one segment, any start).
:class:`CurriculumSampler` holds one :class:`~lram_agents.data.sampler.TrajectorySampler` per stage and
answers ``batch(i)`` from the stage of batch ``i``, so batches stay a pure function of ``(seed, i)``:
a resumed run continues in the right stage with the same batches.

    sampler = curriculum_sampler(TrajectoryDataset("data/tmaze"), model.config, batch_size=32,
                                 segment_steps=30, max_segments=3, batches_per_stage=300)
    Trainer(model, config).fit(sampler, steps=sampler.total_batches)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lram_agents.config import LRAMConfig
from lram_agents.data.dataset import TrajectoryDataset
from lram_agents.data.format import DatasetError
from lram_agents.data.sampler import Batch, DataSource, TrajectorySampler, WindowKind
from lram_agents.preprocessing import Preprocessing
from lram_agents.segments import CurriculumStage, curriculum


class CurriculumSampler:
    """The batches of a curriculum: batch ``i`` comes from stage ``min(i // batches_per_stage, last)``.

    Args:
        stages: one sampler per stage, in training order (the last one goes on after its share).
        batches_per_stage: batches drawn from each stage. The trainer draws ``grad_accum_steps``
            batches per optimizer step, so a stage lasts ``batches_per_stage / grad_accum_steps`` steps.
    """

    def __init__(self, stages: Sequence[TrajectorySampler], batches_per_stage: int):
        if not stages:
            raise ValueError("a curriculum needs at least one stage")
        if batches_per_stage < 1:
            raise ValueError(f"batches_per_stage must be >= 1, got {batches_per_stage}")
        self.stages, self.batches_per_stage = list(stages), batches_per_stage

    def stage_index(self, batch_index: int) -> int:
        """The stage (0-based) that batch ``batch_index`` comes from."""
        if batch_index < 0:
            raise ValueError(f"batch_index must be >= 0, got {batch_index}")
        return min(batch_index // self.batches_per_stage, len(self.stages) - 1)

    def batch(self, batch_index: int, rank: int = 0, world_size: int = 1) -> list[Batch]:
        """This rank's share of batch ``batch_index`` (see :meth:`TrajectorySampler.batch`)."""
        return self.stages[self.stage_index(batch_index)].batch(batch_index, rank, world_size)

    @property
    def total_batches(self) -> int:
        """Batches until the last stage has had its share."""
        return self.batches_per_stage * len(self.stages)

    @property
    def sources(self) -> list[DataSource]:
        """The last stage's sources (the data the final model was trained on)."""
        return self.stages[-1].sources

    @property
    def batch_size(self) -> int:
        return self.stages[-1].batch_size

    def state_dict(self) -> dict:
        """What determines the batches besides the index (checked when a run resumes)."""
        return {"batches_per_stage": self.batches_per_stage, "stages": [stage.state_dict() for stage in self.stages]}


def stage_dataset(dataset: TrajectoryDataset, stage: CurriculumStage, segment_steps: int) -> TrajectoryDataset:
    """Q_n: the episodes of ``dataset`` that fit in the stage's ``num_segments`` segments of K steps."""
    limit = stage.max_steps(segment_steps)
    rows = np.flatnonzero(dataset.table.length <= limit)
    if rows.size == 0:
        raise DatasetError(f"dataset {dataset.name} has no episode of at most {limit} steps ({stage.num_segments} "
                           f"segment(s) of {segment_steps}): its shortest has {int(dataset.table.length.min())}")
    return dataset.subset(rows, name=f"{dataset.name}[<= {stage.num_segments} segments]")


def curriculum_sampler(dataset: TrajectoryDataset, model_config: LRAMConfig, batch_size: int, segment_steps: int,
                       max_segments: int, batches_per_stage: int, *, min_segments: int = 1, context: int | None = None,
                       windows: WindowKind = "from_start", preprocessing: Preprocessing | None = None,
                       seed: int = 0) -> CurriculumSampler:
    """RATE's T-Maze curriculum over N = ``min_segments`` .. ``max_segments`` segments of K steps.

    Args:
        context: timesteps per window; ``None`` is the stage's N·K (RATE and the recurrent models
            see whole episodes). A fixed context (e.g. K with ``windows="subtrajectory"``) is the
            Decision-Transformer baseline, which sees one segment of the stage's episodes.
        windows: how windows are cut (see :mod:`lram_agents.data.sampler`); ``"from_start"`` keeps
            the cue of the first step in every window.
        preprocessing: reward scale and target return (default: the dataset's).
        seed: batches depend on ``(seed, batch index)`` only.
    """
    stages = []
    for stage in curriculum(max_segments, min_segments):
        data = stage_dataset(dataset, stage, segment_steps)
        window = context if context is not None else stage.max_steps(segment_steps)
        source = DataSource(data, window, windows, preprocessing or dataset.preprocessing())
        stages.append(TrajectorySampler(source, model_config, batch_size, seed=seed))
    return CurriculumSampler(stages, batches_per_stage)
