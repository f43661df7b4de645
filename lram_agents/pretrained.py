"""Loading agents by zoo name or directory, and saving them (config, weights, preprocessing, card).

A saved agent is a directory with ``config.json`` + ``model.safetensors`` (the model),
``preprocessing.json`` (reward scale, target return, normalisation, memory setting, the env's spaces)
and ``README.md`` (the model card). No pickle anywhere.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import torch

from lram_agents.agent import Agent
from lram_agents.config import LRAMConfig
from lram_agents.devices import resolve_device
from lram_agents.model import LRAMModel
from lram_agents.model_card import model_card
from lram_agents.preprocessing import PREPROCESSING_FILE, Preprocessing
from lram_agents.registry import Zoo
from lram_agents.serialization import CONFIG_FILE, CheckpointError, atomic_write_text, load_model

CARD_FILE = "README.md"
_default_zoo: Zoo | None = None


def load(name_or_path: str | Path, device: str | torch.device = "auto", *, pretrained: bool = True,
         zoo: Zoo | None = None, **agent_options: Any) -> Agent:
    """An agent from the zoo (by name), from a directory written by ``Agent.save_pretrained``, or from
    the Hugging Face Hub (``"hf://owner/name"``, optionally ``@revision``; see :mod:`lram_agents.hub`).

    Args:
        name_or_path: a zoo name (see :func:`list_models`), a directory path (an existing directory
            wins over a zoo name, as in Hugging Face's ``from_pretrained``) or an ``hf://`` reference.
        device: ``"auto"`` (CUDA when available, else CPU), or any torch device.
        pretrained: False builds the architecture with random weights (the zoo's presets have no
            trained weights yet; they raise an error that says so unless this is False).
        zoo: another manifest's :class:`~lram_agents.registry.Zoo` (default: the package's).
        agent_options: passed to :class:`Agent` (``keep_memory``, ``target_return``, ``deterministic``,
            ``temperature``, ``seed``, ``observation_space``, ``action_space``).
    """
    from lram_agents import hub

    if not isinstance(name_or_path, (str, Path)) or not str(name_or_path).strip():
        raise ValueError(f"load() takes a zoo name (lram_agents.list_models()), a saved agent's directory or 'hf://owner/name'; "
                         f"got {name_or_path!r}")
    device = resolve_device(device)
    if hub.is_hub_reference(name_or_path):
        return _agent_from_directory(hub.download(name_or_path), device, pretrained, agent_options)
    path = Path(name_or_path).expanduser()
    if isinstance(name_or_path, Path) or path.is_dir() or _looks_like_path(str(name_or_path)):
        if not path.is_dir():
            raise CheckpointError(f"{path} is not a directory (a saved agent is a directory with {CONFIG_FILE})")
        return _agent_from_directory(path, device, pretrained, agent_options)
    zoo = zoo or default_zoo()
    entry = zoo.entry(str(name_or_path))
    if not pretrained:
        return Agent(LRAMModel(entry.build_config()).to(device), **agent_options)
    return _agent_from_directory(zoo.fetch(entry.name), device, pretrained, agent_options)


def list_models(pretrained_only: bool = False) -> list[str]:
    """Names of the zoo's models (only those with trained weights if ``pretrained_only``)."""
    return default_zoo().names(pretrained_only)


def model_info(name: str):
    """The zoo's :class:`~lram_agents.registry.ZooEntry` for ``name``."""
    return default_zoo().entry(name)


def default_zoo() -> Zoo:
    global _default_zoo
    if _default_zoo is None:
        _default_zoo = Zoo()
    return _default_zoo


def save_agent(agent: Agent, directory: str | Path, name: str | None = None, results: Mapping[str, Any] | None = None) -> None:
    """Write the agent's model, preprocessing and model card into ``directory`` (each file atomically)."""
    directory = Path(directory)
    agent.model.save_pretrained(directory)
    preprocessing = agent.saved_preprocessing()
    preprocessing.save(directory)
    card = model_card(name or directory.resolve().name, agent.model, preprocessing, results)
    atomic_write_text(directory / CARD_FILE, card)


def _agent_from_directory(directory: Path, device: torch.device, pretrained: bool, options: dict) -> Agent:
    if pretrained:
        model = load_model(directory, device=device)
    else:
        model = LRAMModel(LRAMConfig.load(directory / CONFIG_FILE)).to(device)
    has_preprocessing = (directory / PREPROCESSING_FILE).is_file()
    preprocessing = Preprocessing.load(directory) if has_preprocessing else Preprocessing()
    return Agent(model, preprocessing, **options)


def _looks_like_path(text: str) -> bool:
    return os.sep in text or "/" in text or text.startswith((".", "~"))
