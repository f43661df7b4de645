"""Put the best Dark-Room model into the zoo: ``zoo/<name>/`` with its card, plot and evaluation, and a manifest entry.

Reads ``runs/darkroom/evaluation/evaluation.json`` (written by ``evaluate.py``), picks the backbone with
the best mean return over the last 10 trials (or ``--backbone``), saves it as an in-context agent
(memory kept across episodes, target return 80) with ``Agent.save_pretrained``, writes the model card
(data, training command and wall time, the per-trial table of all four backbones, the plot) and adds
or replaces its entry in ``zoo/manifest.json`` (:func:`lram_agents.registry.manifest_entry`).

    python examples/darkroom/ship.py
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np

import lram_agents
from lram_agents.envs import task_family
from lram_agents.registry import MANIFEST_FILE, manifest_entry
from lram_agents.run_configs import load_config_file
from lram_agents.serialization import atomic_write_text

from evaluate import BACKBONES, ENV_ID, per_trial, summary_rows  # examples/darkroom/evaluate.py, beside this script

HERE = Path(__file__).parent

ZOO_NAMES = {"xlstm-7-1": "xlstm-darkroom", "xlstm-1-0": "xlstm-darkroom-mlstm", "mamba": "mamba-darkroom",
             "transformer": "dt-darkroom"}
TARGET_RETURN = 80.0


def best_backbone(results: dict) -> str:
    """The run with the highest mean return over the last 10 trials."""
    return max(results, key=lambda name: np.asarray(results[name]["returns"])[:, -10:].mean())


def training_facts(run: str) -> dict:
    """Steps, wall time and the command of a training run of examples/darkroom/train_<run>.yaml."""
    config_path = HERE / f"train_{run.replace('xlstm-', 'xlstm_')}.yaml"
    config = load_config_file(config_path)
    rows = list(csv.DictReader((Path(config["output_dir"]) / "metrics.csv").open()))
    steps = [0] + [int(row["step"]) for row in rows]
    # metrics.csv's time_s is a clock time; each row's steps_per_s covers the steps since the previous row
    seconds = sum((steps[i + 1] - steps[i]) / float(row["steps_per_s"]) for i, row in enumerate(rows))
    return {"config": config_path.relative_to(HERE.parent.parent).as_posix(), "steps": steps[-1],
            "minutes": seconds / 60, "final_loss": float(rows[-1]["loss"]), "data": config["data"][0]["path"],
            "batch_size": config["trainer"]["batch_size"], "model_dir": str(Path(config["output_dir"]) / "model")}


def headline(report: dict, run: str) -> dict:
    """The card's Results rows: the shipped run's in-context returns against the expert's optimum."""
    table = np.asarray(report["results"][run]["returns"])
    return {"hold-out goals x trials (memory kept)": f"{table.shape[0]} x {table.shape[1]}",
            "return, trial 1 (mean over goals)": float(table[:, 0].mean()),
            f"return, trial {table.shape[1]}": float(table[:, -1].mean()),
            "return, mean of the last 10 trials": float(table[:, -10:].mean()),
            "expert optimum (shortest path)": float(report["expert_mean"])}


def verdict(table: np.ndarray) -> list[str]:
    """Whether the shipped run improves in context: last-10-trial mean vs trial 1, paired over goals."""
    gain = table[:, -10:].mean(1) - table[:, 0]
    sem = gain.std(ddof=1) / np.sqrt(len(gain))
    if gain.mean() > 2 * sem and gain.mean() > 0:
        return [f"In-context improvement: the last 10 trials beat trial 1 by {gain.mean():.1f} ± {sem:.1f} (paired over goals)."]
    return [f"**No in-context improvement**: last 10 trials minus trial 1 = {gain.mean():.1f} ± {sem:.1f} (paired over goals). "
            "With this training budget (a few hundred to a few thousand steps of batch 8 on one CPU core) every backbone "
            "learned the goal-independent part of PPO's behaviour (training loss about 1.0 from 1.6) but not to use the "
            "rewards of its earlier trials; greedy actions repeat the same path in every trial. This model is a baseline "
            "for the pipeline, not an in-context learner."]


def card(name: str, run: str, report: dict, facts: dict[str, dict], generic: str) -> str:
    """The model card: the generic one of save_pretrained with the Dark-Room sections put in front of its Config."""
    result = report["results"][run]
    table = np.asarray(result["returns"])
    mean, sem = per_trial(result["returns"])
    last = table[:, -10:].mean(1)
    expert = report["expert_mean"]
    lines = [
        "## Dark-Room in-context learning",
        "",
        f"Trained offline with Algorithm Distillation on PPO learning histories of {_data_goals(facts[run])}, evaluated "
        f"on the {len(report['goals'])} hold-out goals of `{ENV_ID}` for {report['trials']} consecutive trials (episodes) "
        "per goal with the memory kept across trials and no gradient step: whatever it knows about a hold-out goal "
        "has to come in context, from the rewards of its earlier trials.",
        "",
        f"* Trial 1: **{mean[0]:.1f} ± {sem[0]:.1f}**, trial {report['trials']}: **{mean[-1]:.1f} ± {sem[-1]:.1f}**, "
        f"last 10 trials: **{last.mean():.1f} ± {last.std(ddof=1) / np.sqrt(len(last)):.1f}** "
        f"(mean ± standard error over the goals) against the shortest-path expert's optimum of **{expert:.1f}** "
        f"({100 * last.mean() / expert:.0f} %).",
        "",
        "![return vs trial](return_vs_trial.png)",
        "",
        *verdict(table),
        "",
        "Return per trial, mean ± standard error over the hold-out goals, all four backbones (the same data, "
        "batch and optimizer; the steps were set to give each backbone about 10 minutes on one CPU core, see the "
        "measured wall times below; `evaluation.json` holds every goal × trial return):",
        "",
        *summary_rows(report["results"], expert),
        "",
        *_sampled_rows(sampled_results(report), expert),
        *_training_rows(facts),
        "",
        *_reproduce(run, facts),
        "",
    ]
    head, _, config = generic.partition("## Config")
    return head + "\n".join(lines) + "## Config" + config


def _data_goals(fact: dict) -> str:
    """'N of the 80' (with why) when the data holds fewer goals than the task family's training split."""
    recorded = len(list(Path(fact["data"]).glob("goal-*.h5")))
    total = len(task_family(ENV_ID).train_tasks())
    if recorded == total:
        return f"all {total} training goals"
    return (f"**{recorded} of the {total} training goals** (the first {recorded} in `train_tasks()` order: the CPU "
            "budget of the session that trained this model ended the data generation there, at about 1 minute of PPO "
            "per goal on one core)")


def sampled_results(report: dict) -> dict | None:
    """The results of ``evaluate.py --sample`` (same goals and trials), if that was run."""
    path = Path("runs/darkroom/evaluation-sampled/evaluation.json")
    if not path.is_file():
        return None
    sampled = json.loads(path.read_text())
    return sampled["results"] if sampled["goals"] == report["goals"] and sampled["trials"] == report["trials"] else None


def _sampled_rows(sampled: dict | None, expert: float) -> list[str]:
    if not sampled:
        return []
    return ["With sampled actions instead (`evaluate.py --sample`, seed 0; `lram_agents.load(name, deterministic=False, "
            "seed=0)`), a check that greedy decoding is not what hides in-context learning:", "",
            *summary_rows(sampled, expert), ""]


def _training_rows(facts: dict[str, dict]) -> list[str]:
    rows = ["| backbone | config | steps | batch | wall time (1 CPU thread) | final loss |", "| --- | --- | --- | --- | --- | --- |"]
    for run, fact in facts.items():
        rows.append(f"| {BACKBONES[run]} | `{fact['config']}` | {fact['steps']} | {fact['batch_size']} | "
                    f"{fact['minutes']:.0f} min | {fact['final_loss']:.3f} |")
    return ["Training (windows of 200 timesteps = 2 episodes of one learning history, `windows: across_episodes`):", "", *rows]


def _reproduce(run: str, facts: dict[str, dict]) -> list[str]:
    return [
        "## Reproduce",
        "",
        "```bash",
        "# data: PPO learning histories on the 80 training goals, every 10th episode kept (data/darkroom)",
        "nice -n 10 python examples/darkroom/generate_data.py examples/darkroom/source_rl.yaml",
        "# train each backbone (one CPU thread each, one after the other)",
        *[f"nice -n 10 lram train {fact['config']} --threads 1" for fact in facts.values()],
        "# evaluate: 40 trials on the 20 hold-out goals, memory kept; writes the table, plot and evaluation.json",
        "nice -n 10 python examples/darkroom/evaluate.py",
        f"python examples/darkroom/ship.py --backbone {run}",
        "```",
    ]


def add_to_manifest(zoo: Path, entry: dict) -> None:
    """Add ``entry`` to the manifest (replacing one of the same name), leaving the other entries as they are."""
    path = zoo / MANIFEST_FILE
    manifest = json.loads(path.read_text())
    manifest["models"] = [m for m in manifest["models"] if m["name"] != entry["name"]] + [entry]
    atomic_write_text(path, json.dumps(manifest, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluation", type=Path, default=Path("runs/darkroom/evaluation"))
    parser.add_argument("--backbone", choices=sorted(ZOO_NAMES), help="default: the best over the last 10 trials")
    parser.add_argument("--zoo", type=Path, default=HERE.parent.parent / "zoo")
    args = parser.parse_args()
    report = json.loads((args.evaluation / "evaluation.json").read_text())
    run = args.backbone or best_backbone(report["results"])
    name = ZOO_NAMES[run]
    facts = {r: training_facts(r) for r in report["results"]}
    agent = lram_agents.load(facts[run]["model_dir"], device="cpu", keep_memory=True, target_return=TARGET_RETURN)
    agent.bind(gym.make(ENV_ID))  # saves the spaces: the zoo agent acts without an env at hand
    directory = args.zoo / name
    shutil.rmtree(directory, ignore_errors=True)
    agent.save_pretrained(directory, name=name, results=headline(report, run))
    shutil.copyfile(args.evaluation / "return_vs_trial.png", directory / "return_vs_trial.png")
    for other, result in report["results"].items():
        result["shipped"] = other == run  # tests/test_zoo_darkroom.py replays the shipped one
    atomic_write_text(directory / "evaluation.json", json.dumps(report, indent=1) + "\n")
    atomic_write_text(directory / "README.md", card(name, run, report, facts, (directory / "README.md").read_text()))
    last10 = np.asarray(report["results"][run]["returns"])[:, -10:].mean()
    description = (f"{BACKBONES[run]} trained by Algorithm Distillation on Dark-Room (PPO learning histories, 2-episode context); "
                   f"in-context agent: mean return {last10:.1f} over trials 31-40 on the 20 hold-out goals "
                   f"(expert optimum {report['expert_mean']:.1f}).")
    add_to_manifest(args.zoo, manifest_entry(directory, name, description, local=name))
    size = sum(p.stat().st_size for p in directory.iterdir())
    print(f"shipped {run} as {name!r} in {directory} ({size / 1e3:.0f} kB on disk); manifest updated")


if __name__ == "__main__":
    main()
