"""Put the best Algorithm Distillation model of a continuous-control env into the zoo, with its card.

Reads what ``evaluate.py`` wrote (``runs/ad/<env>/evaluation/evaluation.json``: every backbone's
(seed, task, episode) returns, the zero / random baselines, the source algorithm's curve on the same
hold-out tasks), picks the backbone with the best mean over the last 10 episodes (or ``--backbone``)
and writes ``zoo/<backbone>-ad-<env>/``: weights, card, plot and evaluation, plus a manifest entry.
The card holds the data recipe and its wall time (from the histories' ``task-*.json``), every
backbone's training and evaluation at equal budget, and the commands that regenerate all of it.

    python examples/ad/ship.py --env reachergoal
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import gymnasium as gym
import h5py
import numpy as np

import lram_agents
from lram_agents.envs import task_family
from lram_agents.evaluation_report import in_context_gain, mean_sem, per_task_gain
from lram_agents.registry import add_to_manifest, manifest_entry
from lram_agents.run_configs import load_config_file
from lram_agents.serialization import atomic_write_text
from lram_agents.training.metrics import run_summary

from evaluate import BACKBONES, ENVS, LAST, plot, seed_mean, source_row, summary_rows  # beside this script

HERE = Path(__file__).parent
ZOO_PREFIX = {"mamba": "mamba", "mamba-mse": "mamba", "transformer": "dt", "xlstm": "xlstm"}
PAPER_BUDGET = {  # AD with Mamba, appendix A: source algorithm, training tasks, steps per task, k
    "reachergoal": ("SAC", 70, 100_000, 4), "pushergoal": ("PPO", 35, 500_000, 10),
    "halfcheetahvel": ("SAC", 15, 400_000, 8), "antdir": ("DroQ", 30, 500_000, 10),
}


def data_facts(env: str) -> dict:
    """What was recorded in the source config's output folder: the recipe (from the files' metadata, not
    today's YAML), tasks, episodes, returns and CPU time (from the histories' ``task-*.json``)."""
    config = f"examples/ad/{env}_{PAPER_BUDGET[env][0].lower()}.yaml"
    source = load_config_file(HERE.parent.parent / config)
    directory = Path(source["output"])
    files = sorted(directory.glob("task-*.h5"))
    if not files:
        raise SystemExit(f"no histories in {directory}: record them with python -m lram_agents.data.task_histories {config}")
    with h5py.File(files[0], "r") as f:
        recipe = json.loads(f.attrs["metadata"])
    sidecars = [json.loads(p.read_text()) for p in sorted(directory.glob("task-*.json"))]
    return {"config": config, "algorithm": recipe["algorithm"], "steps": recipe["total_timesteps"],
            "keep_every": recipe["keep_every"], "tasks": len(files), "train_tasks": len(task_family(source["env"]).train_tasks()),
            "episodes": int(np.mean([len(s["returns"]) for s in sidecars])),
            "first10": float(np.mean([np.mean(s["returns"][:10]) for s in sidecars])),
            "last10": float(np.mean([np.mean(s["returns"][-10:]) for s in sidecars])),
            "cpu_hours": sum(s["cpu_seconds"] for s in sidecars) / 3600, "output": str(directory)}


def training_facts(env: str, run: str) -> dict:
    """Steps, minutes, final loss and command of ``examples/ad/train_<env>_<run>.yaml``'s run."""
    config_path = HERE / f"train_{env}_{run}.yaml"
    config = load_config_file(config_path)
    output = Path(config["output_dir"])
    trainer = json.loads((output / "trainer_config.json").read_text())  # what the run used, not today's yaml
    loss = "MSE" if config["model"]["inline"].get("action_head") == "regression" else "cross entropy"
    return {"config": config_path.relative_to(HERE.parent.parent).as_posix(), **run_summary(output), "loss": loss,
            "batch_size": trainer["batch_size"], "model_dir": str(output / "model")}


def best_backbone(report: dict) -> str:
    return max(report["results"], key=lambda run: seed_mean(report["results"][run]["per_seed"])[:, -LAST:].mean())


def verdict(table: np.ndarray) -> str:
    mean, sem = in_context_gain(table, last=LAST)
    difference = per_task_gain(table, last=LAST)
    counts = f"better on {(difference > 0).sum()} of {len(difference)} tasks, worse on {(difference < 0).sum()}"
    if mean > 2 * sem:
        return (f"**In-context RL**: the last {LAST} episodes beat episode 1 by {mean:.1f} ± {sem:.1f} "
                f"(paired over tasks; {counts}), with no gradient step.")
    return f"**No significant in-context improvement**: last {LAST} episodes minus episode 1 = {mean:.1f} ± {sem:.1f} ({counts})."


def source_final(report: dict, data: dict) -> str:
    """The source algorithm's final return (its last 10 episodes) on the hold-out tasks and the training tasks."""
    holdout = sorted(Path(f"data/ad/{report['env']}-holdout").glob("task-*.json"))
    parts = []
    for label, paths in (("hold-out", holdout), ("training", sorted(Path(data["output"]).glob("task-*.json")))):
        finals = [np.mean(json.loads(p.read_text())["returns"][-10:]) for p in paths]
        if finals:
            mean, sem = mean_sem(finals)
            parts.append(f"{mean:.1f} ± {sem:.1f} on {len(finals)} {label} tasks")
    return "; ".join(parts) or "not recorded"


def greedy_section(report: dict) -> list[str]:
    """The same table with greedy actions (the bins' expected value), when evaluate.py --greedy was run alike."""
    path = Path(f"runs/ad/{report['env']}/evaluation-greedy/evaluation.json")
    greedy = json.loads(path.read_text()) if path.is_file() else None
    if not greedy or any(greedy[k] != report[k] for k in ("tasks", "episodes", "seeds")):
        return []
    return ["", "The same with greedy actions (the expected value of the bins; no exploration noise):", "", *summary_rows(greedy)]


def card(name: str, run: str, report: dict, data: dict, facts: dict, generic: str) -> str:
    env_id, label, length = ENVS[report["env"]]
    table = seed_mean(report["results"][run]["per_seed"])
    mean, sem = mean_sem(table)
    last, last_sem = mean_sem(table[:, -LAST:].mean(1))
    paper = PAPER_BUDGET[report["env"]]
    tasks, seeds, episodes = len(report["tasks"]), report["seeds"], report["episodes"]
    lines = [
        f"## {label}: in-context RL by Algorithm Distillation",
        "",
        f"{BACKBONES[run]}, trained offline to imitate the learning histories of {data['algorithm']} on "
        f"{data['tasks']} training tasks of `{env_id}`, then played on {tasks} **unseen** tasks for {episodes} "
        f"consecutive episodes each (seeds {', '.join(map(str, seeds))}), memory kept across episodes, no gradient step: "
        "whatever it learns about a task's hidden goal it learns in context, from the rewards of its earlier episodes.",
        "",
        f"* Episode 1 **{mean[0]:.1f} ± {sem[0]:.1f}**, last {LAST} episodes **{last:.1f} ± {last_sem:.1f}** (per task "
        "the mean over seeds, then mean ± standard error over tasks).",
        f"* {verdict(table)}",
        f"* The source algorithm's final return (mean of its last 10 episodes, {data['steps']:,} steps per task): "
        f"{source_final(report, data)}.",
        "",
        "```python",
        "import lram_agents",
        "from lram_agents.envs import task_family, task_vector_env",
        f'agent = lram_agents.load("{name}")  # keeps its memory across episodes by default',
        f'tasks = task_family("{env_id}").holdout_tasks()[:{tasks}]',
        f'result = lram_agents.evaluate(agent, task_vector_env("{env_id}", tasks), n_episodes=len(tasks) * {episodes}, seed=0)',
        "returns = result.trial_returns()  # (task, episode)",
        "```",
        "",
        "![return vs episode](return_vs_episode.png)",
        "",
        "### Backbones trained and evaluated alike",
        "",
        "Same data, context, batch, optimizer and steps for every backbone; return per episode (mean over seeds per "
        "task, then mean ± s.e. over tasks); gain = mean of the last 10 episodes minus episode 1, paired over tasks:",
        "",
        *summary_rows(report),
        "",
        f"{source_row(report) or 'No source histories on hold-out tasks.'}",
        *greedy_section(report),
        *([""] + [f"Rows without a config in the training table below are variants of one (trained with `lram train "
                  f"--set ...`; `examples/ad/README.md` says how): {', '.join(sorted(set(report['results']) - set(facts)))}."]
          if set(report["results"]) - set(facts) else []),
        "",
        "### Data and training",
        "",
        f"{data['algorithm']} learning histories (SB3, `{data['config']}`): {data['tasks']} of {data['train_tasks']} "
        f"training tasks × {data['steps']:,} steps ({data['episodes']} episodes of {length}; return {data['first10']:.1f} "
        f"in the first 10 episodes → {data['last10']:.1f} in the last 10, mean over tasks), one episode in "
        f"{data['keep_every']} kept; {data['cpu_hours']:.1f} CPU hours. The paper: {paper[1]} tasks × {paper[2]:,} steps of "
        f"{paper[0]}, k = {paper[3]}.",
        "",
        "| backbone | config | parameters | steps | batch | wall time (1 CPU thread, shared machine) | final loss |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *[f"| {BACKBONES[r]} | `{f['config']}` | {report['results'][r]['parameters'] / 1e6:.2f}M | {f['steps']} | "
          f"{f['batch_size']} | {f['minutes']:.0f} min | {f['final_loss']:.4f} ({f['loss']}) |" for r, f in facts.items()],
        "",
        "## Reproduce",
        "",
        "```bash",
        f"nice -n 10 python -m lram_agents.data.task_histories {data['config']} --shard 0/2 &  # one process per core",
        f"nice -n 10 python -m lram_agents.data.task_histories {data['config']} --shard 1/2",
        f"python -m lram_agents.data.task_histories {data['config']} --split holdout --tasks {len(report.get('source') or {}) or tasks} "
        f"--output data/ad/{report['env']}-holdout",
        *[f"nice -n 10 lram train {f['config']} --threads 1" for f in facts.values()],
        f"nice -n 10 python examples/ad/evaluate.py --env {report['env']} --tasks {tasks} --episodes {episodes} "
        f"--seeds {' '.join(map(str, seeds))}",
        f"python examples/ad/ship.py --env {report['env']} --backbone {run}",
        "```",
        "",
    ]
    head, _, config = generic.partition("## Config")
    return head + "\n".join(lines) + "\n## Config" + config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", choices=sorted(ENVS), default="reachergoal")
    parser.add_argument("--evaluation", type=Path, help="default: runs/ad/<env>/evaluation")
    parser.add_argument("--backbone", help="default: the best over the last 10 episodes")
    parser.add_argument("--zoo", type=Path, default=HERE.parent.parent / "zoo")
    args = parser.parse_args()
    evaluation = args.evaluation or Path(f"runs/ad/{args.env}/evaluation")
    report = json.loads((evaluation / "evaluation.json").read_text())
    run = args.backbone or best_backbone(report)
    if run not in report["results"]:
        raise SystemExit(f"--backbone {run!r} was not evaluated; evaluated: {sorted(report['results'])}")
    name = f"{ZOO_PREFIX[run]}-ad-{args.env}"
    data = data_facts(args.env)
    # runs of the examples' configs (other evaluated variants, e.g. --set overrides, stay in the tables only)
    facts = {r: training_facts(args.env, r) for r in report["results"] if (HERE / f"train_{args.env}_{r}.yaml").is_file()}
    env_id = ENVS[args.env][0]
    agent = lram_agents.load(facts[run]["model_dir"], device="cpu", keep_memory=True, deterministic=False)
    agent.bind(gym.make(env_id))  # saves the spaces: the zoo agent acts without an env at hand
    table = seed_mean(report["results"][run]["per_seed"])
    directory = args.zoo / name
    shutil.rmtree(directory, ignore_errors=True)
    headline = {"unseen tasks x episodes x seeds (memory kept)": f"{table.shape[0]} x {table.shape[1]} x {len(report['seeds'])}",
                "return, episode 1": float(table[:, 0].mean()), f"return, mean of the last {LAST} episodes": float(table[:, -LAST:].mean()),
                "in-context gain (last 10 - episode 1)": in_context_gain(table, LAST)[0]}
    agent.save_pretrained(directory, name=name, results=headline)
    plot(report, directory / "return_vs_episode.png")
    atomic_write_text(directory / "evaluation.json", json.dumps({**report, "shipped": run}, indent=1) + "\n")
    atomic_write_text(directory / "README.md", card(name, run, report, data, facts, (directory / "README.md").read_text()))
    description = (f"{BACKBONES[run]} trained by Algorithm Distillation on {data['algorithm']} learning histories of "
                   f"{ENVS[args.env][1]}; on {table.shape[0]} unseen tasks its return goes {table[:, 0].mean():.1f} (episode 1) -> "
                   f"{table[:, -LAST:].mean():.1f} (last {LAST} of {table.shape[1]} episodes), memory kept, no gradient step.")
    add_to_manifest(args.zoo, manifest_entry(directory, name, description, local=name))
    size = sum(p.stat().st_size for p in directory.iterdir())
    print(f"shipped {run} as {name!r} in {directory} ({size / 1e3:.0f} kB on disk); manifest updated")


if __name__ == "__main__":
    main()
