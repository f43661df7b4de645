"""Scores over a domain's tasks, as LRAM reports them: ``evaluate_suite`` and normalised scores.

    result = lram_agents.evaluate_suite(agent, "metaworld", split="train", episodes=3, output_dir="runs/mt45")
    print(result)                  # per-task table, then per-domain means
    result.per_domain()            # {"metaworld": {"normalized": ..., "success rate": ..., "tasks": 45}}

Normalised scores (LRAM section 4.1, appendix A):

* Atari: human-normalised, ``(R - random) / (human - random)`` with the published per-game scores of
  :data:`lram_agents.envs.domains.atari.HUMAN_SCORES` (NaN for the two games without a human score);
* every other domain: data-normalised, ``(R - min) / (max - min)`` with the minimum and maximum episode
  return of the task's data. The numbers of the data sets this repository generates are in
  ``envs/domains/reference_scores.json`` (written by ``examples/domains/reference_table.py``); pass
  ``reference=`` to normalise against other data.

Besides an :class:`~lram_agents.agent.Agent`, ``evaluate_suite`` takes ``"random"`` or a function
``make_policy(env) -> policy`` (anything :func:`lram_agents.data.policies.as_policy` accepts: an SB3
model, a callable of the observation, ...), built once per environment copy: the data's own policies
are evaluated through the same code as the agents.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import gymnasium as gym
import numpy as np

from lram_agents.data.policies import as_policy
from lram_agents.envs import domains

REFERENCE_FILE = Path(domains.__file__).with_name("reference_scores.json")


def load_reference(path: str | Path = REFERENCE_FILE) -> dict[str, dict[str, dict[str, float]]]:
    """``{domain: {task: {"data_min": ..., "data_max": ..., ...}}}`` (empty if the file does not exist)."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else {}


def normalized_score(domain: str, task: str, mean_return: float, reference: Mapping | None = None) -> float:
    """The LRAM-normalised score of ``mean_return`` on ``task`` (NaN when the task has no reference)."""
    spec = domains.get(domain)
    spec.split_of(task)
    if spec.score == "human":
        from lram_agents.envs.domains.atari import HUMAN_SCORES

        low, high = HUMAN_SCORES.get(task, (math.nan, math.nan))
    else:
        stats = (load_reference() if reference is None else reference).get(domain, {}).get(task)
        low, high = (stats["data_min"], stats["data_max"]) if stats else (math.nan, math.nan)
    if not high > low:  # NaN, or data of one return only
        return math.nan
    return float((mean_return - low) / (high - low))


@dataclass(frozen=True)
class TaskScore:
    """One task's evaluation: returns over ``episodes`` episodes, success rate (NaN if not reported)."""

    domain: str
    task: str
    split: str
    episodes: int
    mean_return: float
    std_return: float
    success_rate: float
    normalized: float


@dataclass(frozen=True)
class SuiteResult:
    """Per-task scores of one suite run; :meth:`per_domain` averages them."""

    scores: tuple[TaskScore, ...]

    def per_domain(self) -> dict[str, dict[str, float]]:
        """``{domain: {"normalized": mean over tasks (NaN ignored), "success rate": ..., "tasks": n}}``."""
        table = {}
        for domain in dict.fromkeys(s.domain for s in self.scores):
            rows = [s for s in self.scores if s.domain == domain]
            table[domain] = {"normalized": _nanmean([s.normalized for s in rows]),
                             "success rate": _nanmean([s.success_rate for s in rows]), "tasks": len(rows)}
        return table

    def write_csv(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(TaskScore.__dataclass_fields__))
            writer.writeheader()
            writer.writerows(asdict(s) for s in self.scores)
        return path

    def plot(self, path: str | Path) -> Path:
        """A bar chart of the normalised score per task, one colour per domain, domain means dashed
        ("n/a" where a task has no reference to normalise with)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(max(6.0, 0.28 * len(self.scores) + 2), 4))
        for k, (domain, summary) in enumerate(self.per_domain().items()):
            idx = [i for i, s in enumerate(self.scores) if s.domain == domain]
            values = [np.nan_to_num(self.scores[i].normalized) for i in idx]
            ax.bar(idx, values, color=f"C{k}", label=f"{domain} (mean {summary['normalized']:.2f})")
            ax.hlines(summary["normalized"], idx[0] - 0.4, idx[-1] + 0.4, colors=f"C{k}", linestyles="dashed")
            for i in idx:
                if math.isnan(self.scores[i].normalized):  # no reference for this task: say so on the chart
                    ax.text(i, 0, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
        ax.set_xticks(range(len(self.scores)), [s.task for s in self.scores], rotation=90, fontsize=7)
        ax.set_ylabel("normalised score")
        ax.axhline(0, color="grey", linewidth=0.5)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
        plt.close(fig)
        return path

    def __str__(self) -> str:
        lines = [f"{'domain':<10} {'task':<26} {'split':<7} {'return':>16} {'success':>8} {'normalized':>10}"]
        for s in self.scores:
            lines.append(f"{s.domain:<10} {s.task:<26} {s.split:<7} {s.mean_return:>9.1f} ± {s.std_return:<5.1f}"
                         f" {s.success_rate:>8.2f} {s.normalized:>10.3f}")
        for domain, summary in self.per_domain().items():
            lines.append(f"{domain}: normalized {summary['normalized']:.3f}, success rate {summary['success rate']:.2f} "
                         f"over {summary['tasks']} tasks")
        return "\n".join(lines)


class PolicyGroup:
    """One policy per environment copy of a ``SyncVectorEnv``, driven like an agent by ``evaluate``.

    ``make_policy(env)`` builds the policy of one copy (``"random"``: uniform actions); it is reset at
    the start of each of that copy's episodes.
    """

    keep_memory = False

    def __init__(self, make_policy: Callable[[gym.Env], Any] | str):
        self.make_policy, self.policies = make_policy, []

    def bind(self, vector_env) -> None:
        if not hasattr(vector_env, "envs"):
            raise TypeError(f"PolicyGroup needs a SyncVectorEnv (its envs), got {type(vector_env).__name__}")
        self.policies = [self._build(env, i) for i, env in enumerate(vector_env.envs)]
        self.action_space = vector_env.single_action_space

    def _build(self, env: gym.Env, index: int):
        if isinstance(self.make_policy, str):
            env.action_space.seed(index)  # reproducible, and different in each copy
            return as_policy(self.make_policy, env.action_space, env=env)
        return as_policy(self.make_policy(env), env.action_space, env=env)

    def forget(self) -> None:
        pass

    def act_batch(self, observations, rewards, episode_start, active=None, deterministic=None) -> np.ndarray:
        actions = []
        for i, policy in enumerate(self.policies):
            if active is not None and not active[i]:
                actions.append(self.action_space.sample())  # a reset step: the env ignores it
                continue
            if episode_start[i]:
                policy.reset()
            actions.append(np.asarray(policy(observations[i], float(rewards[i]))))
        return np.stack(actions)


def evaluate_suite(policy: Any, domain: str, split: str = "train", episodes: int = 3, *, tasks: list[str] | None = None,
                   num_envs: int = 1, seed: int = 0, env_kwargs: Mapping[str, Any] | None = None,
                   reference: Mapping | None = None, output_dir: str | Path | None = None, progress: bool = True) -> SuiteResult:
    """Evaluate ``policy`` on every task of ``domain``'s ``split`` (or on ``tasks``) and score it.

    Args:
        policy: an :class:`~lram_agents.agent.Agent`, ``"random"``, or ``make_policy(env) -> policy``.
        episodes: per task, spread over ``num_envs`` copies in a ``SyncVectorEnv``.
        env_kwargs: passed to ``gym.make`` of every task (e.g. ``{"terminal_on_life_loss": False}``).
        reference: data statistics for data-normalised scores (default: ``reference_scores.json``).
        output_dir: if given, ``scores.csv`` and ``scores.png`` are written there.
    """
    from lram_agents.evaluation import evaluate

    spec = domains.get(domain)
    spec.require()
    if episodes < 1 or num_envs < 1:
        raise ValueError(f"episodes and num_envs must be >= 1, got {episodes} and {num_envs}")
    tasks = list(spec.tasks(split) if tasks is None else tasks)
    driver = policy if hasattr(policy, "act_batch") else PolicyGroup(policy)
    scores = []
    for task in tasks:
        env = gym.vector.SyncVectorEnv([lambda t=task: gym.make(spec.env_id(t), **(env_kwargs or {}))] * num_envs)
        result = evaluate(driver, env, n_episodes=episodes, seed=seed, progress=progress)
        env.close()
        mean = float(np.mean(result.returns))
        scores.append(TaskScore(domain, task, spec.split_of(task), len(result.returns), mean, float(np.std(result.returns)),
                                result.success_rate, normalized_score(domain, task, mean, reference)))
    suite = SuiteResult(tuple(scores))
    if output_dir is not None:
        suite.write_csv(Path(output_dir) / "scores.csv")
        suite.plot(Path(output_dir) / "scores.png")
    return suite


def _nanmean(values) -> float:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("nan")
