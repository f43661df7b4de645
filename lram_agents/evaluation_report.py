"""What ``lram evaluate`` shows and writes for an :class:`~lram_agents.evaluation.EvaluationResult`:
a table, ``evaluation.json`` and, for in-context agents (memory kept across episodes), the return
per trial with a plot (``trials.png``)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from lram_agents.evaluation import EvaluationResult
from lram_agents.serialization import atomic_write_text, save_figure


def report(result: EvaluationResult, in_context: bool) -> dict[str, Any]:
    """The summary, every episode, and (``in_context``) the mean return per trial with its standard error."""
    data: dict[str, Any] = {
        "summary": result.summary(),
        "episodes": {"returns": result.returns.tolist(), "lengths": result.lengths.tolist(),
                     "env": result.env_indices.tolist(), "trial": result.trials.tolist()},
    }
    if result.successes is not None:
        data["episodes"]["success"] = [None if math.isnan(s) else s for s in result.successes.tolist()]
    if in_context:
        data["trials"] = trial_means(result)
    return data


def trial_means(result: EvaluationResult) -> list[dict[str, float]]:
    """Mean return of the k-th consecutive episode over the envs that played it, with its standard error."""
    rows = []
    for k, column in enumerate(result.trial_returns().T):
        played = column[np.isfinite(column)]
        se = float(played.std(ddof=1) / math.sqrt(len(played))) if len(played) > 1 else math.nan
        rows.append({"trial": k + 1, "envs": int(len(played)), "mean_return": float(played.mean()), "standard_error": se})
    return rows


def mean_sem(values) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error over the first axis (e.g. over tasks), for each remaining entry."""
    values = np.asarray(values, dtype=np.float64)
    return values.mean(0), values.std(0, ddof=1) / np.sqrt(values.shape[0])


def per_task_gain(table, last: int = 10) -> np.ndarray:
    """In-context improvement per task: mean return of the last ``last`` trials minus the first trial's.

    ``table`` is (tasks, trials), e.g. :meth:`EvaluationResult.trial_returns` of an in-context evaluation.
    """
    table = np.asarray(table, dtype=np.float64)
    if table.ndim != 2 or table.shape[1] < 2:
        raise ValueError(f"need a (tasks, trials) table with at least 2 trials, got shape {table.shape}")
    return table[:, -last:].mean(1) - table[:, 0]


def in_context_gain(table, last: int = 10) -> tuple[float, float]:
    """:func:`per_task_gain`'s mean and standard error over the tasks (paired: each task against itself)."""
    mean, sem = mean_sem(per_task_gain(table, last))
    return float(mean), float(sem)


def table(data: dict[str, Any]) -> str:
    """The summary as aligned lines, then the per-trial returns when there are any."""
    lines = [f"{key:<30} {value:.4g}" if isinstance(value, float) else f"{key:<30} {value}" for key, value in data["summary"].items()]
    if "trials" in data:
        lines += ["", "trial  envs  mean return  (standard error)"]
        lines += [f"{r['trial']:>5}  {r['envs']:>4}  {r['mean_return']:>11.3f}  ({r['standard_error']:.3f})" for r in data["trials"]]
    return "\n".join(lines)


def write(data: dict[str, Any], directory: str | Path, title: str) -> list[Path]:
    """``evaluation.json`` and, with trials, ``trials.png`` in ``directory``; returns the paths written."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = [directory / "evaluation.json"]
    atomic_write_text(written[0], json.dumps(data, indent=2, allow_nan=True) + "\n")
    if "trials" in data:
        written.append(_plot_trials(data["trials"], directory / "trials.png", title))
    return written


def _plot_trials(rows: list[dict[str, float]], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trials = [r["trial"] for r in rows]
    means = np.array([r["mean_return"] for r in rows])
    errors = np.nan_to_num(np.array([r["standard_error"] for r in rows]))
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(trials, means, marker="o")
    ax.fill_between(trials, means - errors, means + errors, alpha=0.25)
    ax.set(xlabel="episode (memory kept across episodes)", ylabel="mean return", title=title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, path, dpi=120)
