"""Training metrics: ``metrics.csv`` (one row per logged step), TensorBoard if installed, a PNG of the curves."""

from __future__ import annotations

import csv
import io
import logging
import math
from pathlib import Path

from lram_agents.serialization import atomic_write_text, save_figure

logger = logging.getLogger(__name__)

COLUMNS = ("step", "time_s", "lr", "loss", "grad_norm", "steps_per_s", "windows_per_s", "data_s", "step_s", "val_loss", "val_perplexity")
CSV_FILE = "metrics.csv"
PLOT_FILE = "learning_curves.png"


def run_summary(directory: str | Path) -> dict[str, float]:
    """Steps, training minutes, final loss, and the last and the lowest validation loss with its step (``None``
    without validation) of a run, read from its ``metrics.csv``.

    ``time_s`` is a clock time, so the minutes are summed from each row's ``steps_per_s`` (which covers
    the steps since the row before): a resumed run does not count the time it was stopped.
    """
    path = Path(directory) / CSV_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: is {directory} a training run's output_dir?")
    rows = list(csv.DictReader(path.open()))
    if not rows:
        raise ValueError(f"{path} has no rows yet")
    steps = [0] + [int(row["step"]) for row in rows]
    seconds = sum((steps[i + 1] - steps[i]) / float(row["steps_per_s"]) for i, row in enumerate(rows))
    validated = [(int(row["step"]), float(row["val_loss"])) for row in rows if row.get("val_loss")]
    best_step, best = min(validated, key=lambda pair: pair[1]) if validated else (None, None)
    return {"steps": steps[-1], "minutes": seconds / 60, "final_loss": float(rows[-1]["loss"]),
            "final_val_loss": validated[-1][1] if validated else None, "best_val_loss": best, "best_val_step": best_step}


class MetricsLogger:
    """Appends rows to ``directory/metrics.csv``; a resumed run first drops rows after its start step.

    Args:
        directory: the run directory.
        start_step: rows of an earlier (interrupted) run with a larger step are discarded, so the
            file tells one consistent story after a resume.
        tensorboard: also write TensorBoard events to ``directory/tensorboard`` when the
            ``tensorboard`` package is installed.
        columns / filename: the CSV's columns (the first is the step) and name; default: the offline
            trainer's.
    """

    def __init__(self, directory: Path, start_step: int = 0, tensorboard: bool = True, columns: tuple[str, ...] = COLUMNS,
                 filename: str = CSV_FILE):
        self.directory = Path(directory)
        self.path = self.directory / filename
        self.columns = tuple(columns)
        self.rows = [row for row in self._read_existing() if row["step"] <= start_step]
        atomic_write_text(self.path, _to_csv(self.rows, self.columns, header=True))
        self._file = open(self.path, "a", newline="")
        self._tb = _tensorboard_writer(self.directory / "tensorboard") if tensorboard else None

    def log(self, step: int, metrics: dict[str, float]) -> None:
        row = {"step": step, **{k: v for k, v in metrics.items() if k in self.columns}}
        self.rows.append(row)
        self._file.write(_to_csv([row], self.columns, header=False))
        self._file.flush()
        if self._tb is not None:
            for name, value in row.items():
                if name != "step" and value is not None:
                    self._tb.add_scalar(name, value, step)

    def plot(self) -> Path | None:
        """Write ``learning_curves.png`` (train/validation loss and learning rate against the step)."""
        if not self.rows:
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (ax_loss, ax_lr) = plt.subplots(1, 2, figsize=(11, 4))
        _plot_column(ax_loss, self.rows, "loss", "train")
        _plot_column(ax_loss, self.rows, "val_loss", "validation", marker="o")
        ax_loss.set(xlabel="step", ylabel="action cross-entropy", title="loss")
        ax_loss.legend()
        _plot_column(ax_lr, self.rows, "lr", "learning rate")
        ax_lr.set(xlabel="step", ylabel="learning rate", title="schedule")
        fig.tight_layout()
        out = self.directory / PLOT_FILE
        return save_figure(fig, out, dpi=100)

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()

    def _read_existing(self) -> list[dict]:
        if not self.path.is_file():
            return []
        rows = []
        for raw in csv.DictReader(self.path.open(newline="")):
            try:
                rows.append({k: _number(v) for k, v in raw.items() if k in self.columns})
            except ValueError:
                logger.warning("ignoring an unreadable row of %s: %s", self.path, raw)  # e.g. cut by a kill
        return [row for row in rows if row.get("step") is not None]


def _to_csv(rows: list[dict], columns: tuple[str, ...], header: bool) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _number(text: str | None):
    if text is None or text == "":
        return None
    value = float(text)
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def _plot_column(ax, rows: list[dict], column: str, label: str, **style) -> None:
    points = [(r["step"], r[column]) for r in rows if r.get(column) is not None and math.isfinite(r[column])]
    if points:
        ax.plot(*zip(*points), label=label, **style)


def _tensorboard_writer(directory: Path):
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(directory))
