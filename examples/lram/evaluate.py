"""Evaluate a multi-domain model on every training task it saw and zero-shot on the hold-out tasks.

    python examples/lram/evaluate.py runs/lram/xlstm/model --output runs/lram/evaluation/xlstm
    python examples/lram/evaluate.py xlstm-lram-1m --domains metaworld --splits train --episodes 3

Loads the model with ``lram_agents.load`` (a zoo name or a directory); the agent takes each task's
reward scale and target return from the env it is bound to (its ``preprocessing.json`` table). Every
task runs ``--episodes`` episodes in parallel copies of its env (first reset seeded with ``--seed``; Meta-World's
set of task variations too),
scored by :func:`lram_agents.evaluate_suite` (Atari: human-normalised; others: data-normalised against
``envs/domains/reference_scores.json``). Tasks are those of the training config (``--config``) for the
training split and every recorded hold-out task for the other. Writes ``evaluation.json`` (per task
and per domain, beside the data's own policy and the random one) and ``scores.png``, with progress bars.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

import lram_agents
from lram_agents.envs import domains
from lram_agents.run_configs import load_config_file
from lram_agents.serialization import atomic_write_text
from lram_agents.suite import SuiteResult, load_reference, normalized_score

HERE = Path(__file__).parent
DOMAINS = ("metaworld", "dmcontrol", "atari", "procgen", "robosuite")


def tasks_of(config: dict, domain: str, split: str, root: Path) -> list[str]:
    """The tasks evaluated: for ``train`` those the config trained on; for ``holdout`` the recorded ones."""
    entry = next(d for d in config["data"] if "domains" in d)
    if split == "train":
        return list((entry.get("tasks") or {}).get(domain, domains.get(domain).tasks("train")))
    return [t for t in domains.get(domain).tasks("holdout") if (root / domain / t).is_dir()]


def env_kwargs(domain: str, seed: int) -> dict:
    """Meta-World draws each env's set of task variations (object and goal positions) at random unless
    ``seed`` is given: with it the evaluation is the same in every process (and the replay test can
    replay it)."""
    return {"seed": seed} if domain == "metaworld" else {}


def reference_row(domain: str, task: str, reference: dict) -> dict:
    """The data's own policy and the random policy on the task, normalised like the agent."""
    stats = reference.get(domain, {}).get(task, {})
    norm = lambda value: normalized_score(domain, task, value) if value is not None else math.nan  # noqa: E731
    return {"data_policy": norm(stats.get("policy")), "data_policy_success": stats.get("policy_success", math.nan),
            "random": norm(stats.get("random"))}


def evaluate_model(model: str, config: dict, domain_names: list[str], splits: list[str], episodes: int, seed: int,
                   root: Path, continuous_decoding: str | None = None) -> dict:
    # the plain step: the replay test sees the same numbers
    agent = lram_agents.load(model, compile=False, continuous_decoding=continuous_decoding)
    reference = load_reference()
    report = {"model": model, "episodes": episodes, "seed": seed, "parameters": agent.model.num_parameters(),
              "continuous_decoding": agent.continuous_decoding, "suites": {}}
    for split in splits:
        for domain in domain_names:
            tasks = tasks_of(config, domain, split, root)
            if not tasks:
                continue
            start = time.time()
            suite = lram_agents.evaluate_suite(agent, domain, split=split, episodes=episodes, tasks=tasks, num_envs=episodes, seed=seed,
                                               env_kwargs=env_kwargs(domain, seed))
            rows = []
            for score in suite.scores:
                rows.append({"task": score.task, "mean_return": score.mean_return, "std_return": score.std_return,
                             "success_rate": score.success_rate, "normalized": score.normalized,
                             **reference_row(domain, score.task, reference)})
            summary = suite.per_domain()[domain]
            summary["data_policy"] = _nanmean([r["data_policy"] for r in rows])
            summary["wall_s"] = time.time() - start
            report["suites"][f"{domain}/{split}"] = {"tasks": rows, "summary": summary, "result": suite}
            print(f"{domain} {split}: normalized {summary['normalized']:.3f} (data policy {summary['data_policy']:.3f}), "
                  f"success {summary['success rate']:.2f}, {len(rows)} tasks, {summary['wall_s']:.0f} s", flush=True)
    return report


def _nanmean(values) -> float:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else math.nan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a zoo name or a model directory (e.g. runs/lram/xlstm/model)")
    parser.add_argument("--config", default=str(HERE / "train_xlstm.yaml"), help="the training config (its task list)")
    parser.add_argument("--domains", nargs="+", default=list(DOMAINS), choices=DOMAINS)
    parser.add_argument("--splits", nargs="+", default=["train", "holdout"], choices=["train", "holdout"])
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", default="data/domains", help="the domains' data (which hold-out tasks are recorded)")
    parser.add_argument("--output", help="directory for evaluation.json and scores.png")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--continuous-decoding", choices=("argmax", "mean"), help="default: the agent's own")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    report = evaluate_model(args.model, load_config_file(args.config), args.domains, args.splits, args.episodes, args.seed, Path(args.root),
                            args.continuous_decoding)
    if args.output:
        output = Path(args.output)
        output.mkdir(parents=True, exist_ok=True)
        scores = tuple(s for suite in report["suites"].values() for s in suite.pop("result").scores)
        SuiteResult(scores).plot(output / "scores.png")
        atomic_write_text(output / "evaluation.json", json.dumps(report, indent=1) + "\n")
        print(f"wrote {output / 'evaluation.json'} and {output / 'scores.png'}")


if __name__ == "__main__":
    main()
