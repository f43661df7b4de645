"""Fine-tune a multi-domain model on the hold-out tasks, against the same model trained from scratch (LRAM figure 16).

    python examples/lram/finetune.py runs/lram/xlstm/model --output runs/lram/finetune/xlstm

For every recorded hold-out task of Meta-World (MT5) and DMControl (DMC5): the top 5% of the task's
episodes by return (LRAM's selection), ``--steps`` optimizer steps of full fine-tuning, once from the
pretrained weights and once from freshly initialised weights of the same architecture (same data,
steps, schedule, seed and preprocessing); then ``--episodes`` evaluation episodes of each. Each run
is resumable (an interrupted task continues from its checkpoint; finished ones are skipped), with
progress bars. Writes ``finetune.json`` (per task and variant: normalised score, success, return,
final training loss) and ``finetune.png``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import torch

import lram_agents
from lram_agents import Agent
from lram_agents.envs import domains
from lram_agents.finetune import FinetuneConfig, finetune
from lram_agents.model import LRAMModel
from lram_agents.serialization import atomic_write_text
from lram_agents.training.checkpoint import list_checkpoints
from lram_agents.training.config import TrainerConfig

DOMAINS = ("metaworld", "dmcontrol")
VARIANTS = ("pretrained", "scratch")


def holdout_tasks(root: Path, only: list[str] | None = None) -> list[tuple[str, str]]:
    """The recorded hold-out tasks of Meta-World and DMControl (``only``: these task names)."""
    return [(d, t) for d in DOMAINS for t in domains.get(d).tasks("holdout") if (root / d / t).is_dir() and (not only or t in only)]


def run_one(base: Agent, variant: str, domain: str, task: str, args: argparse.Namespace) -> dict:
    """Fine-tune one variant on one task (resuming if it was cut) and evaluate it."""
    output = Path(args.output) / variant / task
    result_file = output / "result.json"
    if result_file.is_file():
        return json.loads(result_file.read_text())
    if variant == "pretrained":
        start = base
    else:
        torch.manual_seed(args.seed)
        start = Agent(LRAMModel(base.model.config), base.preprocessing, compile=False)
    trainer = TrainerConfig(batch_size=args.batch_size, learning_rate=args.learning_rate, min_learning_rate=args.learning_rate / 10,
                            warmup_steps=args.warmup_steps, context=50, seed=args.seed, checkpoint_every=100, log_every=25)
    resume = bool(list_checkpoints(output / "checkpoints"))
    tuned = finetune(start, Path(args.root) / domain / task, args.steps, FinetuneConfig(method="full", top_fraction=0.05), trainer,
                     output, resume=resume, device="cpu")
    options = {"seed": args.seed} if domain == "metaworld" else {}  # one set of Meta-World task variations (as evaluate.py)
    score = lram_agents.evaluate_suite(tuned.agent, domain, tasks=[task], episodes=args.episodes, num_envs=args.episodes,
                                       seed=args.seed, env_kwargs=options).scores[0]
    result = {"domain": domain, "task": task, "variant": variant, "normalized": score.normalized, "success_rate": score.success_rate,
              "mean_return": score.mean_return, "std_return": score.std_return, "final_loss": tuned.train.loss,
              "episodes_used": tuned.episodes_used, "episodes_total": tuned.episodes_total}
    atomic_write_text(result_file, json.dumps(result, indent=1) + "\n")
    print(f"{variant:>10} {domain}/{task}: normalized {score.normalized:.3f}, success {score.success_rate:.2f}, "
          f"loss {tuned.train.loss:.3f}", flush=True)
    return result


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(f"{r['domain']}/{r['task']}" for r in results))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(tasks) + 2), 3.8))
    for k, variant in enumerate(VARIANTS):
        values = {f"{r['domain']}/{r['task']}": r["normalized"] for r in results if r["variant"] == variant}
        ax.bar(np.arange(len(tasks)) + (k - 0.5) * 0.4, [np.nan_to_num(values.get(t, np.nan)) for t in tasks], 0.4,
               label=f"{variant} (mean {np.nanmean(list(values.values())):.2f})")
    ax.set_xticks(range(len(tasks)), [t.split("/")[1] for t in tasks], rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("normalised score after fine-tuning")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="the pretrained multi-domain model (zoo name or directory)")
    parser.add_argument("--output", required=True)
    parser.add_argument("--root", default="data/domains")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    parser.add_argument("--warmup-steps", type=int, default=30)
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tasks", nargs="+", help="only these hold-out tasks")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = lram_agents.load(args.model, compile=False)
    results = [run_one(base, variant, domain, task, args) for domain, task in holdout_tasks(Path(args.root), args.tasks)
               for variant in VARIANTS]
    summary = {v: float(np.nanmean([r["normalized"] for r in results if r["variant"] == v])) for v in VARIANTS}
    report = {"model": args.model, "steps": args.steps, "batch_size": args.batch_size, "learning_rate": args.learning_rate,
              "top_fraction": 0.05, "episodes": args.episodes, "mean_normalized": summary, "results": results}
    output = Path(args.output)
    atomic_write_text(output / "finetune.json", json.dumps(report, indent=1) + "\n")
    plot(results, output / "finetune.png")
    print(f"mean normalised score over {len(results) // 2} tasks: " + ", ".join(f"{v} {s:.3f}" for v, s in summary.items())
          + ("" if not all(map(math.isfinite, summary.values())) else f" (pretrained - scratch {summary['pretrained'] - summary['scratch']:+.3f})"))


if __name__ == "__main__":
    main()
