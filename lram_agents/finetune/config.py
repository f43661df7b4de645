"""Settings of offline fine-tuning (:class:`FinetuneConfig`) and online fine-tuning (:class:`OnlineConfig`)."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from lram_agents.config_utils import ConfigError, from_dict, require
from lram_agents.data.sampler import WINDOW_KINDS
from lram_agents.lora import LoRAConfig


class _JsonConfig:
    """JSON round trip shared by the two configs (nested LoRA settings included)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        return from_dict(cls, data, where=f" in {cls.__name__}")

    def save(self, path: str | Path) -> None:
        from lram_agents.serialization import atomic_write_text

        atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path):
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path} is not valid JSON: {err}") from None


@dataclass
class FinetuneConfig(_JsonConfig):
    """How a pretrained model is fine-tuned offline on a new task's trajectories.

    Attributes:
        method: ``"full"`` (every weight trains; LRAM appendix C.3) or ``"lora"`` (only LoRA adapters
            on the backbone's linear layers train, plus the modules in ``train_also``).
        lora: the adapters' rank, scale, dropout and target layers (``method="lora"`` only).
        train_also: with ``"lora"``, modules of the model trained fully besides the adapters, by
            attribute name, e.g. ``["head", "state_encoder"]`` (a new task's inputs or actions).
        top_fraction: fine-tune on this share of the episodes, those with the highest returns
            (LRAM: 0.05, the top 5%); 1 keeps all.
        per_task: select the top share within each task (the episodes' ``task`` field).
        target_return: the return the fine-tuned agent is conditioned on; default: the best return
            among the selected episodes (LRAM's rule: the maximum return in the data).
        reward_scale: default: the pretrained model's (the scale its return tokens were learned at).
        merge: fold the adapters into the weights of the saved model (a plain model, no per-step cost).
    """

    method: Literal["full", "lora"] = "full"
    lora: LoRAConfig = field(default_factory=LoRAConfig)
    train_also: list[str] = field(default_factory=list)
    top_fraction: float = 1.0
    per_task: bool = False
    target_return: float | None = None
    reward_scale: float | None = None
    merge: bool = False

    def __post_init__(self):
        require(self.method in ("full", "lora"), "method", self.method, "must be 'full' or 'lora'")
        if isinstance(self.lora, dict):
            self.lora = from_dict(LoRAConfig, self.lora, where=" in 'lora'")
        self.train_also = list(self.train_also)
        require(not self.train_also or self.method == "lora", "train_also", self.train_also,
                "only applies to method='lora' (method='full' trains everything)")
        require(0.0 < self.top_fraction <= 1.0, "top_fraction", self.top_fraction, "must be in (0, 1] (LRAM: 0.05)")
        require(self.target_return is None or math.isfinite(self.target_return), "target_return", self.target_return, "must be finite")
        require(self.reward_scale is None or self.reward_scale > 0, "reward_scale", self.reward_scale, "must be > 0")


@dataclass
class OnlineConfig(_JsonConfig):
    """Online fine-tuning: collect episodes with the agent, then update on them (return-relabelled BC).

    One *iteration* is a rollout of ``episodes_per_rollout`` finished episodes (spread evenly over the
    vector env's envs, each env playing consecutive episodes from a reset, memory kept across them
    when the agent keeps memory), followed by ``updates_per_rollout`` optimizer steps on windows of
    the newest ``buffer_episodes`` episodes, whose returns-to-go are the returns actually obtained
    (hindsight relabelling, Online Decision Transformer).

    Attributes:
        episodes_per_rollout / updates_per_rollout: see above.
        batch_size / context / windows: the training windows (see :mod:`lram_agents.data.sampler`).
        buffer_episodes: train on the newest this many episodes (ODT's replay buffer of recent
            trajectories); whole rollouts are kept, so the buffer may hold up to one rollout more.
        learning_rate / weight_decay / grad_clip / warmup_updates: AdamW, global-norm clipping, a linear
            warm-up to a constant rate (ODT's schedule).
        temperature: actions are sampled at this temperature while collecting (exploration);
            ``deterministic_rollouts=True`` takes the argmax instead.
        exploration_epsilon: while collecting, each action is replaced by a uniformly random one with
            this probability (a confident pretrained model samples almost deterministically; without
            any rewarded episode, return relabelling has nothing to teach).
        target_return: the return conditioned on while collecting; default: the agent's.
        target_mode: ``"fixed"`` keeps it; ``"best"`` sets it after every rollout to the best episode
            return seen so far times ``target_multiplier`` (a target that follows the best returns).
        eval_every / eval_episodes: evaluate (deterministically) every N iterations (0: never).
        checkpoint_every / keep_checkpoints: full state every N iterations, the newest K kept.
        seed: seeds the env resets, the action sampling and the update batches.
        progress: a progress bar over env steps.
    """

    episodes_per_rollout: int = 16
    updates_per_rollout: int = 20
    batch_size: int = 32
    context: int = 50
    windows: Literal["subtrajectory", "from_start", "across_episodes"] = "subtrajectory"
    buffer_episodes: int = 1000
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    grad_clip: float = 0.25
    warmup_updates: int = 0
    temperature: float = 1.0
    deterministic_rollouts: bool = False
    exploration_epsilon: float = 0.0
    target_return: float | None = None
    target_mode: Literal["fixed", "best"] = "fixed"
    target_multiplier: float = 1.0
    eval_every: int = 0
    eval_episodes: int = 10
    checkpoint_every: int = 1
    keep_checkpoints: int = 2
    seed: int = 0
    progress: bool = True

    def __post_init__(self):
        for name in ("episodes_per_rollout", "batch_size", "context", "buffer_episodes", "eval_episodes", "checkpoint_every",
                     "keep_checkpoints"):
            require(getattr(self, name) >= 1, name, getattr(self, name), "must be >= 1")
        for name in ("updates_per_rollout", "warmup_updates", "eval_every"):
            require(getattr(self, name) >= 0, name, getattr(self, name), "must be >= 0")
        require(self.windows in WINDOW_KINDS, "windows", self.windows, f"must be one of {list(WINDOW_KINDS)}")
        require(self.learning_rate > 0, "learning_rate", self.learning_rate, "must be > 0")
        require(self.weight_decay >= 0, "weight_decay", self.weight_decay, "must be >= 0")
        require(self.grad_clip > 0, "grad_clip", self.grad_clip, "must be > 0")
        require(self.temperature > 0, "temperature", self.temperature, "must be > 0")
        require(0.0 <= self.exploration_epsilon <= 1.0, "exploration_epsilon", self.exploration_epsilon, "must be in [0, 1]")
        require(self.target_return is None or math.isfinite(self.target_return), "target_return", self.target_return, "must be finite")
        require(self.target_mode in ("fixed", "best"), "target_mode", self.target_mode, "must be 'fixed' or 'best'")
        require(math.isfinite(self.target_multiplier), "target_multiplier", self.target_multiplier, "must be finite")
