"""Full training-state checkpoints without pickle, committed atomically.

A checkpoint is a directory ``checkpoints/step-{step:08d}/`` holding

* ``config.json`` + ``model.safetensors`` — the model (loadable by ``LRAMModel.from_pretrained``);
* ``optimizer.safetensors`` — every tensor of the optimizer state, keyed ``state.{param}.{name}``;
* ``rng.safetensors`` — torch's CPU (and CUDA) generator states of every rank;
* ``training_state.json`` — the step, the optimizer's param groups and non-tensor state, the
  scheduler's state, Python's and NumPy's global RNG states, the sampler's state and the configs;
* ``manifest.json`` — size and sha256 of every file above, written last.

Files are written into a hidden ``.tmp-step-*`` directory, flushed to disk, and the directory is
renamed to its final name in one ``rename`` — the commit. A process killed at any moment leaves
either a complete checkpoint or a hidden temporary directory, which is ignored and removed by the
next save. Loading verifies the manifest, so a damaged file is reported, never half-loaded.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from lram_agents.serialization import WEIGHTS_FILE, CheckpointError, load_weights, save_model, sha256_of

logger = logging.getLogger(__name__)

STATE_FILE = "training_state.json"
MANIFEST_FILE = "manifest.json"
PREFIX = "step-"


# ---- optimizer state <-> (tensors, JSON) -----------------------------------------------------------
def flatten_optimizer_state(state_dict: dict) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into safetensors-ready tensors and JSON-ready everything else."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for param, entries in state_dict["state"].items():
        for name, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"state.{param}.{name}"] = value.detach().contiguous().cpu()
            else:
                scalars.setdefault(str(param), {})[name] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def unflatten_optimizer_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, param, name = key.split(".", 2)
        state.setdefault(int(param), {})[name] = value
    for param, entries in meta["scalars"].items():
        state.setdefault(int(param), {}).update(entries)
    groups = [{k: tuple(v) if k == "betas" else v for k, v in group.items()} for group in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


# ---- RNG states --------------------------------------------------------------------------------------
def host_rng_state() -> dict[str, Any]:
    """Python's and NumPy's global RNG states as JSON-ready values."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": [version, list(internal), gauss], "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)]}


def set_host_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


# ---- saving ------------------------------------------------------------------------------------------
def save_checkpoint(root: Path, step: int, model, optimizer: torch.optim.Optimizer, scheduler, rng_tensors: dict[str, torch.Tensor],
                    extra: dict[str, Any]) -> Path:
    """Write the training state of ``step`` as ``root/step-{step:08d}`` (atomically, see the module docstring)."""
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(root)
    final = root / f"{PREFIX}{step:08d}"
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    tmp.mkdir()
    save_model(model, tmp)
    opt_tensors, opt_meta = flatten_optimizer_state(optimizer.state_dict())
    save_file(opt_tensors, tmp / "optimizer.safetensors")
    save_file({k: v.contiguous().cpu() for k, v in rng_tensors.items()}, tmp / "rng.safetensors")
    state = {"step": step, "optimizer": opt_meta, "scheduler": scheduler.state_dict(), "host_rng": host_rng_state(), **extra}
    (tmp / STATE_FILE).write_text(json.dumps(state, indent=1))
    _write_manifest(tmp)
    _commit(tmp, final)
    return final


def _write_manifest(directory: Path) -> None:
    files = sorted(p for p in directory.iterdir() if p.name != MANIFEST_FILE)
    for path in files:
        _fsync(path)
    manifest = {p.name: {"bytes": p.stat().st_size, "sha256": sha256_of(p)} for p in files}
    (directory / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1))
    _fsync(directory / MANIFEST_FILE)


def _commit(tmp: Path, final: Path) -> None:
    """Make ``tmp`` the checkpoint ``final`` in one rename (replacing an older one of the same step)."""
    old = None
    if final.exists():
        old = final.with_name(f".old-{final.name}-{os.getpid()}")
        os.replace(final, old)
    os.replace(tmp, final)
    _fsync(final.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _remove_stale_temporaries(root: Path) -> None:
    for path in root.glob(".tmp-*"):
        shutil.rmtree(path, ignore_errors=True)
    for path in root.glob(".old-*"):
        shutil.rmtree(path, ignore_errors=True)


def prune_checkpoints(root: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints."""
    for path in list_checkpoints(root)[:-keep]:
        shutil.rmtree(path, ignore_errors=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)



# ---- loading -----------------------------------------------------------------------------------------
def list_checkpoints(root: Path) -> list[Path]:
    """Committed checkpoints under ``root``, oldest first."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and p.name[len(PREFIX):].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX):]))


def verify_checkpoint(path: Path) -> None:
    """Raise :class:`CheckpointError` unless every file matches the manifest."""
    try:
        manifest = json.loads((path / MANIFEST_FILE).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"checkpoint {path} has no readable {MANIFEST_FILE}: {err}") from None
    for name, expected in manifest.items():
        file = path / name
        if not file.is_file() or file.stat().st_size != expected["bytes"] or sha256_of(file) != expected["sha256"]:
            raise CheckpointError(f"checkpoint file {file} is missing, truncated or corrupted (it does not match {MANIFEST_FILE})")


def latest_valid_checkpoint(root: Path) -> Path | None:
    """The newest checkpoint that verifies; damaged newer ones are reported and skipped."""
    for path in reversed(list_checkpoints(root)):
        try:
            verify_checkpoint(path)
            return path
        except CheckpointError as err:
            logger.warning("skipping damaged checkpoint: %s", err)
    return None


def load_checkpoint(path: Path, model, optimizer: torch.optim.Optimizer, scheduler) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Restore model, optimizer, scheduler and host RNGs from ``path``; return (JSON state, RNG tensors)."""
    verify_checkpoint(path)
    load_weights(model, path / WEIGHTS_FILE, device=next(model.parameters()).device)
    try:
        opt_tensors = load_file(path / "optimizer.safetensors")
        rng = load_file(path / "rng.safetensors")
        state = json.loads((path / STATE_FILE).read_text())
    except (SafetensorError, OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"checkpoint {path} cannot be read: {err}") from None
    optimizer.load_state_dict(unflatten_optimizer_state(opt_tensors, state["optimizer"]))
    scheduler.load_state_dict(state["scheduler"])
    set_host_rng_state(state["host_rng"])
    return state, rng
