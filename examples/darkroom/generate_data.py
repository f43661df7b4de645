"""Dark-Room learning histories for Algorithm Distillation: the source RL algorithm on each of the 80 training goals.

The recording is :mod:`lram_agents.data.task_histories` (any meta-RL family); this script keeps
Dark-Room's documented command. Every goal's history goes to its own file ``goal-<x>-<y>-0000000.h5``.

    nice -n 10 python examples/darkroom/generate_data.py examples/darkroom/source_rl.yaml
    # or one process per core: ... --shard 0/2 & ... --shard 1/2
    # histories on hold-out goals, for a held-out loss (never for training):
    nice -n 10 python examples/darkroom/generate_data.py examples/darkroom/source_rl.yaml --split holdout --goals 8 --output data/darkroom-holdout

Resumable: a goal's file appears (renamed into place) only when its history is complete, so a rerun
skips the goals already done and restarts an interrupted one from scratch.
"""

from __future__ import annotations

import lram_agents  # noqa: F401  (registers the environments)
from lram_agents.data.task_histories import main

if __name__ == "__main__":
    main(description=__doc__.splitlines()[0])
