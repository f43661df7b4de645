"""Callbacks with Stable-Baselines3's hook names: ``on_training_start``, ``on_step() -> bool``, ``on_training_end``.

A callback sees the trainer (``self.trainer``): ``trainer.step`` (optimizer steps done),
``trainer.metrics`` (the last step's loss, lr, grad norm, ... and validation results when they were
computed at that step), ``trainer.model``. Returning ``False`` from ``on_step`` stops training after
that step (a final checkpoint is still written).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lram_agents.training.trainer import Trainer


class Callback:
    """Base class: override the hooks you need."""

    def __init__(self):
        self.trainer: Trainer | None = None

    def init_callback(self, trainer: Trainer) -> None:
        self.trainer = trainer

    def on_training_start(self) -> None:
        """Called once before the first step (after a resume: before the first new step)."""

    def on_step(self) -> bool:
        """Called after every optimizer step; return False to stop."""
        return True

    def on_training_end(self) -> None:
        """Called once after the last step (also when a callback stopped training)."""


class CallbackList(Callback):
    """Several callbacks called in order; training stops if any ``on_step`` returns False."""

    def __init__(self, callbacks: Iterable[Callback]):
        super().__init__()
        self.callbacks = list(callbacks)

    def init_callback(self, trainer: Trainer) -> None:
        super().init_callback(trainer)
        for callback in self.callbacks:
            callback.init_callback(trainer)

    def on_training_start(self) -> None:
        for callback in self.callbacks:
            callback.on_training_start()

    def on_step(self) -> bool:
        results = [callback.on_step() for callback in self.callbacks]  # every callback sees every step
        return all(result is not False for result in results)

    def on_training_end(self) -> None:
        for callback in self.callbacks:
            callback.on_training_end()
