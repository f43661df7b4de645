"""Pictures of fine-tuning runs."""

from __future__ import annotations

from pathlib import Path

from lram_agents.serialization import save_figure


def plot_online_curves(rows: list[dict], path: Path) -> Path | None:
    """``online_curves.png``: returns (rollouts, evaluations, target) against env steps, and the loss."""
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_return, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
    for column, label, style in (("rollout_return", "rollouts (sampled actions)", {}), ("eval_return", "evaluation (argmax)", {"marker": "o"}),
                                 ("target_return", "target return", {"linestyle": "--"})):
        points = [(r["env_steps"], r[column]) for r in rows if r.get(column) is not None]
        if points:
            ax_return.plot(*zip(*points), label=label, **style)
    ax_return.set(xlabel="env steps", ylabel="episode return", title="returns")
    ax_return.legend()
    points = [(r["updates"], r["loss"]) for r in rows if r.get("loss") is not None]
    if points:
        ax_loss.plot(*zip(*points))
    ax_loss.set(xlabel="optimizer steps", ylabel="action cross-entropy", title="loss (mean per update phase)")
    fig.tight_layout()
    return save_figure(fig, path, dpi=100)
