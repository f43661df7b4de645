"""Put the best Dark-Room model into the zoo: ``zoo/<name>/`` with its card, plot and evaluation, and a manifest entry.

Reads what ``evaluate.py`` wrote for the four backbones: the greedy evaluation
(``runs/darkroom/evaluation``) and the sampled ones (``runs/darkroom/evaluation-sampled-seed<s>``, one per
seed). In-context learners explore by sampling, so the backbones are compared, and the best one picked
(or ``--backbone``), on sampled actions: per goal and trial the mean over the seeds, then mean ± standard
error over the 20 hold-out goals. The shipped agent keeps its memory across episodes, targets a return
of 80 and samples its actions by default (``Agent.save_pretrained``); the card holds data, training
commands and wall times, the per-trial tables of all four backbones and the plot; ``zoo/manifest.json``
gets its entry (:func:`lram_agents.registry.manifest_entry`).

    python examples/darkroom/ship.py
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np

import lram_agents
from lram_agents.envs import task_family
from lram_agents.registry import add_to_manifest, manifest_entry
from lram_agents.run_configs import load_config_file
from lram_agents.serialization import atomic_write_text
from lram_agents.training.metrics import run_summary

from evaluate import BACKBONES, ENV_ID, LABELS, TABLE_TRIALS, gain, mean_sem, per_goal_gain, per_trial, plot, summary_rows  # beside this script
from variants import BEGIN, END  # the card section variants.py writes, kept when the card is rewritten

HERE = Path(__file__).parent
ZOO_NAMES = {"xlstm-7-1": "xlstm-darkroom", "xlstm-1-0": "xlstm-darkroom", "mamba": "mamba-darkroom",
             "transformer": "dt-darkroom", "transformer-transition": "dt-darkroom",
             "transformer-ad": "dt-darkroom"}
TARGET_RETURN = 80.0


# ---- reading the evaluations -------------------------------------------------------------------
def load_evaluations(greedy_dir: Path, sampled_dirs: list[Path]) -> tuple[dict, dict[int, dict]]:
    """The greedy report and the sampled ones by seed; all must cover the same goals and trials."""
    greedy = json.loads((greedy_dir / "evaluation.json").read_text())
    sampled = {}
    for directory in sampled_dirs:
        report = json.loads((directory / "evaluation.json").read_text())
        if (report["goals"], report["trials"]) != (greedy["goals"], greedy["trials"]) or not report["sampled_actions"]:
            raise SystemExit(f"{directory}: not a sampled evaluation of the greedy one's goals and trials")
        sampled[report["seed"]] = report
    if not sampled:
        raise SystemExit("no sampled evaluation found: run evaluate.py --sample --seed S first")
    return greedy, dict(sorted(sampled.items()))


def seed_averaged(greedy: dict, sampled: dict[int, dict]) -> dict:
    """Per backbone: the (goal, trial) returns averaged over the sampling seeds, for backbones every seed has."""
    runs = [run for run in greedy["results"] if all(run in report["results"] for report in sampled.values())]
    return {run: {"returns": np.mean([report["results"][run]["returns"] for report in sampled.values()], axis=0).tolist(),
                  "parameters": greedy["results"][run]["parameters"]} for run in runs}


def best_backbone(results: dict) -> str:
    """The run with the highest mean return over the last 10 trials."""
    return max(results, key=lambda run: np.asarray(results[run]["returns"])[:, -10:].mean())


# ---- training facts ----------------------------------------------------------------------------
def training_facts(run: str) -> dict:
    """Steps, wall time and the command of the training run whose config writes to runs/darkroom/<run>."""
    config_path, config = config_of(run)
    output = Path(config["output_dir"])
    trainer = json.loads((output / "trainer_config.json").read_text())  # what the run used, not today's yaml
    return {"config": config_path.relative_to(HERE.parent.parent).as_posix(), **run_summary(output),
            "data": config["data"][0]["path"], "episodes": episode_selection(config["data"][0]),
            "kept": kept_episodes(config["data"][0]), "context": config["data"][0]["context"],
            "layout": config["model"]["inline"]["token_layout"], "batch_size": trainer["batch_size"],
            "model_dir": str(output / "model")}


def config_of(run: str) -> tuple[Path, dict]:
    """The train_*.yaml beside this script whose output_dir is runs/darkroom/<run>, and its content."""
    for path in sorted(HERE.glob("train_*.yaml")):
        config = load_config_file(path)
        if Path(config["output_dir"]) == Path("runs/darkroom") / run:
            return path, config
    raise SystemExit(f"no examples/darkroom/train_*.yaml writes runs/darkroom/{run}")


def episode_selection(data: dict) -> str:
    """Which episodes of each recorded history a run trains on, in words."""
    every = data.get("keep_every", 1)
    if every == 1:
        return "every episode of each learning history"
    if data.get("every_phase", False):
        return (f"every {every}th episode of each learning history, each of the {every} offsets a history of its own "
                f"(`keep_every: {every}`, `every_phase: true`)")
    return f"every {every}th episode of each learning history (`keep_every: {every}`)"


def kept_episodes(data: dict) -> str:
    """The downsampling in a table cell: "1 in 10, every phase"."""
    every = data.get("keep_every", 1)
    return f"1 in {every}" + (", every phase" if every > 1 and data.get("every_phase", False) else "")


def data_goals(fact: dict) -> str:
    recorded = len(list(Path(fact["data"]).glob("goal-*.h5")))
    total = len(task_family(ENV_ID).train_tasks())
    return f"all {total} training goals" if recorded == total else f"**{recorded} of the {total} training goals**"


# ---- the card ----------------------------------------------------------------------------------
def headline(table: np.ndarray, expert: float) -> dict:
    """The card's Results rows: the shipped run's in-context returns (sampled, seed-averaged) against the optimum."""
    return {"hold-out goals x trials (memory kept, sampled actions)": f"{table.shape[0]} x {table.shape[1]}",
            "return, trial 1 (mean over goals and seeds)": float(table[:, 0].mean()),
            f"return, trial {table.shape[1]}": float(table[:, -1].mean()),
            "return, mean of the last 10 trials": float(table[:, -10:].mean()),
            "expert optimum (shortest path)": expert}


def verdict(table: np.ndarray) -> str:
    mean, sem = gain(table)
    difference = per_goal_gain(table)
    if mean > 2 * sem:
        return (f"**In-context learning**: the last 10 trials beat trial 1 by {mean:.1f} ± {sem:.1f} "
                f"(paired over goals; better on {(difference > 0).sum()} goals, worse on {(difference < 0).sum()}), "
                "with no gradient step.")
    return (f"**No in-context improvement**: last 10 trials minus trial 1 = {mean:.1f} ± {sem:.1f} (paired over goals); "
            "this model is a pipeline baseline, not an in-context learner.")


def missing_backbones(averaged: dict) -> list[str]:
    """A line naming the backbones of the comparison that have no evaluation with this recipe yet, if any."""
    missing = [label for run, label in BACKBONES.items() if run not in averaged]
    return ["", f"Not trained with this recipe yet: {', '.join(missing)}."] if missing else []


def per_seed_rows(run: str, greedy: dict, sampled: dict[int, dict], expert: float) -> list[str]:
    """The shipped run under each sampling seed and greedy: returns at some trials, last 10, gain."""
    shown = [t for t in TABLE_TRIALS if t <= greedy["trials"]]
    rows = ["| actions | " + " | ".join(f"trial {t}" for t in shown) +
            " | last 10 trials | gain | goals better / worse | % of optimum |", "|" + " --- |" * (len(shown) + 5)]
    named = [(f"sampled, seed {seed}", report["results"][run]["returns"]) for seed, report in sampled.items()]
    for label, returns in [*named, ("greedy", greedy["results"][run]["returns"])]:
        mean, sem = per_trial(returns)
        last, last_sem = mean_sem(np.asarray(returns)[:, -10:].mean(1))
        up, up_sem = gain(np.asarray(returns))
        difference = per_goal_gain(np.asarray(returns))
        cells = " | ".join(f"{mean[t - 1]:.1f} ± {sem[t - 1]:.1f}" for t in shown)
        rows.append(f"| {label} | {cells} | {last:.1f} ± {last_sem:.1f} | "
                    f"{up:+.1f} ± {up_sem:.1f} | {(difference > 0).sum()} / {(difference < 0).sum()} | "
                    f"{100 * last / expert:.0f} % |")
    return rows


def training_rows(facts: dict[str, dict]) -> list[str]:
    rows = ["| backbone | config | token layout | context (timesteps) | episodes kept | steps | batch | "
            "wall time (1 CPU thread, shared machine) | final loss |", "|" + " --- |" * 9]
    for run, fact in facts.items():
        rows.append(f"| {LABELS[run]} | `{fact['config']}` | {fact['layout']} | {fact['context']} | "
                    f"{fact['kept']} | {fact['steps']} | {fact['batch_size']} | "
                    f"{fact['minutes']:.0f} min | {fact['final_loss']:.3f} |")
    return rows


def card(name: str, run: str, greedy: dict, sampled: dict[int, dict], averaged: dict, facts: dict[str, dict],
         generic: str) -> str:
    """The model card: the generic one of save_pretrained with the Dark-Room sections put in front of its Config."""
    table = np.asarray(averaged[run]["returns"])
    mean, sem = per_trial(table)
    last, last_sem = mean_sem(table[:, -10:].mean(1))
    expert, seeds = greedy["expert_mean"], ", ".join(str(s) for s in sampled)
    lines = [
        "## Dark-Room in-context learning",
        "",
        f"{LABELS[run]}, trained offline with Algorithm Distillation on PPO learning histories of "
        f"{data_goals(facts[run])}, evaluated on the {len(greedy['goals'])} hold-out goals of `{ENV_ID}` for "
        f"{greedy['trials']} consecutive trials (episodes) per goal with the memory kept across trials and no gradient "
        "step: whatever it knows about a hold-out goal comes in context, from the rewards of its earlier trials.",
        "",
        f"* Sampled actions (seeds {seeds}; per goal and trial the mean over seeds): trial 1 **{mean[0]:.1f} ± "
        f"{sem[0]:.1f}**, trial {greedy['trials']} **{mean[-1]:.1f} ± {sem[-1]:.1f}**, last 10 trials **{last:.1f} ± "
        f"{last_sem:.1f}** (mean ± standard error over the goals) against the "
        f"shortest-path expert's optimum of **{expert:.1f}** ({100 * last / expert:.0f} %).",
        f"* {verdict(table)}",
        "",
        "```python",
        "import lram_agents",
        "from lram_agents.envs import task_family, task_vector_env",
        f'agent = lram_agents.load("{name}", seed=0)  # samples its actions and keeps its memory by default',
        f'goals = task_family("{ENV_ID}").holdout_tasks()',
        f'result = lram_agents.evaluate(agent, task_vector_env("{ENV_ID}", goals), n_episodes=len(goals) * 40, seed=0)',
        "returns = result.trial_returns()  # (goal, trial)",
        "```",
        "",
        "![return vs trial](return_vs_trial.png)",
        "",
        "### Backbones trained and evaluated alike",
        "",
        "Return per trial with sampled actions (mean over the seeds per goal and trial, then mean ± standard error "
        "over the hold-out goals). The four backbones share data, context, batch, optimizer and number of steps; the "
        "rows after them change the token layout, and then the context and downsampling too (see Training):",
        "",
        *summary_rows(averaged, expert),
        *missing_backbones(averaged),
        "",
        "The same with greedy (argmax) actions: no exploration noise, a greedy agent changes its path only when "
        "its context does:",
        "",
        *summary_rows(greedy["results"], expert),
        "",
        f"### {LABELS[run]} (shipped) per seed",
        "",
        "Gain: mean of the last 10 trials minus trial 1, paired over goals (mean ± s.e.); goals better / worse: "
        "how many goals that difference is positive / negative for (the rest are equal).",
        "",
        *per_seed_rows(run, greedy, sampled, expert),
        "",
        "### Training",
        "",
        f"Data of the shipped model: {facts[run]['episodes']}. Windows of consecutive episodes of one learning "
        "history (`windows: across_episodes`; 100 timesteps an episode), LRAM's token layout (r_{t-1}, s_t, R^_t per "
        "timestep) or AD's (one token per transition), target return 80, AdamW with a cosine schedule:",
        "",
        *training_rows(facts),
        "",
        "`evaluation.json` holds every goal × trial return of every backbone, greedy and per seed.",
        "",
        *reproduce(run, facts, sampled),
        "",
    ]
    head, _, config = generic.partition("## Config")
    return head + "\n".join(lines) + "## Config" + config


def reproduce(run: str, facts: dict[str, dict], sampled: dict[int, dict]) -> list[str]:
    return [
        "## Reproduce",
        "",
        "```bash",
        "# data: PPO learning histories on the 80 training goals, whole (data/darkroom; each config says which episodes it keeps)",
        "nice -n 10 python examples/darkroom/generate_data.py examples/darkroom/source_rl.yaml  # --shard I/N per core",
        "# train each backbone (one CPU thread each)",
        *[f"nice -n 10 lram train {fact['config']} --threads 1" for fact in facts.values()],
        "# evaluate: 40 trials on the 20 hold-out goals, memory kept, greedy and sampled",
        "nice -n 10 python examples/darkroom/evaluate.py",
        f"for s in {' '.join(str(s) for s in sampled)}; do nice -n 10 python examples/darkroom/evaluate.py --sample --seed $s; done",
        f"python examples/darkroom/ship.py --backbone {run}",
        "```",
        "",
    ]


# ---- writing -----------------------------------------------------------------------------------
def zoo_evaluation(run: str, greedy: dict, sampled: dict[int, dict]) -> dict:
    """What tests/test_zoo_darkroom.py replays: the goals, every backbone's returns greedy and per seed."""
    keep = ("env_id", "goals", "trials", "expert_returns", "expert_mean")
    return {**{key: greedy[key] for key in keep}, "shipped": run, "greedy": greedy["results"],
            "sampled": {str(seed): report["results"] for seed, report in sampled.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluation", type=Path, default=Path("runs/darkroom/evaluation"), help="the greedy one")
    parser.add_argument("--sampled", type=Path, nargs="*", help="default: runs/darkroom/evaluation-sampled-seed*")
    parser.add_argument("--backbone", choices=sorted(ZOO_NAMES), help="default: the best over the last 10 trials")
    parser.add_argument("--zoo", type=Path, default=HERE.parent.parent / "zoo")
    args = parser.parse_args()
    greedy, sampled = load_evaluations(args.evaluation, args.sampled or sorted(args.evaluation.parent.glob("evaluation-sampled-seed*")))
    averaged = seed_averaged(greedy, sampled)
    run = args.backbone or best_backbone(averaged)
    name = ZOO_NAMES[run]
    facts = {r: training_facts(r) for r in averaged}
    agent = lram_agents.load(facts[run]["model_dir"], device="cpu", keep_memory=True, target_return=TARGET_RETURN,
                             deterministic=False)
    agent.bind(gym.make(ENV_ID))  # saves the spaces: the zoo agent acts without an env at hand
    directory = args.zoo / name
    old_card = (directory / "README.md").read_text() if (directory / "README.md").is_file() else ""
    kept = old_card[old_card.index(BEGIN):old_card.index(END) + len(END)] + "\n\n" if BEGIN in old_card else ""
    shutil.rmtree(directory, ignore_errors=True)
    table = np.asarray(averaged[run]["returns"])
    agent.save_pretrained(directory, name=name, results=headline(table, greedy["expert_mean"]))
    seeds = ", ".join(str(seed) for seed in sampled)
    plot(averaged, greedy["expert_mean"], directory / "return_vs_trial.png", f"sampled actions (mean of seeds {seeds})")
    atomic_write_text(directory / "evaluation.json", json.dumps(zoo_evaluation(run, greedy, sampled), indent=1) + "\n")
    readme = card(name, run, greedy, sampled, averaged, facts, (directory / "README.md").read_text())
    readme = readme.replace("### Training\n", kept + "### Training\n", 1)
    atomic_write_text(directory / "README.md", readme)
    description = (f"{LABELS[run]} trained by Algorithm Distillation on Dark-Room (PPO learning histories, "
                   f"{facts[run]['context'] // 100}-episode context); in-context agent with sampled actions: mean return {table[:, 0].mean():.1f} in trial 1, "
                   f"{table[:, -10:].mean():.1f} over trials 31-40 on the 20 hold-out goals "
                   f"(expert optimum {greedy['expert_mean']:.1f}).")
    add_to_manifest(args.zoo, manifest_entry(directory, name, description, local=name))
    size = sum(p.stat().st_size for p in directory.iterdir())
    print(f"shipped {run} as {name!r} in {directory} ({size / 1e3:.0f} kB on disk); manifest updated")


if __name__ == "__main__":
    main()
