"""The shared action head: 18 discrete classes, then ``num_bins`` bins per continuous dimension.

One linear layer predicts every part at once (no autoregression over dimensions). An env with
``n`` discrete actions uses the first ``n`` classes; an env with ``d`` continuous dimensions uses the
first ``d`` bin groups, and the padded groups are left out of the loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lram_agents.tokenizer import ActionTokenizer


#: How a binned head turns its logits into one deterministic continuous action (see ``ActionHead.decode``).
CONTINUOUS_DECODINGS = ("argmax", "mean")


@dataclass(frozen=True)
class ActionSpec:
    """Which part of the shared head an environment uses."""

    kind: Literal["discrete", "continuous"]
    size: int  # number of discrete actions, or of continuous dimensions

    def __post_init__(self):
        if self.kind not in ("discrete", "continuous"):
            raise ValueError(f"action kind must be 'discrete' or 'continuous', got {self.kind!r}")
        if self.size < 1:
            raise ValueError(f"action size must be >= 1, got {self.size}")

    @classmethod
    def from_space(cls, space: gym.Space) -> ActionSpec:
        if isinstance(space, gym.spaces.Discrete):
            return cls("discrete", int(space.n))
        if isinstance(space, gym.spaces.Box) and len(space.shape) == 1 and np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high)):
            return cls("continuous", int(space.shape[0]))
        raise TypeError(f"unsupported action space {space}: use Discrete or a bounded 1-D Box")


class ActionHead(nn.Module):
    """Linear layer to ``num_discrete + max_dims * num_bins`` logits, and the loss and decoding."""

    def __init__(self, d_model: int, num_discrete: int = 18, max_dims: int = 8, num_bins: int = 256):
        super().__init__()
        self.num_discrete, self.max_dims, self.num_bins = num_discrete, max_dims, num_bins
        self.tokenizer = ActionTokenizer(num_bins=num_bins, num_discrete=num_discrete)
        self.proj = nn.Linear(d_model, num_discrete + max_dims * num_bins)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.proj(h)

    def check_spec(self, spec: ActionSpec) -> None:
        limit = self.num_discrete if spec.kind == "discrete" else self.max_dims
        if spec.size > limit:
            raise ValueError(f"{spec.kind} action of size {spec.size} does not fit the head (at most {limit})")

    def logits_for(self, logits: torch.Tensor, spec: ActionSpec) -> torch.Tensor:
        """The spec's part of the logits: (..., n) for discrete, (..., d, num_bins) for continuous."""
        self.check_spec(spec)
        if spec.kind == "discrete":
            return logits[..., : spec.size]
        bins = logits[..., self.num_discrete :].unflatten(-1, (self.max_dims, self.num_bins))
        return bins[..., : spec.size, :]

    def loss(self, logits: torch.Tensor, actions: torch.Tensor, spec: ActionSpec, mask: torch.Tensor | None = None,
             sizes: torch.Tensor | None = None) -> torch.Tensor:
        """Mean cross entropy. actions: (B, T) ints or (B, T, d) floats in [-1, 1]; mask: (B, T) valid steps.

        ``sizes`` (B,): each row's own number of classes / dimensions (<= ``spec.size``) when rows of
        several action spaces share the batch: a row's loss is then exactly the loss of its own spec.
        """
        part = self.logits_for(logits, spec)
        if spec.kind == "discrete":
            targets = self.tokenizer.encode_discrete(actions, spec.size).to(part.device)
            if sizes is not None:  # classes beyond a row's action space get no probability
                beyond = torch.arange(spec.size, device=part.device) >= sizes.to(part.device).view(-1, *[1] * (part.dim() - 1))
                part = part.masked_fill(beyond, float("-inf"))
            per_step = F.cross_entropy(part.flatten(0, -2), targets.flatten(), reduction="none").view(targets.shape)
        else:
            targets = self.tokenizer.encode_continuous(actions).to(part.device)
            per_dim = F.cross_entropy(part.flatten(0, -2), targets.flatten(), reduction="none").view(targets.shape)
            per_step = _mean_over_dims(per_dim, sizes)
        return masked_mean(per_step, mask)

    def decode(
        self,
        logits: torch.Tensor,
        spec: ActionSpec,
        deterministic: bool = True,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        continuous: str = "argmax",
    ) -> torch.Tensor:
        """Actions from logits: (...) long for discrete, (..., d) in [-1, 1] for continuous.

        ``continuous`` (deterministic continuous actions only): ``"argmax"``, the centre of the most likely
        bin; ``"mean"``, the expected value over the bins, which averages out a histogram learned from
        noisy demonstrations (several near-equal peaks) instead of jumping between its peaks.
        """
        if continuous not in CONTINUOUS_DECODINGS:
            raise ValueError(f"continuous decoding must be one of {CONTINUOUS_DECODINGS}, got {continuous!r}")
        part = self.logits_for(logits, spec)
        if deterministic and continuous == "mean" and spec.kind == "continuous":
            centres = self.tokenizer.decode_continuous(torch.arange(part.shape[-1], device=part.device))
            return (torch.softmax(part.float(), dim=-1) * centres).sum(-1)
        if deterministic:
            classes = part.argmax(-1)
        else:
            if temperature <= 0:
                raise ValueError(f"temperature must be > 0, got {temperature}")
            probs = torch.softmax(part.float() / temperature, dim=-1)
            classes = torch.multinomial(probs.flatten(0, -2), 1, generator=generator).view(probs.shape[:-1])
        if spec.kind == "discrete":
            return self.tokenizer.decode_discrete(classes)
        return self.tokenizer.decode_continuous(classes)


class RegressionHead(nn.Module):
    """Continuous actions by regression (Algorithm Distillation with Mamba): one mean per dimension.

    The output is pre-activation; actions are ``tanh`` of it, so they stay in the head's [-1, 1]. The
    loss is the mean squared error over the env's dimensions (padded ones are left out). Same methods
    as :class:`ActionHead`, so trainers and agents need not know which head a model has.
    """

    def __init__(self, d_model: int, max_dims: int = 8):
        super().__init__()
        self.max_dims = max_dims
        self.tokenizer = ActionTokenizer()  # used to validate targets (finite, in [-1, 1])
        self.proj = nn.Linear(d_model, max_dims)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.proj(h)

    def check_spec(self, spec: ActionSpec) -> None:
        if spec.kind != "continuous":
            raise ValueError(f"the regression head predicts continuous actions only, got a {spec.kind} action space")
        if spec.size > self.max_dims:
            raise ValueError(f"continuous action of size {spec.size} does not fit the head (at most {self.max_dims})")

    def logits_for(self, output: torch.Tensor, spec: ActionSpec) -> torch.Tensor:
        """The spec's dimensions of the output, (..., d), before tanh."""
        self.check_spec(spec)
        return output[..., : spec.size]

    def loss(self, output: torch.Tensor, actions: torch.Tensor, spec: ActionSpec, mask: torch.Tensor | None = None,
             sizes: torch.Tensor | None = None) -> torch.Tensor:
        """Mean squared error. actions: (B, T, d) floats in [-1, 1]; mask: (B, T) valid steps; ``sizes``
        (B,): each row's own number of dimensions when rows of several action spaces share the batch."""
        predicted = torch.tanh(self.logits_for(output, spec))
        self.tokenizer.encode_continuous(actions)  # raises on NaN or values outside [-1, 1]
        per_dim = (predicted - torch.as_tensor(actions, dtype=predicted.dtype, device=predicted.device)).pow(2)
        return masked_mean(_mean_over_dims(per_dim, sizes), mask)

    def decode(
        self,
        output: torch.Tensor,
        spec: ActionSpec,
        deterministic: bool = True,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
        continuous: str = "argmax",
    ) -> torch.Tensor:
        """Actions (..., d) in [-1, 1]. The head models no distribution: sampling (and ``continuous``) return the mean."""
        return torch.tanh(self.logits_for(output, spec))


def _mean_over_dims(per_dim: torch.Tensor, sizes: torch.Tensor | None) -> torch.Tensor:
    """(B, T, d) -> (B, T): the mean over each row's first ``sizes[b]`` dimensions (all d if None)."""
    if sizes is None:
        return per_dim.mean(-1)
    sizes = sizes.to(per_dim.device)
    kept = (torch.arange(per_dim.shape[-1], device=per_dim.device) < sizes.view(-1, 1, 1)).to(per_dim.dtype)
    return (per_dim * kept).sum(-1) / sizes.view(-1, 1).to(per_dim.dtype)


def masked_mean(per_step: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``per_step`` (B, T) over the valid steps of ``mask`` (all steps if None)."""
    if mask is None:
        return per_step.mean()
    mask = mask.to(per_step.dtype)
    return (per_step * mask).sum() / mask.sum().clamp_min(1.0)
