"""Train one backbone on the T-Maze oracle data with RATE's curriculum (one CPU thread by default).

    python examples/tmaze/train.py examples/tmaze/configs/xlstm.json            # -> runs/tmaze/xlstm
    python examples/tmaze/train.py examples/tmaze/configs/rate.json --resume    # continue a killed run
    python examples/tmaze/train.py examples/tmaze/configs/xlstm-long.json       # fine-tune runs/tmaze/xlstm on <= 9 segments
    python examples/tmaze/train.py examples/tmaze/configs/rate.json --seed 1    # another seed -> runs/tmaze/rate-seed1

Stage n of the curriculum trains on the episodes that fit in n segments of K = 30 steps (Q_n), from
their first step (the hint), for ``batches_per_stage`` optimizer steps; the config file says which
context each backbone sees (see ``common.RunConfig``). The run directory is the trainer's
(``metrics.csv``, ``learning_curves.png``, ``checkpoints/``, ``model/``) plus ``run.json``: the
command, the config and the training wall time (summed over resumed sessions).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import torch

import lram_agents
from common import RunConfig
from lram_agents.data import TrajectoryDataset
from lram_agents.data.curriculum import curriculum_sampler
from lram_agents.initialization import apply_init
from lram_agents.model import LRAMModel
from lram_agents.serialization import atomic_write_text
from lram_agents.training import Trainer

RUN_FILE = "run.json"


def build_sampler(run: RunConfig, data: Path):
    c = run.curriculum_settings
    return curriculum_sampler(
        TrajectoryDataset(data), run.model_config, run.trainer_config.batch_size, c.segment_steps, c.max_segments,
        c.batches_per_stage, min_segments=c.min_segments, context=c.context, windows=c.windows, seed=run.trainer_config.seed,
    )


def initial_model(run: RunConfig) -> LRAMModel:
    """A fresh model with the config's long-memory init, or the weights of ``init_from`` (same config)."""
    model = LRAMModel(run.model_config)
    if run.init_from is None:
        apply_init(model, run.init)
        return model
    start = lram_agents.load(run.init_from, device="cpu").model
    if start.config != run.model_config:
        raise ValueError(f"init_from {run.init_from}: its model config differs from the run's 'model' section")
    model.load_state_dict(start.state_dict())
    return model


def train(config_path: Path, data: Path, out: Path, resume: bool, seed: int | None = None) -> dict:
    run = RunConfig.load(config_path)
    if seed is not None:  # another training seed of the same config (batches, init)
        run.trainer_config.seed = seed
    torch.manual_seed(run.trainer_config.seed)
    model = initial_model(run)  # a resumed run overwrites it with the checkpoint's weights
    sampler = build_sampler(run, data)
    previous = json.loads((out / RUN_FILE).read_text())["wall_time_s"] if resume and (out / RUN_FILE).is_file() else 0.0
    begin = time.perf_counter()
    result = Trainer(model, run.trainer_config, output_dir=out, device="cpu").fit(sampler, steps=sampler.total_batches, resume=resume)
    summary = {
        "name": run.name,
        "backbone": run.backbone,
        "config": json.loads(config_path.read_text()),
        "data": str(data),
        "command": " ".join(shlex.quote(a) for a in ["python", *sys.argv]),
        "seed": run.trainer_config.seed,
        "threads": torch.get_num_threads(),
        "parameters": model.num_parameters(),
        "steps": result.step,
        "final_loss": result.loss,
        "wall_time_s": previous + time.perf_counter() - begin,
    }
    atomic_write_text(out / RUN_FILE, json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", type=Path, help="examples/tmaze/configs/<backbone>.json")
    parser.add_argument("--data", type=Path, default=None, help="written by make_data.py (default: the config's, data/tmaze)")
    parser.add_argument("--out", type=Path, default=None, help="default: runs/tmaze/<config name>")
    parser.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --out")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--seed", type=int, default=None,
                        help="training seed instead of the config's (default out: runs/tmaze/<config>-seed<N>)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    default_out = args.config.stem if args.seed is None else f"{args.config.stem}-seed{args.seed}"
    out = args.out or Path("runs/tmaze") / default_out
    data = args.data or Path(RunConfig.load(args.config).data)
    summary = train(args.config, data, out, args.resume, args.seed)
    print(f"{summary['name']}: {summary['parameters']} parameters, {summary['steps']} steps, "
          f"final loss {summary['final_loss']:.2e}, {summary['wall_time_s'] / 60:.1f} min -> {out}")


if __name__ == "__main__":
    main()
