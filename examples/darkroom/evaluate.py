"""In-context evaluation on Dark-Room's 20 hold-out goals: 40 consecutive trials per goal, memory kept across them.

Each trained model is loaded with :func:`lram_agents.load` and played by :func:`lram_agents.evaluate` on
:func:`lram_agents.envs.task_vector_env` (one env per hold-out goal) with ``keep_memory=True``: the same
code a user runs, and no gradient step. The shortest-path expert (:class:`DarkRoomExpert`) gives each
goal's optimum. Writes ``evaluation.json`` (every goal x trial return) and ``return_vs_trial.png``
(mean ± standard error over the goals) and prints the table. Results already in the output's
``evaluation.json`` for the same goals, trials and seed are kept (evaluate each backbone after it trains).

    nice -n 10 python examples/darkroom/evaluate.py                      # the runs of examples/darkroom/
    nice -n 10 python examples/darkroom/evaluate.py --models xlstm-7-1=runs/darkroom/xlstm-7-1/model
    nice -n 10 python examples/darkroom/evaluate.py --sample --seed 1  # sampled actions (seeded), one folder per seed
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import gymnasium as gym
import matplotlib
import numpy as np
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import lram_agents  # noqa: E402
from lram_agents.envs import task_family, task_vector_env  # noqa: E402
from lram_agents.envs.darkroom import DarkRoomExpert  # noqa: E402
from lram_agents.evaluation_report import in_context_gain, mean_sem, per_task_gain  # noqa: E402
from lram_agents.serialization import atomic_write_text, save_figure  # noqa: E402

ENV_ID = "lram_agents/DarkRoom-v0"
BACKBONES = {  # run name -> label in tables and plots
    "xlstm-7-1": "xLSTM [7:1]",
    "xlstm-1-0": "xLSTM [1:0]",
    "mamba": "Mamba",
    "transformer": "Transformer (RoPE)",
}
LAYOUT_VARIANTS = {  # Algorithm Distillation's one token per transition: same data and budget; then AD's setup
    "transformer-transition": "Transformer (RoPE), one token per transition (AD's layout)",
    "transformer-ad": "Transformer (RoPE), AD's layout, 4-episode context, 1-in-20 histories",
}
LABELS = {**BACKBONES, **LAYOUT_VARIANTS}
TABLE_TRIALS = (1, 5, 10, 20, 30, 40)


def expert_returns(goals: list[tuple[int, int]]) -> list[float]:
    """The shortest-path expert's return per goal (the optimum of one episode)."""
    returns = []
    for goal in goals:
        env, expert = gym.make(ENV_ID, task=goal), DarkRoomExpert(goal)
        observation, _ = env.reset(seed=0)
        total, done = 0.0, False
        while not done:
            observation, reward, terminated, truncated, _ = env.step(expert.act(observation))
            total, done = total + float(reward), terminated or truncated
        returns.append(total)
    return returns


def evaluate_in_context(model_dir: str | Path, goals: list, trials: int, env_seed: int = 0, progress: bool = True,
                        **agent_options) -> dict:
    """(goal, trial) returns of the agent saved in ``model_dir``, memory kept across its trials."""
    agent = lram_agents.load(model_dir, device="cpu", **agent_options)
    start = time.perf_counter()
    result = lram_agents.evaluate(agent, task_vector_env(ENV_ID, goals), n_episodes=len(goals) * trials, keep_memory=True,
                                  seed=env_seed, progress=progress)
    return {"returns": result.trial_returns().tolist(), "parameters": agent.model.num_parameters(),
            "seconds": time.perf_counter() - start, "latency_median_ms": result.latency_median_ms,
            "target_return": agent.target_return, "deterministic": agent.deterministic}


def earlier_results(path: Path, report: dict) -> dict:
    """The results already in ``path`` if they were measured the same way (goals, trials, seed, sampling), else none:
    each backbone can be evaluated right after it trains, into one table."""
    if not path.is_file():
        return {}
    earlier = json.loads(path.read_text())
    same = all(earlier.get(key) == report[key] for key in ("env_id", "goals", "trials", "seed", "sampled_actions"))
    return earlier["results"] if same else {}


def per_trial(returns: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over goals, per trial."""
    return mean_sem(returns)


def gain(table: np.ndarray) -> tuple[float, float]:
    """Last-10-trial mean minus trial 1, mean ± standard error paired over goals."""
    return in_context_gain(table, last=10)


def per_goal_gain(table: np.ndarray) -> np.ndarray:
    return per_task_gain(table, last=10)


def summary_rows(results: dict, expert_mean: float, trials: tuple[int, ...] = TABLE_TRIALS) -> list[str]:
    """A Markdown table: return at some trials and the last-10 mean (mean ± s.e. over goals) per backbone."""
    shown = [t for t in trials if t <= len(next(iter(results.values()))["returns"][0])]
    header = "| backbone | params | " + " | ".join(f"trial {t}" for t in shown) + " | last 10 trials | % of optimum |"
    rows = [header, "|" + " --- |" * (len(shown) + 4)]
    for name, result in results.items():
        mean, sem = per_trial(result["returns"])
        table = np.asarray(result["returns"])
        last = table[:, -10:].mean(1)  # per goal: mean of its last 10 trials
        last_mean, last_sem = mean_sem(last)
        cells = " | ".join(f"{mean[t - 1]:.1f} ± {sem[t - 1]:.1f}" for t in shown)
        label = LABELS.get(name, name)
        rows.append(f"| {label} | {result['parameters'] / 1e3:.0f}K | {cells} | {last_mean:.1f} ± {last_sem:.1f} | "
                    f"{100 * last_mean / expert_mean:.0f} % |")
    return rows


def plot(results: dict, expert_mean: float, path: Path, actions: str = "greedy actions") -> None:
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for name, result in results.items():
        mean, sem = per_trial(result["returns"])
        trials = np.arange(1, len(mean) + 1)
        line, = ax.plot(trials, mean, label=LABELS.get(name, name), lw=1.6)
        ax.fill_between(trials, mean - sem, mean + sem, color=line.get_color(), alpha=0.2)
    ax.axhline(expert_mean, color="black", ls="--", lw=1.2, label=f"expert optimum ({expert_mean:.1f})")
    n_goals = len(next(iter(results.values()))["returns"])
    ax.set(xlabel="trial (episode on the same goal, memory kept)", ylabel="return",
           title=f"Dark-Room in-context learning on {n_goals} hold-out goals\n{actions}, mean ± s.e.")
    ax.set_ylim(0, 1.1 * expert_mean)
    ax.legend(fontsize=8, loc="center right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=[f"{n}=runs/darkroom/{n}/model" for n in LABELS],
                        help="name=model_dir pairs (default: the runs of examples/darkroom/train_*.yaml)")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--goals", type=int, help="only the first N hold-out goals (a quick look)")
    parser.add_argument("--output", type=Path,
                        help="default: runs/darkroom/evaluation, or runs/darkroom/evaluation-sampled-seed<seed> with --sample")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sample", action="store_true", help="sample actions (seeded) instead of the greedy default")
    args = parser.parse_args()
    args.output = args.output or Path("runs/darkroom/evaluation" + (f"-sampled-seed{args.seed}" if args.sample else ""))
    torch.set_num_threads(1)
    goals = list(task_family(ENV_ID).holdout_tasks()[: args.goals])
    expert = expert_returns(goals)
    results = {}
    for pair in args.models:
        name, _, model_dir = pair.partition("=")
        if not Path(model_dir).is_dir():
            print(f"skipping {name}: {model_dir} does not exist (train it first)")
            continue
        print(f"{name}: {model_dir}")
        options = {"deterministic": False, "seed": args.seed} if args.sample else {}
        results[name] = {"model_dir": model_dir, **evaluate_in_context(model_dir, goals, args.trials, env_seed=args.seed, **options)}
    if not results:
        raise SystemExit("no model to evaluate")
    report = {"env_id": ENV_ID, "goals": [list(g) for g in goals], "trials": args.trials, "seed": args.seed,
              "sampled_actions": args.sample, "expert_returns": expert, "expert_mean": float(np.mean(expert)), "results": results}
    merged = {**earlier_results(args.output / "evaluation.json", report), **results}
    order = [*LABELS, *sorted(set(merged) - set(LABELS))]
    report["results"] = {name: merged[name] for name in order if name in merged}
    args.output.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.output / "evaluation.json", json.dumps(report, indent=1) + "\n")
    actions = f"sampled actions (seed {args.seed})" if args.sample else "greedy actions"
    plot(report["results"], report["expert_mean"], args.output / "return_vs_trial.png", actions)
    print("\n".join(summary_rows(report["results"], report["expert_mean"])))
    print(f"expert optimum (mean over the goals): {report['expert_mean']:.2f}; written to {args.output}")


if __name__ == "__main__":
    main()
