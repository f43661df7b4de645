"""The config files of ``lram record``, ``lram train`` and ``lram finetune`` (JSON or YAML), validated field by field.

``lram record`` (one of ``policy`` + ``episodes``/``steps``, or ``learning_history``)::

    env: CartPole-v1            # a Gymnasium id; env_kwargs: {...} go to gym.make
    output: data/cartpole
    policy: random              # or {sb3: {algo: PPO, path: ppo.zip}} or {callable: "pkg.module:make_policy"}
    episodes: 100               # or steps: 10000
    seed: 0
    task: ""                    # stored with every episode
    domain: ""                  # selects the reward scale at training time (atari, dmcontrol, metaworld)
    episodes_per_file: 1
    image_shape: [1, 64, 64]    # convert image observations once, while recording
    max_env_errors: 0           # env exceptions tolerated (the running episode is dropped)
    learning_history:           # instead of policy: record an SB3 algorithm while it learns (AD)
      algorithm: PPO            # any SB3 algorithm, or DroQ (the names of lram_agents.envs.source_rl)
      policy: MlpPolicy
      total_timesteps: 100000
      keep_every: 4
      history_id: 0
      algorithm_kwargs: {}

``lram train``::

    output_dir: runs/cartpole
    steps: 10000
    model:
      preset: {backbone: xlstm, size: 16m}       # or config: path/to/config.json, or inline: {...LRAMConfig},
                                                 #   or pretrained: runs/a/model (weights too: train further)
      overrides: {image_shape: null, max_state_dim: 16}
      init: {mlstm_forget_bias: [8, 20]}         # optional: named initialisations (lram_agents.initialization)
    data:                                        # one entry per domain; balanced in every batch
      - domains: [metaworld, dmcontrol]          # or: every task folder of these domains (root/<domain>/<task>),
        root: data/domains                       #   one source per task, weight / (tasks of the domain) each,
        split: train                             #   so every domain gets the same share (LRAM)
        tasks: {atari: [breakout, pong]}         #   optional: these tasks of a domain instead of all of the split's
        top_fraction: 1.0                        #   keep each task's best episodes, this share by return
      - path: data/cartpole
        reward_scale: 1.0                        # default: the domain's (LRAM) scale
        target_return: 500                       # default: the best return in the data
        keep_every: 1                            # learning histories: keep every k-th episode of each (AD's k)
        every_phase: false                       #   and with true, every offset 0..k-1 as a history of its own
        context: 50                              # default: trainer.context
        windows: subtrajectory                   # default: trainer.windows
        weight: 1.0
    validation: []                               # optional, same form as data
    trainer: {batch_size: 32, warmup_steps: 100} # TrainerConfig fields

``lram finetune``::

    pretrained: xlstm-tmaze                      # a zoo name, a saved agent's directory or a checkpoint step-* directory
    output_dir: runs/finetune
    steps: 2000
    data: data/new_task                          # a path, a list of paths, or {path: ..., domain: ...}
    validation: null                             # optional, same form as data
    finetune: {method: lora, top_fraction: 0.05, train_also: [head], lora: {rank: 8}}   # FinetuneConfig fields
    trainer: {batch_size: 32, warmup_steps: 100} # TrainerConfig fields (context, windows cut the windows)
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lram_agents.config import LRAMConfig
from lram_agents.config_utils import ConfigError, from_dict, require
from lram_agents.data.dataset import TrajectoryDataset
from lram_agents.data.domain_sources import domain_sources
from lram_agents.data.sampler import DataSource
from lram_agents.data.selection import every_kth_episode, top_episodes
from lram_agents.initialization import apply_init, check_init
from lram_agents.model import LRAMModel
from lram_agents.training.config import TrainerConfig


def load_config_file(path: str | Path) -> dict[str, Any]:
    """A JSON (``.json``) or YAML (anything else) file holding one mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    text = path.read_text()
    try:
        if path.suffix == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as err:  # noqa: BLE001  (json and yaml raise different types)
        raise ConfigError(f"{path} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of settings, got {type(data).__name__}")
    return data


# ---- lram record ------------------------------------------------------------------------------------
@dataclass
class LearningHistoryConfig:
    algorithm: str = "PPO"
    policy: str = "MlpPolicy"
    total_timesteps: int = 100_000
    keep_every: int = 1
    history_id: int = 0
    algorithm_kwargs: dict = field(default_factory=dict)

    def __post_init__(self):
        require(self.total_timesteps >= 1, "learning_history.total_timesteps", self.total_timesteps, "must be >= 1")
        require(self.keep_every >= 1, "learning_history.keep_every", self.keep_every, "must be >= 1")


@dataclass
class RecordConfig:
    env: str
    output: str
    policy: Any = None
    episodes: int | None = None
    steps: int | None = None
    seed: int | None = None
    task: str = ""
    domain: str = ""
    episodes_per_file: int = 1
    image_shape: list | None = None
    max_env_errors: int = 0
    env_kwargs: dict = field(default_factory=dict)
    learning_history: Any = None

    def __post_init__(self):
        if self.learning_history is not None:
            for old, new in (("algo", "algorithm"), ("algo_kwargs", "algorithm_kwargs")):  # the names before 2026-11-30
                if isinstance(self.learning_history, dict) and old in self.learning_history:
                    raise ConfigError(f"config field 'learning_history.{old}' is now called "
                                      f"'learning_history.{new}' (as in the AD recipes' SourceRLConfig)")
            self.learning_history = from_dict(LearningHistoryConfig, self.learning_history, where=" in 'learning_history'")
            require(self.policy is None and self.episodes is None and self.steps is None, "learning_history", "...",
                    "records the learning algorithm: leave out policy, episodes and steps")
        else:
            require(self.policy is not None, "policy", None, "give a policy (or a learning_history section)")
            require((self.episodes is None) != (self.steps is None), "episodes", self.episodes, "give exactly one of episodes and steps")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RecordConfig:
        return from_dict(cls, data)


def make_policy(spec: Any, env):
    """The policy a record config names: "random", {sb3: {algo, path}} or {callable: "module:factory"}."""
    if spec == "random":
        return "random"
    if isinstance(spec, dict) and set(spec) == {"sb3"}:
        from lram_agents.envs.source_rl import algorithm_class

        try:
            algorithm = algorithm_class(spec["sb3"].get("algo", ""))
        except ValueError as error:
            raise ConfigError(f"config field 'policy.sb3.algo': {error}") from None
        return algorithm.load(spec["sb3"]["path"], device="cpu")
    if isinstance(spec, dict) and set(spec) == {"callable"}:
        return _import_object(spec["callable"])(env)
    raise ConfigError(f"config field 'policy' = {spec!r}: use 'random', {{sb3: {{algo: PPO, path: model.zip}}}} or {{callable: 'module:factory'}}")


def _import_object(reference: str):
    module, _, attr = reference.partition(":")
    if not attr:
        raise ConfigError(f"callable reference {reference!r} must look like 'package.module:function'")
    # as `python -m` would: modules in the working directory import without PYTHONPATH=.
    added = os.getcwd() not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, os.getcwd())
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"cannot import {reference!r}: {err}") from None
    finally:
        if added:
            sys.path.remove(os.getcwd())


# ---- lram train -------------------------------------------------------------------------------------
@dataclass
class DataConfig:
    path: Any = None
    domain: str | None = None
    reward_scale: float | None = None
    target_return: float | None = None
    context: int | None = None
    windows: str | None = None
    weight: float = 1.0
    domains: list | None = None
    root: str = "data/domains"
    split: str = "train"
    tasks: dict | None = None
    top_fraction: float = 1.0
    keep_every: int = 1
    every_phase: bool = False

    def __post_init__(self):
        require((self.path is None) != (self.domains is None), "path", self.path, "give exactly one of path and domains")
        require(isinstance(self.keep_every, int) and self.keep_every >= 1, "keep_every", self.keep_every,
                "must be an integer >= 1 (1 keeps every episode)")
        require(0.0 < self.top_fraction <= 1.0, "top_fraction", self.top_fraction, "must be in (0, 1] (1 keeps every episode)")
        if self.domains is not None:
            require(self.domain is None and self.target_return is None and self.reward_scale is None, "domains", self.domains,
                    "takes each task's reward scale and target return from its domain and data: leave out domain, "
                    "reward_scale and target_return")
            require(self.split in ("train", "holdout", "all"), "split", self.split, "must be 'train', 'holdout' or 'all'")
        else:
            require(self.tasks is None, "tasks", self.tasks, "selects tasks of 'domains': give domains instead of path")
        require(isinstance(self.every_phase, bool), "every_phase", self.every_phase, "must be true or false")
        require(self.domains is None or self.keep_every == 1, "keep_every", self.keep_every,
                "downsamples learning histories (a path of AD data), not 'domains'")


@dataclass
class ModelSection:
    preset: dict | None = None
    config: str | None = None
    inline: dict | None = None
    pretrained: str | None = None
    overrides: dict = field(default_factory=dict)
    init: dict = field(default_factory=dict)

    def __post_init__(self):
        given = [name for name in ("preset", "config", "inline", "pretrained") if getattr(self, name) is not None]
        require(len(given) == 1, "model", given, "give exactly one of preset, config (a config.json path), inline or pretrained "
                "(a saved model's directory or a zoo name: its config and weights, to train further)")
        require(self.pretrained is None or not self.overrides, "model.overrides", self.overrides,
                "cannot change a pretrained model's architecture; leave out overrides")
        require(self.pretrained is None or not self.init, "model.init", self.init,
                "initialises new weights; a pretrained model keeps its own: leave out init")
        check_init(self.init)


@dataclass
class TrainConfig:
    output_dir: str
    steps: int
    model: Any
    data: list
    validation: list = field(default_factory=list)
    trainer: dict = field(default_factory=dict)

    def __post_init__(self):
        require(self.steps >= 1, "steps", self.steps, "must be >= 1")
        require(len(self.data) >= 1, "data", self.data, "list at least one dataset")
        self.model = from_dict(ModelSection, self.model, where=" in 'model'")
        self.data = [from_dict(DataConfig, d, where=f" in 'data[{i}]'") for i, d in enumerate(self.data)]
        self.validation = [from_dict(DataConfig, d, where=f" in 'validation[{i}]'") for i, d in enumerate(self.validation)]
        self.trainer = TrainerConfig.from_dict(self.trainer)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return from_dict(cls, data)


def build_model(section: ModelSection) -> LRAMModel:
    """The model to train: new weights for a preset / config / inline section, or a saved model's weights
    (``pretrained``: a directory, a zoo name or ``hf://owner/name``) to train further, e.g. a second stage.
    New weights get the section's named initialisations (:mod:`lram_agents.initialization`)."""
    if section.pretrained is None:
        model = LRAMModel(build_model_config(section))
        apply_init(model, section.init)
        return model
    import lram_agents

    try:
        return lram_agents.load(section.pretrained, device="cpu", compile=False).model
    except ValueError as err:
        raise ConfigError(f"config field 'model.pretrained' = {section.pretrained!r}: {err}") from None


def build_model_config(section: ModelSection) -> LRAMConfig:
    """The model config: a preset, a config.json or inline fields, then ``overrides`` merged in
    (nested: ``{backbone: {num_blocks: 2}}`` changes one backbone field). A bad value raises
    :class:`ConfigError` naming it."""
    try:
        return _model_config(section)
    except ConfigError:
        raise
    except (ValueError, TypeError, KeyError) as err:  # a preset's or LRAMConfig's own check
        raise ConfigError(f"config field 'model': {err}") from None


def _model_config(section: ModelSection) -> LRAMConfig:
    if section.preset is not None:
        from lram_agents.presets import preset

        unknown = sorted(set(section.preset) - {"backbone", "size", "variant"})
        require(not unknown, "model.preset", unknown, "takes backbone, size and variant only")
        base = preset(section.preset.get("backbone", "xlstm"), section.preset.get("size", "16m"), section.preset.get("variant")).to_dict()
    elif section.config is not None:
        base = LRAMConfig.load(section.config).to_dict()
    else:
        base = section.inline
    return LRAMConfig.from_dict(_merge(base, section.overrides))


def _merge(base: dict, overrides: dict) -> dict:
    merged = dict(base)
    for key, value in overrides.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
    return merged


def build_sources(entries: list[DataConfig], trainer: TrainerConfig) -> list[DataSource]:
    sources = []
    for entry in entries:
        if entry.domains is not None:
            sources += domain_sources(entry.root, entry.domains, entry.split, entry.context or trainer.context,
                                      entry.windows or trainer.windows, entry.weight, entry.tasks, entry.top_fraction)
            continue
        dataset = every_kth_episode(TrajectoryDataset(entry.path, domain=entry.domain), entry.keep_every, entry.every_phase)
        dataset = top_episodes(dataset, entry.top_fraction)
        given = {k: getattr(entry, k) for k in ("reward_scale", "target_return") if getattr(entry, k) is not None}
        preprocessing = dataclasses.replace(dataset.preprocessing(), **given)  # validated again by __post_init__
        sources.append(DataSource(dataset, entry.context or trainer.context, entry.windows or trainer.windows, preprocessing, entry.weight))
    return sources


# ---- lram finetune ----------------------------------------------------------------------------------
@dataclass
class FinetuneRunConfig:
    pretrained: str
    output_dir: str
    steps: int
    data: Any
    validation: Any = None
    finetune: dict = field(default_factory=dict)
    trainer: dict = field(default_factory=dict)

    def __post_init__(self):
        from lram_agents.finetune.config import FinetuneConfig

        require(self.steps >= 1, "steps", self.steps, "must be >= 1")
        require(bool(self.pretrained), "pretrained", self.pretrained, "name a zoo model or a directory")
        self.finetune = FinetuneConfig.from_dict(self.finetune)
        self.trainer = TrainerConfig.from_dict(self.trainer)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinetuneRunConfig:
        return from_dict(cls, data)


def build_dataset(spec: Any, where: str) -> TrajectoryDataset:
    """A dataset from a path, a list of paths, or ``{path: ..., domain: ...}``."""
    if isinstance(spec, dict):
        unknown = sorted(set(spec) - {"path", "domain"})
        require(not unknown and "path" in spec, where, spec, "takes 'path' (required) and 'domain'")
        return TrajectoryDataset(spec["path"], domain=spec.get("domain"))
    require(isinstance(spec, (str, list)) and bool(spec), where, spec, "must be a path, a list of paths or {path, domain}")
    return TrajectoryDataset(spec)
