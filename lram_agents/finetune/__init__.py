"""Fine-tuning pretrained agents on new tasks: offline (top-p% trajectories, full or LoRA) and online.

* :func:`finetune` — offline fine-tuning on a new task's trajectories, on the offline Trainer
  (``lram finetune config.yaml`` on the command line); :class:`FinetuneConfig`.
* :class:`OnlineFinetuner` — online fine-tuning (Online-Decision-Transformer-style return-relabelled
  behaviour cloning) with SB3-style hooks (:class:`OnlineCallback`); :class:`OnlineConfig`.
* :func:`top_episodes` — the top p% of a dataset's episodes by return.
* :func:`check_transfer` — whether and how a new task's spaces fit a model's shared encoders and head.
* :func:`prepare_model` — a model ready to fine-tune (LoRA adapters, frozen weights); LoRA itself is
  in :mod:`lram_agents.lora` (``merge_lora`` folds the adapters into the weights).
"""

from lram_agents.finetune.buffer import EpisodeBuffer
from lram_agents.finetune.callbacks import OnlineCallback, OnlineCallbackList, StopOnReturn
from lram_agents.finetune.config import FinetuneConfig, OnlineConfig
from lram_agents.finetune.offline import FinetuneResult, finetune, finetuned_preprocessing, prepare_model
from lram_agents.finetune.online import OnlineFinetuner, OnlineResult
from lram_agents.finetune.rollout import StepData
from lram_agents.data.selection import top_episodes
from lram_agents.finetune.spaces import IncompatibleSpaceError, check_transfer

__all__ = [
    "EpisodeBuffer", "FinetuneConfig", "FinetuneResult", "IncompatibleSpaceError", "OnlineCallback", "OnlineCallbackList",
    "OnlineConfig", "OnlineFinetuner", "OnlineResult", "StepData", "StopOnReturn", "check_transfer", "finetune",
    "finetuned_preprocessing", "prepare_model", "top_episodes",
]
