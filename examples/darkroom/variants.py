"""Compare variants of the Dark-Room recipe (position kinds, initialisations, ...) with the shipped backbones.

Each variant is a run of one of the ``train_*.yaml`` configs with fields changed by ``lram train --set``,
evaluated like the four backbones (``evaluate.py --sample --seed S --output DIR --models name=run/model``).
The table puts them beside the zoo card's own rows (``zoo/mamba-darkroom/evaluation.json``): return per
trial with sampled actions, seed-averaged, mean ± s.e. over the 20 hold-out goals, and the in-context gain
(last 10 trials minus trial 1, paired over goals). ``--card`` writes the table into the card between
``<!-- variants -->`` markers (``ship.py`` keeps that section) and refreshes the manifest entry.

    python examples/darkroom/variants.py --evaluations runs/darkroom/eval-variants-seed* \\
        --runs alibi=runs/darkroom/transformer-alibi ... --card zoo/mamba-darkroom
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

from evaluate import TABLE_TRIALS, gain, mean_sem, per_goal_gain, per_trial  # beside this script
from lram_agents.registry import add_to_manifest, manifest_entry
from lram_agents.serialization import atomic_write_text
from lram_agents.training.metrics import run_summary

BEGIN, END = "<!-- variants -->", "<!-- /variants -->"
SHIPPED_LABELS = {"xlstm-7-1 (mamba-darkroom)": "xLSTM [7:1] (mamba-darkroom's card)",
                  "xlstm-1-0 (mamba-darkroom)": "xLSTM [1:0] (mamba-darkroom's card)",
                  "mamba (mamba-darkroom)": "Mamba (mamba-darkroom's card)",
                  "transformer (mamba-darkroom)": "Transformer, learned positions (mamba-darkroom's card)"}


def seed_averaged(reports: list[dict]) -> dict[str, np.ndarray]:
    """name -> (goal, trial) returns averaged over the sampling seeds, for the names every report has."""
    names = [n for n in reports[0]["results"] if all(n in r["results"] for r in reports)]
    return {n: np.mean([r["results"][n]["returns"] for r in reports], axis=0) for n in names}


def merge_by_seed(reports: list[dict]) -> list[dict]:
    """One report per sampling seed, holding the results of every report of that seed (evaluations of
    several models written to separate folders); all must cover the same goals and trials."""
    merged: dict[int, dict] = {}
    for report in reports:
        if not report["sampled_actions"] or (report["goals"], report["trials"]) != (reports[0]["goals"], reports[0]["trials"]):
            raise SystemExit(f"evaluation of seed {report['seed']}: not sampled, or other goals or trials than the first")
        seed = merged.setdefault(report["seed"], {**report, "results": {}})
        seed["results"].update(report["results"])
    return [merged[s] for s in sorted(merged)]


def training_facts(run: Path) -> dict:
    """Steps, CPU-thread wall time and final loss from a run's metrics.csv."""
    return run_summary(run)


def row(label: str, table: np.ndarray, expert: float, extra: str) -> str:
    mean, sem = per_trial(table)
    shown = [t for t in TABLE_TRIALS if t <= table.shape[1]]
    last, last_sem = mean_sem(table[:, -10:].mean(1))
    difference = per_goal_gain(table)
    up, up_sem = gain(table)
    learns = "yes" if up > 2 * up_sem else "no"
    cells = " | ".join(f"{mean[t - 1]:.1f} ± {sem[t - 1]:.1f}" for t in shown)
    return (f"| {label} | {cells} | {last:.1f} ± {last_sem:.1f} | {up:+.1f} ± {up_sem:.1f} ({learns}; "
            f"{(difference > 0).sum()} / {(difference < 0).sum()}) | {100 * last / expert:.0f} % | {extra} |")


def table_lines(variants: dict[str, np.ndarray], shipped: dict[str, np.ndarray], facts: dict[str, dict],
                losses: dict[str, list[float]], expert: float, trials: int) -> list[str]:
    shown = [t for t in TABLE_TRIALS if t <= trials]
    head = ("| model | " + " | ".join(f"trial {t}" for t in shown) + " | last 10 trials | gain (learns in context?; goals "
            "better / worse) | % of optimum | training: steps, wall, final loss; held-out loss first → last 20 steps |")
    lines = [head, "|" + " --- |" * (len(shown) + 5)]
    for name, table in shipped.items():
        lines.append(row(SHIPPED_LABELS.get(name, name), table, expert, "1250 steps"))
    for name, table in variants.items():
        fact = facts.get(name)
        extra = f"{fact['steps']} steps, {fact['minutes']:.0f} min, {fact['final_loss']:.3f}" if fact else "–"
        if name in losses:
            extra += f"; {losses[name][0]:.3f} → {losses[name][-1]:.3f}"
        lines.append(row(name, table, expert, extra))
    return lines


def write_into_card(card_dir: Path, section: str) -> None:
    readme = card_dir / "README.md"
    text = readme.read_text()
    block = f"{BEGIN}\n{section}\n{END}\n"
    if BEGIN in text:
        text = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END) + "\n", lambda _: block, text, flags=re.S)
    else:
        text = text.replace("### Training\n", block + "\n### Training\n", 1)
    atomic_write_text(readme, text)
    manifest = json.loads((card_dir.parent / "manifest.json").read_text())
    old = next(m for m in manifest["models"] if m["name"] == card_dir.name)
    add_to_manifest(card_dir.parent, manifest_entry(card_dir, card_dir.name, old["description"], local=card_dir.name))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--evaluations", type=Path, nargs="+", required=True, help="evaluate.py --sample output dirs, one per seed")
    parser.add_argument("--runs", nargs="*", default=[], help="name=run_dir, for the training columns")
    parser.add_argument("--loss-by-position", type=Path, default=Path("runs/darkroom/loss_by_position/loss_by_position.json"))
    parser.add_argument("--card", type=Path, help="a zoo folder whose README gets the table")
    parser.add_argument("--reference", type=Path, help="a zoo folder whose evaluation.json gives reference rows (default: --card)")
    parser.add_argument("--labels", nargs="*", default=[], help="name=label for the table (default: the name)")
    parser.add_argument("--intro", default="", help="a paragraph above the table")
    args = parser.parse_args()
    reports = merge_by_seed([json.loads((d / "evaluation.json").read_text()) for d in args.evaluations])
    labels = dict(pair.split("=", 1) for pair in args.labels)
    variants = {labels.get(name, name): table for name, table in seed_averaged(reports).items()}
    shipped = {}
    reference = args.reference or args.card
    if reference:
        zoo_eval = json.loads((reference / "evaluation.json").read_text())
        if zoo_eval["goals"] != reports[0]["goals"] or zoo_eval["trials"] != reports[0]["trials"]:
            raise SystemExit(f"{reference}: evaluated on other goals or trials than {args.evaluations[0]}")
        shipped = {f"{name} ({reference.name})": table for name, table in
                   seed_averaged([{"results": r} for r in zoo_eval["sampled"].values()]).items()}
    runs = {labels.get(name, name): Path(path) for name, _, path in (pair.partition("=") for pair in args.runs)}
    facts = {label: training_facts(run) for label, run in runs.items()}
    curves = json.loads(args.loss_by_position.read_text())["curves"] if args.loss_by_position.is_file() else {}
    losses = {label: curves[run.name] for label, run in runs.items() if run.name in curves}
    seeds = ", ".join(str(r["seed"]) for r in reports)
    lines = ["### Variants", "", args.intro, "",
             f"Sampled actions, seeds {seeds} averaged per goal and trial, mean ± s.e. over the {len(reports[0]['goals'])} "
             "hold-out goals; gain = last 10 trials minus trial 1, paired over goals ('yes' when above 2 s.e.). Held-out "
             "loss: action cross-entropy on PPO histories of 8 hold-out goals (`loss_by_position.py`), in the first and "
             "the last 20 steps of the 200-step window: a model that uses its context gets better along the window.", "",
             *table_lines(variants, shipped, facts, losses, reports[0]["expert_mean"], reports[0]["trials"])]
    section = "\n".join(lines)
    print(section)
    if args.card:
        write_into_card(args.card, section)
        print(f"written into {args.card / 'README.md'}")


if __name__ == "__main__":
    main()
