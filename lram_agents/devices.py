"""Choosing the torch device: ``"auto"``, or a device checked before anything is moved to it."""

from __future__ import annotations

import torch


class DeviceError(ValueError):
    """The device asked for does not exist here (e.g. ``"cuda"`` with a CPU-only torch)."""


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"``: CUDA when available, else CPU; otherwise ``device``, if this machine has it.

    Raises:
        DeviceError: naming the device and why it is unavailable (instead of an error deep inside torch
            at the first tensor moved there).
    """
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise DeviceError(f"device {device!r} is not a torch device ({err}); use 'auto', 'cpu', 'cuda' or 'cuda:N'") from None
    if resolved.type == "cuda":
        if torch.version.cuda is None:
            raise DeviceError(f"device {device!r}: this torch {torch.__version__} is a CPU-only build; use device='cpu' (or 'auto'), "
                              "or install a CUDA build of torch")
        if not torch.cuda.is_available():
            raise DeviceError(f"device {device!r}: torch sees no CUDA GPU here; use device='cpu' (or 'auto')")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise DeviceError(f"device {device!r}: there are only {torch.cuda.device_count()} CUDA device(s)")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"device {device!r}: MPS is not available here; use device='cpu'")
    return resolved
