"""The ``lram`` command: record trajectories and train models from config files (JSON or YAML).

    lram record record.yaml [--output DIR] [--episodes N | --steps N]
    lram train train.yaml [--output-dir DIR] [--steps N] [--resume] [--device cpu|cuda] [--threads N]
    lram finetune finetune.yaml [--output-dir DIR] [--steps N] [--resume] [--device cpu|cuda] [--threads N]
    torchrun --nproc_per_node=2 -m lram_agents.cli train train.yaml      # DistributedDataParallel

The config files are described in :mod:`lram_agents.run_configs`.
"""

from __future__ import annotations

import argparse
import logging
import sys

import torch

from lram_agents.config_utils import ConfigError
from lram_agents.data.format import DatasetError
from lram_agents.serialization import CheckpointError

logger = logging.getLogger("lram_agents")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        args.run(args)
    except (ConfigError, DatasetError, CheckpointError) as err:
        print(f"lram {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lram", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    rec = commands.add_parser("record", help="record trajectories of a policy or an SB3 learning history")
    rec.add_argument("config", help="record config (JSON or YAML)")
    rec.add_argument("--output", help="override the config's output directory")
    budget = rec.add_mutually_exclusive_group()
    budget.add_argument("--episodes", type=int, help="override the number of episodes")
    budget.add_argument("--steps", type=int, help="override the number of steps")
    rec.add_argument("--threads", type=int, help="torch CPU threads")
    rec.set_defaults(run=run_record)
    train = commands.add_parser("train", help="train a model offline on trajectory files")
    train.add_argument("config", help="train config (JSON or YAML)")
    _add_run_options(train)
    train.set_defaults(run=run_train)
    tune = commands.add_parser("finetune", help="fine-tune a zoo model or checkpoint on a new task's trajectories")
    tune.add_argument("config", help="finetune config (JSON or YAML)")
    _add_run_options(tune)
    tune.set_defaults(run=run_finetune)
    return parser


def _add_run_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--output-dir", help="override the config's output_dir")
    command.add_argument("--steps", type=int, help="override the total number of optimizer steps")
    command.add_argument("--resume", action="store_true", help="continue the run in output_dir from its newest checkpoint")
    command.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, ...")
    command.add_argument("--threads", type=int, help="torch CPU threads")
    command.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_record(args: argparse.Namespace) -> None:
    import gymnasium as gym

    import lram_agents  # noqa: F401  (registers the environments)
    from lram_agents.data.recorder import record
    from lram_agents.run_configs import RecordConfig, load_config_file, make_policy

    data = load_config_file(args.config)
    overrides = {"output": args.output, "episodes": args.episodes, "steps": args.steps}
    if args.episodes is not None or args.steps is not None:
        data = {k: v for k, v in data.items() if k not in ("episodes", "steps")}
    data.update({k: v for k, v in overrides.items() if v is not None})
    cfg = RecordConfig.from_dict(data)
    env = gym.make(cfg.env, **cfg.env_kwargs)
    writer = {"episodes_per_file": cfg.episodes_per_file, "image_shape": cfg.image_shape}
    if cfg.learning_history is not None:
        summary = _record_history(cfg, env, writer)
    else:
        summary = record(env, make_policy(cfg.policy, env), cfg.output, episodes=cfg.episodes, steps=cfg.steps, seed=cfg.seed, task=cfg.task,
                         domain=cfg.domain, max_env_errors=cfg.max_env_errors, **writer)
    mean = sum(summary.returns) / max(1, len(summary.returns))
    print(f"recorded {summary.episodes} episodes, {summary.steps} steps, mean return {mean:.3f}, {len(summary.files)} files in {cfg.output}")


def _record_history(cfg, env, writer_kwargs):
    import stable_baselines3

    from lram_agents.data.learning_history import record_learning_history
    from lram_agents.run_configs import _sb3_class

    lh = cfg.learning_history
    algo = _sb3_class(stable_baselines3, lh.algo)(lh.policy, env, seed=cfg.seed, device="cpu", **lh.algo_kwargs)
    return record_learning_history(algo, lh.total_timesteps, cfg.output, keep_every=lh.keep_every, history_id=lh.history_id,
                                   task=cfg.task, domain=cfg.domain, **writer_kwargs)


def run_train(args: argparse.Namespace) -> None:
    import dataclasses

    from lram_agents.model import LRAMModel
    from lram_agents.run_configs import TrainConfig, build_model_config, build_sources, load_config_file
    from lram_agents.training.distributed import shutdown_distributed
    from lram_agents.training.trainer import Trainer

    cfg = TrainConfig.from_dict(load_config_file(args.config))
    trainer_cfg = dataclasses.replace(cfg.trainer, progress=cfg.trainer.progress and not args.no_progress)
    torch.manual_seed(trainer_cfg.seed)  # the model's initial weights (rank 0's are broadcast under DDP)
    model = LRAMModel(build_model_config(cfg.model))
    sources = build_sources(cfg.data, trainer_cfg)
    validation = build_sources(cfg.validation, trainer_cfg) or None
    trainer = Trainer(model, trainer_cfg, args.output_dir or cfg.output_dir, device=args.device)
    result = trainer.fit(sources, args.steps or cfg.steps, validation=validation, resume=args.resume)
    if trainer.dist.is_main:
        print(f"trained to step {result.step}: loss {result.loss}, validation loss {result.val_loss}; model in {result.output_dir / 'model'}")
    shutdown_distributed()


def run_finetune(args: argparse.Namespace) -> None:
    import dataclasses

    from lram_agents.finetune.offline import finetune
    from lram_agents.finetune.spaces import IncompatibleSpaceError
    from lram_agents.registry import UnknownModelError, WeightsUnavailableError
    from lram_agents.run_configs import FinetuneRunConfig, build_dataset, load_config_file

    cfg = FinetuneRunConfig.from_dict(load_config_file(args.config))
    trainer_cfg = dataclasses.replace(cfg.trainer, progress=cfg.trainer.progress and not args.no_progress)
    validation = build_dataset(cfg.validation, "validation") if cfg.validation is not None else None
    try:
        result = finetune(cfg.pretrained, build_dataset(cfg.data, "data"), args.steps or cfg.steps, cfg.finetune, trainer_cfg,
                          args.output_dir or cfg.output_dir, resume=args.resume, device=args.device, validation=validation)
    except IncompatibleSpaceError as err:  # the data's spaces do not fit the pretrained model
        raise DatasetError(str(err)) from None
    except (UnknownModelError, WeightsUnavailableError) as err:
        raise ConfigError(f"config field 'pretrained' = {cfg.pretrained!r}: {err}") from None
    for line in result.spaces:
        print(line)
    print(f"fine-tuned {cfg.pretrained} ({cfg.finetune.method}) on {result.episodes_used} of {result.episodes_total} episodes "
          f"to step {result.train.step}: loss {result.train.loss}; agent in {result.model_dir}")


if __name__ == "__main__":
    sys.exit(main())
