"""Action tokenizer: continuous actions in [-1, 1] <-> uniform bins, discrete actions <-> classes.

The shared action head (LRAM, appendix B.3) predicts one of ``num_discrete`` classes for discrete
action spaces, and one of ``num_bins`` uniform bins on [-1, 1] *per* continuous dimension.
Decoding returns bin centres, so a round trip is exact to half a bin width.
"""

from __future__ import annotations

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor


class ActionTokenizer:
    """Maps actions to class indices of the shared head and back.

    Args:
        num_bins: uniform bins on [-1, 1] per continuous dimension (LRAM: 256).
        num_discrete: discrete classes of the shared head (LRAM: 18, the Atari action set).
    """

    def __init__(self, num_bins: int = 256, num_discrete: int = 18):
        if num_bins < 2:
            raise ValueError(f"num_bins must be >= 2, got {num_bins}")
        if num_discrete < 1:
            raise ValueError(f"num_discrete must be >= 1, got {num_discrete}")
        self.num_bins = num_bins
        self.num_discrete = num_discrete

    @property
    def bin_width(self) -> float:
        return 2.0 / self.num_bins

    def encode_continuous(self, actions: ArrayLike) -> torch.Tensor:
        """Floats in [-1, 1] (any shape) -> bin indices (int64, same shape)."""
        actions = torch.as_tensor(actions)
        if not torch.is_floating_point(actions):
            actions = actions.to(torch.float32)
        _check_finite(actions, "continuous action")
        low, high = actions.min().item(), actions.max().item()
        if actions.numel() and (low < -1.0 or high > 1.0):
            bad = low if low < -1.0 else high
            raise ValueError(
                f"continuous action {bad!r} is outside [-1, 1]; rescale actions to [-1, 1] "
                "before tokenizing (the agent does this from the env's action space)"
            )
        bins = torch.floor((actions.double() + 1.0) / self.bin_width).long()
        return bins.clamp_(0, self.num_bins - 1)  # +1.0 falls in the last bin

    def decode_continuous(self, bins: ArrayLike) -> torch.Tensor:
        """Bin indices -> bin centres (float32, same shape)."""
        bins = torch.as_tensor(bins)
        if torch.is_floating_point(bins):
            raise TypeError(f"bin indices must be integers, got dtype {bins.dtype}")
        if bins.numel() and (bins.min() < 0 or bins.max() >= self.num_bins):
            bad = bins.min().item() if bins.min() < 0 else bins.max().item()
            raise ValueError(f"bin index {bad} is outside [0, {self.num_bins - 1}]")
        return (-1.0 + (bins.double() + 0.5) * self.bin_width).float()

    def encode_discrete(self, actions: ArrayLike, num_actions: int) -> torch.Tensor:
        """Discrete actions of an env with ``num_actions`` actions -> head classes (int64)."""
        if not 1 <= num_actions <= self.num_discrete:
            raise ValueError(
                f"an action space of {num_actions} discrete actions does not fit the head's "
                f"{self.num_discrete} classes"
            )
        actions = torch.as_tensor(actions)
        if torch.is_floating_point(actions):
            _check_finite(actions, "discrete action")
            if not torch.equal(actions, actions.round()):
                raise ValueError(f"discrete actions must be whole numbers, got {actions.flatten()[:5]}")
        actions = actions.long()
        if actions.numel() and (actions.min() < 0 or actions.max() >= num_actions):
            bad = actions.min().item() if actions.min() < 0 else actions.max().item()
            raise ValueError(f"discrete action {bad} is outside [0, {num_actions - 1}]")
        return actions

    def decode_discrete(self, classes: ArrayLike) -> torch.Tensor:
        """Head classes -> discrete actions (the identity map, validated)."""
        classes = torch.as_tensor(classes).long()
        if classes.numel() and (classes.min() < 0 or classes.max() >= self.num_discrete):
            raise ValueError(f"class index outside [0, {self.num_discrete - 1}]: {classes.flatten()[:5]}")
        return classes


def _check_finite(values: torch.Tensor, what: str) -> None:
    if not torch.isfinite(values).all():
        bad = values[~torch.isfinite(values)].flatten()[0].item()
        raise ValueError(f"{what} contains a non-finite value ({bad!r})")
