"""RATE's segment-wise training procedure, as functions a trainer calls (no trainer in here).

* :func:`sample_window` picks N*K timesteps of a trajectory: from its start for memory tasks (the
  cue must be in the first segment), uniformly at random otherwise (RATE section 3).
* :func:`iter_segments` runs the N segments of K timesteps one model call each, carrying the
  recurrent state (RATE: memory tokens and cache) and detaching it between segments, as the paper
  does; the trainer takes a loss per segment (and, as in the authors' code, may step per segment).
  It works for any backbone: for the recurrent ones it is truncated backpropagation through time.
* :func:`curriculum` is the T-Maze curriculum over N: stage n trains with n segments on trajectories
  of 1..n segments (Q_n = q_1 ∪ ... ∪ q_n), for n = 1..N_max.

Acting one timestep per call runs the same computation as :func:`segment_forward` (tested).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from lram_agents.backbones import State
from lram_agents.model import LRAMModel, ModelOutput, Timesteps


def detach_state(state: State) -> State:
    """The state without its autograd history (values unchanged)."""
    return {name: tensor.detach() for name, tensor in state.items()}


def _segment_steps(model: LRAMModel, segment_steps: int | None) -> int:
    steps = segment_steps if segment_steps is not None else model.config.segment_steps
    if steps is None:
        raise ValueError(f"backbone {model.config.backbone.type!r} has no segment length: pass segment_steps")
    if steps < 1:
        raise ValueError(f"segment_steps must be >= 1, got {steps}")
    return steps


def iter_segments(
    model: LRAMModel,
    steps: Timesteps,
    segment_steps: int | None = None,
    state: State | None = None,
    detach: bool = True,
) -> Iterator[tuple[slice, ModelOutput]]:
    """Run ``steps`` (B, T) as consecutive segments of K timesteps, one model call per segment.

    Args:
        segment_steps: K; default: the backbone's own segment (RATE's ``segment_tokens`` / tokens per step).
        state: the state to start from (None: empty).
        detach: cut the gradient between segments (RATE's procedure); False backpropagates through all.
    Yields:
        (the segment's slice of the T timesteps, the model's output on it).
    """
    K = _segment_steps(model, segment_steps)
    T = steps.batch_shape[1]
    for start in range(0, T, K):
        part = slice(start, min(start + K, T))
        out = model(steps.map(lambda t: t[:, part]), state)
        yield part, out
        state = detach_state(out.state) if detach else out.state


def segment_forward(
    model: LRAMModel, steps: Timesteps, segment_steps: int | None = None, state: State | None = None, detach: bool = True
) -> ModelOutput:
    """All segments of :func:`iter_segments` at once: logits for the T timesteps, and the last state."""
    outputs = [out for _, out in iter_segments(model, steps, segment_steps, state, detach)]
    return ModelOutput(torch.cat([out.logits for out in outputs], dim=1), outputs[-1].state)


def sample_window(
    episode_length: int, num_segments: int, segment_steps: int, from_start: bool = True, generator: torch.Generator | None = None
) -> slice:
    """The N*K timesteps of an episode to train on (the whole episode if it is shorter; pad it then).

    ``from_start=True`` (memory tasks) starts at step 0; otherwise the start is uniform over the episode.
    """
    if episode_length < 1 or num_segments < 1 or segment_steps < 1:
        raise ValueError(f"need positive sizes, got episode_length={episode_length}, num_segments={num_segments}, "
                         f"segment_steps={segment_steps}")
    window = num_segments * segment_steps
    if from_start or episode_length <= window:
        return slice(0, min(window, episode_length))
    start = int(torch.randint(0, episode_length - window + 1, (1,), generator=generator))
    return slice(start, start + window)


@dataclass(frozen=True)
class CurriculumStage:
    """One stage of the T-Maze curriculum.

    Attributes:
        num_segments: N, the segments per training sequence in this stage.
        trajectory_segments: the trajectory lengths, in segments, in this stage's data (1..N).
    """

    num_segments: int
    trajectory_segments: tuple[int, ...]

    def max_steps(self, segment_steps: int) -> int:
        """The longest trajectory of the stage in timesteps (T-Maze: corridor length + 2)."""
        return self.num_segments * segment_steps


def curriculum(max_segments: int, min_segments: int = 1) -> list[CurriculumStage]:
    """RATE's curriculum over N (section 4.2): stage n uses n segments on Q_n = q_1 ∪ ... ∪ q_n."""
    if not 1 <= min_segments <= max_segments:
        raise ValueError(f"need 1 <= min_segments <= max_segments, got {min_segments} and {max_segments}")
    return [CurriculumStage(n, tuple(range(1, n + 1))) for n in range(min_segments, max_segments + 1)]


def curriculum_stage(stages: list[CurriculumStage], step: int, steps_per_stage: int) -> CurriculumStage:
    """The stage of a (resumable, continuous) training step when each stage lasts ``steps_per_stage``."""
    if step < 0 or steps_per_stage < 1:
        raise ValueError(f"need step >= 0 and steps_per_stage >= 1, got {step} and {steps_per_stage}")
    return stages[min(step // steps_per_stage, len(stages) - 1)]
