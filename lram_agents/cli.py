"""The ``lram`` command: record trajectories, train and fine-tune from config files, evaluate agents, benchmark.

    lram record record.yaml [--output DIR] [--episodes N | --steps N]
    lram train train.yaml [--output-dir DIR] [--steps N] [--resume] [--device cpu|cuda] [--threads N]
    lram finetune finetune.yaml [--output-dir DIR] [--steps N] [--resume] [--device cpu|cuda] [--threads N]
    lram evaluate NAME_OR_DIR --env ID [--episodes N] [--envs N] [--seed S] [--output DIR]
    lram bench latency|training|soak [benchmark options]   (lram bench latency --help)
    lram config --example train|record|finetune            a commented config with every field
    torchrun --nproc_per_node=2 -m lram_agents.cli train train.yaml      # DistributedDataParallel

Config files (JSON or YAML) are checked field by field; ``lram config --example KIND`` prints one with
every field explained. Mistakes in a command or config (a bad value, a missing file, an unknown env id
or model name) end with ``lram COMMAND: error: ...`` and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys

logger = logging.getLogger("lram_agents")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    try:
        args.run(args)
    except Exception as err:  # noqa: BLE001  (user errors get one line, the rest their traceback)
        if not isinstance(err, _user_errors()):
            raise
        print(f"lram {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean a bad command, config, file or name (imported only once one was raised)."""
    import gymnasium as gym

    from lram_agents.config_utils import ConfigError
    from lram_agents.data.format import DatasetError
    from lram_agents.devices import DeviceError
    from lram_agents.registry import UnknownModelError, WeightsUnavailableError
    from lram_agents.serialization import CheckpointError

    return (ConfigError, DatasetError, CheckpointError, UnknownModelError, WeightsUnavailableError, DeviceError, gym.error.Error,
            FileNotFoundError)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lram", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    rec = commands.add_parser("record", help="record trajectories of a policy or an SB3 learning history")
    rec.add_argument("config", help="record config (JSON or YAML; lram config --example record)")
    rec.add_argument("--output", help="override the config's output directory")
    budget = rec.add_mutually_exclusive_group()
    budget.add_argument("--episodes", type=int, help="override the number of episodes")
    budget.add_argument("--steps", type=int, help="override the number of steps")
    rec.add_argument("--threads", type=int, help="torch CPU threads")
    rec.set_defaults(run=run_record)
    train = commands.add_parser("train", help="train a model offline on trajectory files")
    train.add_argument("config", help="train config (JSON or YAML; lram config --example train)")
    _add_run_options(train)
    train.set_defaults(run=run_train)
    tune = commands.add_parser("finetune", help="fine-tune a zoo model or checkpoint on a new task's trajectories")
    tune.add_argument("config", help="finetune config (JSON or YAML; lram config --example finetune)")
    _add_run_options(tune)
    tune.set_defaults(run=run_finetune)
    _add_evaluate(commands)
    bench = commands.add_parser("bench", help="benchmarks: acting latency, training speed", add_help=False,
                                usage="lram bench latency|training|soak [options]   (lram bench latency --help for its options)")
    bench.add_argument("which", nargs="?", choices=("latency", "training", "soak"))
    bench.add_argument("options", nargs=argparse.REMAINDER)
    bench.add_argument("-h", "--help", action="store_true", dest="bench_help")  # after latency|training: the benchmark's help
    bench.set_defaults(run=run_bench, bench_parser=bench)
    config = commands.add_parser("config", help="print a commented example config with every field")
    config.add_argument("--example", required=True, choices=("train", "record", "finetune"))
    config.set_defaults(run=run_config)
    return parser


def _add_run_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--output-dir", help="override the config's output_dir")
    command.add_argument("--steps", type=int, help="override the total number of optimizer steps")
    command.add_argument("--resume", action="store_true", help="continue the run in output_dir from its newest checkpoint")
    command.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, ...")
    command.add_argument("--threads", type=int, help="torch CPU threads")
    command.add_argument("--no-progress", action="store_true", help="no progress bar")
    command.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE",
                         help="change one config field, e.g. --set model.inline.backbone.position_embedding=alibi "
                              "(VALUE read as YAML; repeat for several)")


def _add_evaluate(commands) -> None:
    ev = commands.add_parser("evaluate", help="play episodes with a zoo agent or a saved one and report them",
                             description="Plays --episodes episodes in --envs parallel copies of --env and prints the "
                                         "returns, lengths, success and latency; writes evaluation.json (and, for agents "
                                         "that keep memory across episodes, the return per trial and trials.png).")
    ev.add_argument("model", help="a zoo name (lram_agents.list_models()) or a directory written by save_pretrained")
    ev.add_argument("--env", required=True, help="Gymnasium env id, e.g. lram_agents/TMaze-v0")
    ev.add_argument("--env-kwargs", default="{}", help='JSON passed to gym.make, e.g. \'{"corridor_length": 100}\'')
    ev.add_argument("--episodes", type=int, default=10, help="episodes in all (with --tasks: per task)")
    ev.add_argument("--envs", type=int, default=1, help="parallel copies of the env (a Gymnasium vector env)")
    ev.add_argument("--tasks", choices=("holdout", "train"), help="meta-RL envs (Dark-Room, ...): one copy per task of the env's "
                    "family, each playing --episodes consecutive episodes of its task (in-context evaluation); replaces --envs")
    ev.add_argument("--seed", type=int, default=0, help="seeds the first reset of every copy and the agent's sampling")
    memory = ev.add_mutually_exclusive_group()
    memory.add_argument("--keep-memory", dest="keep_memory", action="store_true", default=None,
                        help="keep memory across each copy's episodes (in-context); default: the agent's setting")
    memory.add_argument("--no-keep-memory", dest="keep_memory", action="store_false")
    greedy = ev.add_mutually_exclusive_group()
    greedy.add_argument("--deterministic", dest="deterministic", action="store_true", default=None, help="argmax actions")
    greedy.add_argument("--sample", dest="deterministic", action="store_false", help="sampled actions")
    ev.add_argument("--output", help="where evaluation.json goes (default runs/evaluate/<model>)")
    ev.add_argument("--device", default="auto")
    ev.add_argument("--threads", type=int, help="torch CPU threads")
    ev.add_argument("--no-progress", action="store_true")
    ev.set_defaults(run=run_evaluate)


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
        kept = f"{summary.kept} of {summary.episodes} finished episodes (keep_every {cfg.learning_history.keep_every})"
    else:
        summary = record(env, make_policy(cfg.policy, env), cfg.output, episodes=cfg.episodes, steps=cfg.steps, seed=cfg.seed, task=cfg.task,
                         domain=cfg.domain, max_env_errors=cfg.max_env_errors, **writer)
        kept = f"{summary.episodes} episodes"
    mean = sum(summary.returns) / max(1, len(summary.returns))
    print(f"recorded {kept}, {summary.steps} steps, mean return {mean:.3f}, {len(summary.files)} files in {cfg.output}")


def _record_history(cfg, env, writer_kwargs):
    from lram_agents.data.learning_history import record_learning_history
    from lram_agents.envs.source_rl import algorithm_class

    lh = cfg.learning_history
    algorithm = algorithm_class(lh.algorithm)(lh.policy, env, seed=cfg.seed, device="cpu", **lh.algorithm_kwargs)
    return record_learning_history(algorithm, lh.total_timesteps, cfg.output, keep_every=lh.keep_every, history_id=lh.history_id,
                                   task=cfg.task, domain=cfg.domain, **writer_kwargs)


def run_train(args: argparse.Namespace) -> None:
    import dataclasses

    import torch

    from lram_agents.config_utils import set_fields
    from lram_agents.run_configs import TrainConfig, build_model, build_sources, load_config_file
    from lram_agents.training.distributed import shutdown_distributed
    from lram_agents.training.trainer import Trainer

    cfg = TrainConfig.from_dict(set_fields(load_config_file(args.config), args.set))
    trainer_cfg = dataclasses.replace(cfg.trainer, progress=cfg.trainer.progress and not args.no_progress)
    torch.manual_seed(trainer_cfg.seed)  # the model's initial weights (rank 0's are broadcast under DDP)
    model = build_model(cfg.model)
    sources = build_sources(cfg.data, trainer_cfg)
    validation = build_sources(cfg.validation, trainer_cfg) or None
    trainer = Trainer(model, trainer_cfg, args.output_dir or cfg.output_dir, device=args.device)
    result = trainer.fit(sources, args.steps or cfg.steps, validation=validation, resume=args.resume)
    if trainer.dist.is_main:
        print(f"trained to step {result.step}: loss {result.loss}, validation loss {result.val_loss}; model in {result.output_dir / 'model'}")
    shutdown_distributed()


def run_finetune(args: argparse.Namespace) -> None:
    import dataclasses

    from lram_agents.config_utils import ConfigError, set_fields
    from lram_agents.data.format import DatasetError
    from lram_agents.finetune.offline import finetune
    from lram_agents.finetune.spaces import IncompatibleSpaceError
    from lram_agents.registry import UnknownModelError, WeightsUnavailableError
    from lram_agents.run_configs import FinetuneRunConfig, build_dataset, load_config_file

    cfg = FinetuneRunConfig.from_dict(set_fields(load_config_file(args.config), args.set))
    trainer_cfg = dataclasses.replace(cfg.trainer, progress=cfg.trainer.progress and not args.no_progress)
    validation = build_dataset(cfg.validation, "validation") if cfg.validation is not None else None
    try:
        result = finetune(cfg.pretrained, build_dataset(cfg.data, "data"), args.steps or cfg.steps, cfg.finetune, trainer_cfg,
                          args.output_dir or cfg.output_dir, resume=args.resume, device=args.device, validation=validation)
    except IncompatibleSpaceError as err:  # the data's spaces do not fit the pretrained model
        raise DatasetError(str(err)) from None
    except (UnknownModelError, WeightsUnavailableError) as err:
        raise ConfigError(f"config field 'pretrained' = {cfg.pretrained!r}: {err}") from None
    # (how the spaces were matched is logged by finetune itself)
    print(f"fine-tuned {cfg.pretrained} ({cfg.finetune.method}) on {result.episodes_used} of {result.episodes_total} episodes "
          f"to step {result.train.step}: loss {result.train.loss}; agent in {result.model_dir}")


def run_evaluate(args: argparse.Namespace) -> None:
    import json
    from pathlib import Path

    import gymnasium as gym

    import lram_agents
    from lram_agents import evaluation_report
    from lram_agents.config_utils import ConfigError

    try:
        env_kwargs = json.loads(args.env_kwargs)
    except json.JSONDecodeError as err:
        raise ConfigError(f"--env-kwargs {args.env_kwargs!r} is not JSON: {err}") from None
    if args.episodes < 1 or args.envs < 1:
        raise ConfigError(f"--episodes ({args.episodes}) and --envs ({args.envs}) must be >= 1")
    agent = lram_agents.load(args.model, device=args.device, seed=args.seed)
    episodes = args.episodes
    if args.tasks is not None:
        from lram_agents.envs import task_family, task_vector_env

        try:
            family = task_family(args.env)
        except ValueError as err:
            raise ConfigError(f"--tasks needs an env with a task family: {err}") from None
        tasks = family.holdout_tasks() if args.tasks == "holdout" else family.train_tasks()
        env, episodes = task_vector_env(args.env, tasks, **env_kwargs), args.episodes * len(tasks)
    elif args.envs == 1:
        env = gym.make(args.env, **env_kwargs)
    else:
        env = gym.make_vec(args.env, num_envs=args.envs, vectorization_mode="sync", **env_kwargs)
    try:
        agent.bind(env)
    except ValueError as err:  # trained in other spaces, or no reward scale for this env
        raise ConfigError(f"{args.model} cannot act in {args.env}: {err}") from None
    in_context = agent.keep_memory if args.keep_memory is None else args.keep_memory
    result = lram_agents.evaluate(agent, env, episodes, keep_memory=args.keep_memory, deterministic=args.deterministic,
                                  seed=args.seed, progress=not args.no_progress)
    data = evaluation_report.report(result, in_context)
    data["command"] = {"model": args.model, "env": args.env, "env_kwargs": env_kwargs, "episodes": episodes, "envs": getattr(env, "num_envs", 1),
                       "tasks": args.tasks,
                       "seed": args.seed, "keep_memory": in_context, "deterministic": agent.deterministic if args.deterministic is None
                       else args.deterministic}
    output = Path(args.output or Path("runs/evaluate") / Path(args.model).name)
    print(f"{args.model} in {args.env}:")
    print(evaluation_report.table(data))
    written = evaluation_report.write(data, output, f"{args.model} in {args.env}")
    print("wrote " + ", ".join(str(p) for p in written))


def run_bench(args: argparse.Namespace) -> None:
    if args.which is None:  # lram bench [--help]
        args.bench_parser.print_usage()
        print("  latency   per-step acting latency and throughput vs context, against the memory-bandwidth floor\n"
              "  training  training step time of each backbone against the Transformer's, interleaved\n"
              "  soak      one agent acting for a million steps, memory kept: NaN/inf, latency and memory over time")
        return
    options = [o for o in args.options if o != "--"] + (["--help"] if args.bench_help else [])
    if args.which == "latency":
        from lram_agents.bench.latency import main as bench_main
    elif args.which == "training":
        from lram_agents.bench.training_speed import main as bench_main
    else:
        from lram_agents.bench.soak import main as bench_main
    bench_main(options, prog=f"lram bench {args.which}")


def run_config(args: argparse.Namespace) -> None:
    from lram_agents.config_examples import example

    print(example(args.example), end="")


if __name__ == "__main__":
    sys.exit(main())
