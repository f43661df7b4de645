"""Runs ``lram train`` in a subprocess with test hooks set through environment variables.

* ``PAUSE_CHECKPOINT_STEP=N`` + ``PAUSE_MARKER=path``: while writing checkpoint N, write half of
  ``optimizer.safetensors``, create the marker and sleep, so a test can SIGKILL inside the write.
* ``STEP_DELAY=seconds``: sleep after every step (gives a test time to kill between steps).
* ``WEIGHTS_LOG=prefix``: after every step, each rank appends "step sha256-of-all-weights" to
  ``prefix.rank{r}``.
"""

import hashlib
import os
import sys
import time
from pathlib import Path

import torch

from lram_agents.cli import main
from lram_agents.training import checkpoint as ckpt
from lram_agents.training import trainer as trainer_module
from lram_agents.training.callbacks import Callback


def pause_inside_checkpoint_writes(step: int, marker: Path) -> None:
    real_save_file = ckpt.save_file

    def save_file(tensors, path, *args, **kwargs):
        real_save_file(tensors, path, *args, **kwargs)
        path = Path(path)
        if path.name == "optimizer.safetensors" and path.parent.name.startswith(f".tmp-step-{step:08d}"):
            with open(path, "r+b") as f:
                f.truncate(path.stat().st_size // 2)  # as if the kill came in the middle of the write
            marker.write_text("paused")
            time.sleep(600)

    ckpt.save_file = save_file


class StepHooks(Callback):
    def __init__(self, delay: float, weights_log: str | None):
        super().__init__()
        self.delay, self.weights_log = delay, weights_log

    def on_step(self) -> bool:
        if self.weights_log:
            digest = hashlib.sha256()
            for name, param in sorted(self.trainer.model.state_dict().items()):
                digest.update(name.encode() + param.detach().cpu().contiguous().numpy().tobytes())
            with open(f"{self.weights_log}.rank{self.trainer.dist.rank}", "a") as f:
                f.write(f"{self.trainer.step} {digest.hexdigest()}\n")
        time.sleep(self.delay)
        return True


def install_step_hooks(delay: float, weights_log: str | None) -> None:
    real_init = trainer_module.Trainer.__init__

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        self.callback.callbacks.append(StepHooks(delay, weights_log))

    trainer_module.Trainer.__init__ = init


if __name__ == "__main__":
    torch.set_num_threads(1)
    if "PAUSE_CHECKPOINT_STEP" in os.environ:
        pause_inside_checkpoint_writes(int(os.environ["PAUSE_CHECKPOINT_STEP"]), Path(os.environ["PAUSE_MARKER"]))
    install_step_hooks(float(os.environ.get("STEP_DELAY", "0")), os.environ.get("WEIGHTS_LOG"))
    sys.exit(main(sys.argv[1:]))
