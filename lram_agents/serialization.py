"""Saving and loading models as ``config.json`` + ``model.safetensors`` (no pickle), atomically."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


class CheckpointError(RuntimeError):
    """A checkpoint on disk is missing, truncated, corrupted or does not match its config."""


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never half."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def save_figure(fig, path: str | Path, dpi: int = 100) -> Path:
    """Save a matplotlib figure as PNG atomically (a reader never sees half a plot), then close it."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    plt.close(fig)
    return Path(path)


def atomic_save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    with atomic_path(path) as tmp:
        save_file(tensors, tmp, metadata=metadata)


class atomic_path:
    """Context manager yielding a temporary path beside ``path``; renamed over it on success.

    Use it for any file format (HDF5, PNG, ...): write to the yielded path, and readers see the
    old file or the complete new one, never a half-written one.
    """

    def __init__(self, path: Path):
        self.path = Path(path)

    def __enter__(self) -> str:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        os.close(fd)
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            Path(self.tmp).unlink(missing_ok=True)
            return False
        with open(self.tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(self.tmp, 0o666 & ~current_umask())  # mkstemp makes 0600 files; a plain open() would honour the umask
        os.replace(self.tmp, self.path)
        return False


def current_umask() -> int:
    """The process's umask (read by setting it and restoring it at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_atomic_path = atomic_path  # the original private name


def save_model(model, directory: str | Path) -> None:
    directory = Path(directory)
    # contiguous copies: safetensors refuses views that share storage
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    atomic_save_tensors(directory / WEIGHTS_FILE, tensors, metadata={"format": "pt"})
    model.config.save(directory / CONFIG_FILE)


def load_model(directory: str | Path, device: str | torch.device = "cpu"):
    """Build the model from ``config.json`` and load ``model.safetensors`` strictly."""
    from lram_agents.config import LRAMConfig
    from lram_agents.model import LRAMModel

    directory = Path(directory)
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (directory / name).is_file():
            raise CheckpointError(f"{directory / name} does not exist")
    config = LRAMConfig.load(directory / CONFIG_FILE)
    model = LRAMModel(config).to(device)
    load_weights(model, directory / WEIGHTS_FILE, device)
    return model.eval()


def load_weights(model, path: Path, device: str | torch.device = "cpu") -> None:
    """Load the safetensors file ``path`` into ``model`` strictly (every name and shape must match)."""
    try:
        tensors = load_file(path, device=str(device))
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path} is truncated or corrupted: {err}") from None
    _load_strict(model, tensors, path)


def _load_strict(model, tensors: dict[str, torch.Tensor], path: Path) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{path} does not match its config: missing {missing[:5]}, unexpected {unexpected[:5]}")
    for name, tensor in tensors.items():
        if tensor.shape != expected[name].shape:
            raise CheckpointError(f"{path}: tensor {name!r} has shape {tuple(tensor.shape)}, the config expects {tuple(expected[name].shape)}")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad = int((~torch.isfinite(tensor)).sum())
            raise CheckpointError(f"{path}: tensor {name!r} holds {bad} NaN/inf value(s) of {tensor.numel()}: the weights are broken "
                                  "(a diverged run?); load an earlier checkpoint")
    model.load_state_dict(tensors, strict=True)
