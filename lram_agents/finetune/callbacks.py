"""Hooks of online fine-tuning, named as Stable-Baselines3's: subclass :class:`OnlineCallback`.

A callback sees the fine-tuner as ``self.trainer`` (an :class:`~lram_agents.finetune.online.OnlineFinetuner`):
its counters (``env_steps``, ``episodes``, ``updates``, ``iteration``), ``metrics`` (the last update's
loss and learning rate), ``last_step`` (the vector env's last transition), ``buffer`` (the collected
episodes), ``model``, and two things a hook may change:

* ``target_return``: the return the agent is conditioned on, read at every step of the next rollout
  (and by the next evaluation);
* ``extra_sources``: :class:`~lram_agents.data.sampler.DataSource` objects trained on beside the
  buffer (e.g. offline demonstrations), read at the start of every update phase; ``buffer.capacity``
  (how many of the newest episodes are trained on) may be changed too.

Returning ``False`` from ``on_step``, ``on_episode_end``, ``on_rollout_end``, ``on_update`` or
``on_evaluation`` stops fine-tuning after that hook (``None`` continues): the episodes collected so far
are kept, a final checkpoint and the model are written, and ``on_training_end`` is called.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from lram_agents.data.format import Episode
from lram_agents.evaluation import EvaluationResult
from lram_agents.training.callbacks import Callback

if TYPE_CHECKING:
    from lram_agents.finetune.online import OnlineFinetuner


class OnlineCallback(Callback):
    """Base class: override the hooks you need (``on_training_start`` / ``on_training_end`` as offline)."""

    trainer: OnlineFinetuner | None

    def on_rollout_start(self) -> None:
        """Called before every rollout (the envs are reset and the agent's memory emptied next)."""

    def on_step(self) -> bool:
        """Called after every step of the (vector) env; ``self.trainer.last_step`` holds it."""
        return True

    def on_episode_end(self, episode: Episode, env_index: int) -> bool:
        """Called when an episode ends, after it was written to the buffer."""
        return True

    def on_rollout_end(self) -> bool:
        """Called after every rollout, before the update phase."""
        return True

    def on_update(self) -> bool:
        """Called after every optimizer step; ``self.trainer.metrics`` holds its loss."""
        return True

    def on_evaluation(self, result: EvaluationResult) -> bool:
        """Called after every evaluation with its result."""
        return True


class OnlineCallbackList(OnlineCallback):
    """Several callbacks called in order; any of them returning ``False`` stops (all still see the event)."""

    def __init__(self, callbacks: Iterable[OnlineCallback]):
        super().__init__()
        self.callbacks = list(callbacks)

    def init_callback(self, trainer) -> None:
        super().init_callback(trainer)
        for callback in self.callbacks:
            callback.init_callback(trainer)

    def _all(self, hook: str, *args) -> bool:
        results = [getattr(callback, hook)(*args) for callback in self.callbacks]
        return all(result is not False for result in results)

    def on_training_start(self) -> None:
        self._all("on_training_start")

    def on_rollout_start(self) -> None:
        self._all("on_rollout_start")

    def on_step(self) -> bool:
        return self._all("on_step")

    def on_episode_end(self, episode: Episode, env_index: int) -> bool:
        return self._all("on_episode_end", episode, env_index)

    def on_rollout_end(self) -> bool:
        return self._all("on_rollout_end")

    def on_update(self) -> bool:
        return self._all("on_update")

    def on_evaluation(self, result: EvaluationResult) -> bool:
        return self._all("on_evaluation", result)

    def on_training_end(self) -> None:
        self._all("on_training_end")


class StopOnReturn(OnlineCallback):
    """Stops once an evaluation's mean return reaches ``threshold`` (SB3's StopTrainingOnRewardThreshold)."""

    def __init__(self, threshold: float):
        super().__init__()
        self.threshold = threshold

    def on_evaluation(self, result: EvaluationResult) -> bool:
        return result.mean_return < self.threshold
