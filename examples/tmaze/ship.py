"""Ship a trained T-Maze run to the zoo: the agent, a card with every backbone's table and a plot.

    python examples/tmaze/ship.py runs/tmaze/xlstm --compare runs/tmaze/xlstm-long runs/tmaze/mamba runs/tmaze/rate runs/tmaze/transformer

Writes ``zoo/<name>/`` (config, weights, preprocessing bound to T-Maze's spaces, README.md card,
``success_rate.png``) from ``run/model`` and ``run/results.json`` (evaluate.py), and adds or
replaces the model's entry in ``zoo/manifest.json`` (sha256 of every file). The other runs only
go into the card's table and plot; a run without results is listed as not evaluated. Runs of one
config with other training seeds (``<run>-seed<N>``, train.py --seed) join their run's row as
mean ± standard error over the runs, as RATE's Table 2 reports; a ``<run>-seed<N>`` may itself be the
one shipped.

``runs/`` is not committed, so every run that goes into a card is also kept in ``examples/tmaze/results/<run>.json``
(its run.json and results.json, a few KB): a card can be rebuilt on a new machine with other rows or seeds without
training the compared runs again (only the shipped run's weights must be on disk).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import gymnasium as gym
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import lram_agents  # noqa: E402
from common import BACKBONE_LABELS, ENV_ID, EVAL_SEGMENTS, PUBLISHED, PUBLISHED_SEGMENTS, corridor_length  # noqa: E402
from evaluate import RESULTS_FILE, load_results  # noqa: E402
from lram_agents.registry import add_to_manifest, manifest_entry  # noqa: E402
from lram_agents.serialization import atomic_write_text  # noqa: E402

PLOT_FILE = "success_rate.png"
ARCHIVE = Path(__file__).resolve().parent / "results"


def recorded(run: Path, archive: Path = ARCHIVE) -> dict | None:
    """A run's ``info`` (run.json) and ``results`` (results.json): from its directory where it was evaluated there,
    else from the archive, else None."""
    if (run / RESULTS_FILE).is_file():
        info = json.loads((run / "run.json").read_text()) if (run / "run.json").is_file() else {}
        return {"info": info, "results": load_results(run)}
    kept = archive / f"{run.name}.json"
    return json.loads(kept.read_text()) if kept.is_file() else None


def run_info(run: Path, archive: Path = ARCHIVE) -> dict:
    """A run with the runs of its config under other training seeds (``<base>-seed<N>`` beside ``<base>``, on disk
    or in the archive): its own info and results, and every run's results for the mean ± s.e. rows."""
    base = re.sub(r"-seed\d+$", "", run.name)
    names = {base} | {p.name for p in run.parent.glob(f"{base}-seed*")} | {p.stem for p in archive.glob(f"{base}-seed*.json")}
    members = {name: recorded(run.parent / name, archive) for name in sorted(names)
               if re.fullmatch(rf"{re.escape(base)}(-seed\d+)?", name)}
    members = {name: record for name, record in members.items() if record}
    own = recorded(run, archive) or {"info": {}, "results": {"segments": {}}}
    return {"run": run, "info": own["info"], "results": own["results"], "members": members,
            "seed_results": [record["results"] for record in members.values()] or [own["results"]],
            "label": BACKBONE_LABELS.get(base, base)}


def keep_in_archive(entries: list[dict], archive: Path = ARCHIVE) -> None:
    """Write every run a card uses (each entry's seed runs) to ``archive/<run>.json``."""
    archive.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        for name, record in entry["members"].items():
            atomic_write_text(archive / f"{name}.json", json.dumps(record, separators=(",", ":")) + "\n")


def _by_length(results: dict, unit: str) -> dict[int, float]:
    return {int(n): r["success_rate"] for n, r in results.get(unit, {}).items()}


def _across_runs(entry: dict, unit: str) -> dict[int, list[float]]:
    """Per length that every seed run of the entry measured: the success rate of each run."""
    per_run = [_by_length(results, unit) for results in entry["seed_results"]]
    common = set.intersection(*(set(r) for r in per_run)) if per_run else set()
    return {n: [r[n] for r in per_run] for n in common}


def rates(entry: dict, unit: str = "segments") -> dict[int, float]:
    """Success rate per length: the mean over the entry's seed runs at the lengths all of them measured."""
    return {n: float(np.mean(values)) for n, values in _across_runs(entry, unit).items()}


def own_rates(entry: dict, unit: str = "segments") -> dict[int, float]:
    """Success rate per length of the entry's own run (the agent that would be shipped)."""
    return _by_length(entry["results"], unit)


def rate_sems(entry: dict, unit: str = "segments") -> dict[int, float]:
    """Standard error over the seed runs (0 with one run)."""
    return {n: float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0
            for n, values in _across_runs(entry, unit).items()}


def who(entry: dict) -> str:
    runs, seeds = len(entry["seed_results"]), entry["results"].get("seeds", "?")
    return f"ours, {runs} runs × {seeds} seeds" if runs > 1 else f"ours, {seeds} seeds"


def plot(entries: list[dict], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for k, entry in enumerate(entries):
        points = sorted(rates(entry).items())
        if points:  # thinner lines and other markers on top, so that equal curves stay visible
            ax.plot(*zip(*points), marker="osD^v"[k % 5], linewidth=3.2 - 0.6 * k, markersize=8 - k,
                    label=f"{entry['label']} (ours)")
    for name, row in PUBLISHED.items():
        ax.plot(PUBLISHED_SEGMENTS, row, linestyle="--", marker="x", alpha=0.6, label=f"{name} (RATE paper)")
    ax.axhline(0.5, color="grey", linewidth=0.8, linestyle=":")
    ax.set(xscale="log", xlabel="inference length (segments of K = 30 steps)", ylabel="success rate",
           title="T-Maze: success rate vs episode length (trained on <= 3 segments)", ylim=(0.0, 1.05))
    ax.set_xticks(list(EVAL_SEGMENTS), [str(n) for n in EVAL_SEGMENTS])
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def table(entries: list[dict]) -> list[str]:
    head = "| model | " + " | ".join(f"{n}" for n in EVAL_SEGMENTS) + " |"
    lines = [head, "|" + " --- |" * (len(EVAL_SEGMENTS) + 1)]
    for entry in entries:
        found, sems = rates(entry), rate_sems(entry)
        several = len(entry["seed_results"]) > 1
        cells = [("–" if n not in found else f"{found[n]:.3f} ± {sems[n]:.3f}" if several else f"{found[n]:.3f}")
                 for n in EVAL_SEGMENTS]
        lines.append(f"| {entry['label']} ({who(entry)}) | " + " | ".join(cells) + " |")
    for name, row in PUBLISHED.items():
        cells = [f"{row[PUBLISHED_SEGMENTS.index(n)]:.3f}" if n in PUBLISHED_SEGMENTS else "–" for n in EVAL_SEGMENTS]
        lines.append(f"| {name} (RATE paper, Table 2) | " + " | ".join(cells) + " |")
    return lines


def horizon_rows(entries: list[dict]) -> list[str]:
    """Success at lengths given in steps (evaluate.py --steps), for the runs that have them."""
    measured = [e for e in entries if rates(e, "steps")]
    lengths = sorted(set().union(*(rates(e, "steps") for e in measured))) if measured else []
    if not lengths:
        return []
    lines = ["### Memory horizon", "",
             "Success rate in episodes of T steps (corridor L = T − 2; the bit is held for T − 1 steps), "
             "far beyond the training lengths (`evaluate.py --steps`):", "",
             "| model | " + " | ".join(f"{t:,} steps" for t in lengths) + " |", "|" + " --- |" * (len(lengths) + 1)]
    for entry in measured:
        found = rates(entry, "steps")
        lines.append(f"| {entry['label']} ({who(entry)}) | " + " | ".join(f"{found[t]:.3f}" if t in found else "–" for t in lengths) + " |")
    return [*lines, ""]


def hints(seeds: int) -> np.ndarray:
    """The hint (goal side, +1 or -1) of T-Maze seeds 0..seeds-1, as evaluate.py's vector env draws them."""
    return np.array([gym.make(ENV_ID, corridor_length=1).reset(seed=i)[0][1] for i in range(seeds)])


def failure_rows(entries: list[dict]) -> list[str]:
    """Success rate split by hint wherever a run is below 1: 'always the same goal' shows as 1 and 0."""
    lines = []
    for entry in entries:
        seeds = entry["results"].get("seeds")
        if not seeds:
            continue
        side = hints(seeds)
        for n, result in sorted(entry["results"]["segments"].items(), key=lambda item: int(item[0])):
            if result["success_rate"] < 1:
                wins = np.asarray(result["successes"])
                lines.append(f"| {entry['label']} | {n} | {wins[side > 0].mean():.2f} | {wins[side < 0].mean():.2f} "
                             f"| {result['mean_length']:.0f} |")
    if not lines:
        return []
    counts = f"{int((side > 0).sum())} of the {seeds} seeds hint +1 (up), {int((side < 0).sum())} hint −1 (down)"
    return [f"Where a model falls below 1, its success split by hint ({counts}): a model that ignores the hint "
            "turns to the same goal every time and scores 1 on one side and 0 on the other, i.e. 0.61 or 0.39 "
            "overall instead of 0.5 on these seeds; 0 on both sides means it never turns (truncated at L + 2 steps).",
            "", "| model | segments | success, hint +1 | success, hint −1 | mean episode length |",
            "| --- | --- | --- | --- | --- |", *lines]


def training_rows(entries: list[dict]) -> list[str]:
    lines = ["| model | parameters | steps | wall time (1 CPU thread) | final loss | command |", "| --- | --- | --- | --- | --- | --- |"]
    for entry in entries:
        info = entry["info"]
        if not info:
            lines.append(f"| {entry['label']} | – | – | not trained | – | – |")
            continue
        lines.append(f"| {entry['label']} | {info['parameters']:,} | {info['steps']} | {info['wall_time_s'] / 60:.1f} min "
                     f"| {info['final_loss']:.2e} | `{info['command']}` |")
    return lines


def training_commands(entries: list[dict]) -> list[str]:
    """The training command of each entry, as a loop over its training seeds where the table averages several
    (seed 0 is the config's own run, ``runs/tmaze/<config>``; seed s writes ``runs/tmaze/<config>-seed<s>``)."""
    lines = []
    for entry in entries:
        command = entry["info"].get("command")
        if not command:
            continue
        command = re.sub(r" --seed \d+", "", command)
        runs = len(entry["seed_results"])
        lines.append(command if runs == 1 else
                     f"{command}; for s in $(seq 1 {runs - 1}); do {command} --seed $s; done  # {runs} training runs")
    return lines


LONG_VARIANT_COMMANDS = [  # the xLSTM's fine-tuning chain to long corridors (cards that compare xLSTM runs)
    "python examples/tmaze/make_data.py --max-segments 9 --episodes 2000 --out data/tmaze-9",
    "python examples/tmaze/train.py examples/tmaze/configs/xlstm-long.json  # fine-tunes runs/tmaze/xlstm",
    "python examples/tmaze/make_data.py --max-segments 33 --episodes 1000 --out data/tmaze-33",
    "python examples/tmaze/train.py examples/tmaze/configs/xlstm-longer.json  # fine-tunes runs/tmaze/xlstm-long",
    "python examples/tmaze/make_data.py --max-segments 333 --episodes 600 --out data/tmaze-333",
    "python examples/tmaze/train.py examples/tmaze/configs/xlstm-10k.json  # fine-tunes runs/tmaze/xlstm-longer",
    "python examples/tmaze/evaluate.py runs/tmaze/xlstm-10k --steps 10000 30000 100000  # the memory horizon",
]


def extra_data_commands(entries: list[dict]) -> list[str]:
    """RATE-7's data set (episodes of up to 7 segments) where a compared run trains on it."""
    if any("configs/rate-7" in e["info"].get("command", "") for e in entries):
        return ["python examples/tmaze/make_data.py --max-segments 7 --out data/tmaze-7  # for RATE-7"]
    return []


def card_sections(shipped: dict, entries: list[dict], name: str) -> str:
    notes = "\n".join(f"- **{e['label']}**: {e['info'].get('config', {}).get('notes', '(no run)')}" for e in entries)
    eval_command = shipped["results"].get("command", "python examples/tmaze/evaluate.py ...")
    return "\n".join([
        "## T-Maze (RATE paper, section 4.1)",
        "",
        f"The agent walks a corridor of length L in `{ENV_ID}`, sees the hint (which goal is rewarded) only at its "
        "first step, and must turn to that goal at the junction: one bit held for L + 1 steps. An inference length "
        "of n segments is an episode of n·30 steps (L = 30n − 2). Success rate = share of seeds 0..S−1 whose episode "
        "ends at the hinted goal (greedy actions, memory cleared at the start), measured with `lram_agents.evaluate`.",
        "",
        "### Data",
        "",
        "`python examples/tmaze/make_data.py` → `data/tmaze`: 6000 episodes of `TMazeOracle`, one per corridor "
        "length L drawn uniformly in [1, 88] (episodes of up to 3 segments of K = 30 steps, RATE's training maximum), "
        "recorded with `RecordEpisodes`; every episode is a success. The fine-tuned variant (`xlstm-tmaze-long`) "
        "also uses `python examples/tmaze/make_data.py --max-segments 9 --episodes 2000 --out data/tmaze-9` "
        "(L in [1, 268]), beyond the paper's training maximum; the long-horizon variants (`xlstm-tmaze-10k`) add "
        "`--max-segments 33 --episodes 1000 --out data/tmaze-33` (L up to 988) and `--max-segments 333 --episodes 600 "
        "--out data/tmaze-333` (episodes of up to 10,000 steps).",
        "",
        "### Success rate vs inference length (segments of 30 steps)",
        "",
        *table(entries),
        "",
        f"![success rate vs length]({PLOT_FILE})",
        "",
        f"Evaluation command: `{eval_command}`.",
        "",
        *failure_rows(entries),
        "",
        *horizon_rows(entries),
        "### Training (RATE's curriculum: stage n trains on the episodes of ≤ n segments, n = 1, 2, 3 (RATE-7: to 7); "
        "the fine-tuned variants then train on ≤ 9 segments, ≤ 33 segments and ≤ 10,000 steps, each from the previous one)",
        "",
        *training_rows(entries),
        "",
        notes,
        "",
        "### Reproduce",
        "",
        "```bash",
        "python examples/tmaze/make_data.py",
        *extra_data_commands(entries),
        *training_commands(entries),
        *(LONG_VARIANT_COMMANDS if any("configs/xlstm" in e["info"].get("command", "") for e in entries) else []),
        "python examples/tmaze/evaluate.py runs/tmaze/<every run above> --segments 1 2 3 5 9 12",
        f"python examples/tmaze/ship.py runs/tmaze/{shipped['run'].name} --compare "
        + " ".join(f"runs/tmaze/{e['run'].name}" for e in entries[1:])
        + (f" --name {name}" if name != shipped["info"].get("name") else ""),
        "```",
        "",
    ])


def ship(run: Path, compare: list[Path], zoo: Path, description: str | None = None, name: str | None = None,
         archive: Path = ARCHIVE) -> Path:
    shipped = run_info(run, archive)
    entries = [shipped] + [run_info(other, archive) for other in compare]
    keep_in_archive(entries, archive)
    name = name or shipped["info"]["name"]
    agent = lram_agents.load(run / "model", device="cpu").bind(gym.make(ENV_ID, corridor_length=corridor_length(1)))
    seeds = shipped["results"]["seeds"]
    results = {f"success rate @ {n} segments (L = {corridor_length(n)}), {seeds} seeds": rate
               for n, rate in sorted(own_rates(shipped).items())}
    results.update({f"success rate @ {t} steps (L = {t - 2}), {seeds} seeds": rate for t, rate in sorted(own_rates(shipped, "steps").items())})
    target = zoo / name
    agent.save_pretrained(target, name=name, results=results)
    plot(entries, target / PLOT_FILE)
    card = (target / "README.md").read_text()
    atomic_write_text(target / "README.md", card.replace("## Config", card_sections(shipped, entries, name) + "\n## Config", 1))
    best = min(own_rates(shipped).get(n, 0.0) for n in (1, 2, 3, 5))
    description = description or (f"{shipped['label']} trained on T-Maze oracle data (<= 3 segments of 30 steps) with "
                                  "RATE's curriculum")
    longest = max(own_rates(shipped))  # the longest inference length measured, 100 segments where evaluated
    description += (f"; success >= {best:.2f} at 1-5 segments, {own_rates(shipped)[longest]:.2f} at {longest} "
                    "segments (the card has every length)")
    add_to_manifest(zoo, manifest_entry(target, name, description, local=name))
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="the run to ship (train.py + evaluate.py done)")
    parser.add_argument("--compare", type=Path, nargs="*", default=[], help="other runs for the table and plot")
    parser.add_argument("--description", default=None, help="the manifest's description (default: says the data)")
    parser.add_argument("--zoo", type=Path, default=Path("zoo"), help="the zoo folder holding manifest.json")
    parser.add_argument("--name", default=None, help="the zoo name (default: the run's config name)")
    args = parser.parse_args(argv)
    print(f"shipped to {ship(args.run, args.compare, args.zoo, args.description, args.name)}")


if __name__ == "__main__":
    main()
