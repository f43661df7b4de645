"""Offline training: :class:`Trainer` (single process or torchrun DDP), its config, callbacks and checkpoints."""

from lram_agents.training.callbacks import Callback, CallbackList
from lram_agents.training.config import TrainerConfig
from lram_agents.training.trainer import Trainer, TrainResult

__all__ = ["Callback", "CallbackList", "TrainResult", "Trainer", "TrainerConfig"]
