"""Put the multi-domain generalists into the zoo: ``zoo/xlstm-lram-<size>/`` and ``zoo/dt-lram-<size>/``, with cards.

Reads what the other scripts wrote: the training runs (``runs/lram/<run>``, from the train configs),
their evaluations (``runs/lram/evaluation/<run>/evaluation.json``, ``evaluate.py``) and, when present,
the fine-tuning comparison (``runs/lram/finetune/<run>/finetune.json``, ``finetune.py``). Measures the
per-step latency of ``agent.act`` on Meta-World (CPU time and wall time, one thread, plain step and
compiled step) and writes each model's directory: weights, preprocessing (each task's reward scale and
target return), a card with the tables, ``scores.png`` and ``evaluation.json`` (what
``tests/test_zoo_lram.py`` replays), then its ``zoo/manifest.json`` entry.

    python examples/lram/ship.py
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import lram_agents
from lram_agents.model_card import parameter_count
from lram_agents.registry import add_to_manifest, manifest_entry
from lram_agents.run_configs import load_config_file
from lram_agents.serialization import atomic_write_text
from lram_agents.suite import SuiteResult, TaskScore

HERE = Path(__file__).parent
RUNS = {"xlstm": ("xlstm-lram-1m", "xLSTM [7:1]"), "dt": ("dt-lram-1m", "Decision Transformer")}  # 0.9M parameters each
LATENCY_ENV = "lram_agents/MetaWorld-reach-v0"
DOMAIN_ORDER = ("metaworld", "dmcontrol", "atari", "procgen", "robosuite")


# ---- facts ------------------------------------------------------------------------------------------
def stage_facts(config_path: Path) -> dict:
    """Steps, minutes of training, final loss and the settings of one training config's run."""
    output = Path(load_config_file(config_path)["output_dir"])
    rows = list(csv.DictReader((output / "metrics.csv").open()))
    steps = [0] + [int(row["step"]) for row in rows]
    seconds = sum((steps[i + 1] - steps[i]) / float(row["steps_per_s"]) for i, row in enumerate(rows))
    trainer = json.loads((output / "trainer_config.json").read_text())
    return {"config": config_path.relative_to(HERE.parent.parent).as_posix(), "steps": steps[-1], "minutes": seconds / 60,
            "final_loss": float(rows[-1]["loss"]), "batch_size": trainer["batch_size"], "learning_rate": trainer["learning_rate"],
            "model_dir": str(output / "model"), "run_dir": str(output)}


def training_facts(run: str, stage2: bool) -> dict:
    """The run's stages (``train_<run>.yaml``, then ``train_<run>_stage2.yaml`` with ``stage2``): steps and minutes
    summed, the last stage's model and loss, the first stage's batch."""
    stages = [stage_facts(HERE / f"train_{run}.yaml")] + ([stage_facts(HERE / f"train_{run}_stage2.yaml")] if stage2 else [])
    return {**stages[0], "stages": stages, "steps": sum(s["steps"] for s in stages), "minutes": sum(s["minutes"] for s in stages),
            "final_loss": stages[-1]["final_loss"], "model_dir": stages[-1]["model_dir"], "config": stages[-1]["config"]}


def data_facts(evaluation: dict) -> list[str]:
    """Per domain: tasks and transitions of the training data (from the recorded files' episode tables)."""
    from lram_agents.data.domain_sources import domain_sources

    entry = load_config_file(HERE / "train_xlstm.yaml")["data"][0]
    sources = domain_sources(entry["root"], entry["domains"], entry["split"], tasks=entry.get("tasks"))
    rows = ["| domain | training tasks | episodes | transitions | reward scale |", "|---|---:|---:|---:|---:|"]
    for domain in DOMAIN_ORDER:
        mine = [s for s in sources if s.name.startswith(domain + "/")]
        if mine:
            rows.append(f"| {domain} | {len(mine)} | {sum(s.dataset.num_episodes for s in mine):,} | "
                        f"{sum(s.dataset.num_steps for s in mine):,} | {mine[0].preprocessing.reward_scale:g} |")
    return rows


def measure_latency(model_dir: str, steps: int = 300) -> dict:
    """Median per-step ms of ``agent.act`` on Meta-World reach (CPU and wall time), plain and compiled, one thread."""
    env = gym.make(LATENCY_ENV)
    result = {}
    for compiled in (False, True):
        agent = lram_agents.load(model_dir, compile=compiled).bind(env)
        obs, _ = env.reset(seed=0)
        reward, cpu, wall = 0.0, [], []
        for t in range(steps + 20):
            c0, w0 = time.process_time(), time.perf_counter()
            action = agent.act(obs, reward)
            c1, w1 = time.process_time(), time.perf_counter()
            if t >= 20:  # warm-up (and the compile) first
                cpu.append(c1 - c0)
                wall.append(w1 - w0)
            obs, reward, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                obs, _ = env.reset()
                agent.reset()
                reward = 0.0
        key = "compiled" if compiled else "plain"
        result[key] = {"cpu_ms": 1e3 * float(np.median(cpu)), "wall_ms": 1e3 * float(np.median(wall))}
    return result


# ---- tables -----------------------------------------------------------------------------------------
def fmt(value: float, digits: int = 2) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def domain_rows(evaluations: dict[str, dict], split: str) -> list[str]:
    runs = list(evaluations)
    head = "| domain | tasks | " + " | ".join(f"{RUNS[r][1]} normalised | {RUNS[r][1]} success" for r in runs) + " | data's policy normalised |"
    rows = [head, "|---|---:|" + "---:|---:|" * len(runs) + "---:|"]
    for domain in DOMAIN_ORDER:
        key = f"{domain}/{split}"
        suites = [evaluations[r]["suites"].get(key) for r in runs]
        if any(s is None for s in suites):
            continue
        cells = " | ".join(f"{fmt(s['summary']['normalized'])} | {fmt(s['summary']['success rate'])}" for s in suites)
        rows.append(f"| {domain} | {suites[0]['summary']['tasks']} | {cells} | {fmt(suites[0]['summary']['data_policy'])} |")
    return rows


def task_rows(evaluations: dict[str, dict], split: str) -> list[str]:
    runs = list(evaluations)
    head = "| domain | task | " + " | ".join(f"{RUNS[r][1]} return | norm. | success" for r in runs) + " | data's policy norm. |"
    rows = [head, "|---|---|" + "---:|---:|---:|" * len(runs) + "---:|"]
    for domain in DOMAIN_ORDER:
        key = f"{domain}/{split}"
        if any(key not in evaluations[r]["suites"] for r in runs):
            continue
        by_run = [{t["task"]: t for t in evaluations[r]["suites"][key]["tasks"]} for r in runs]
        for task, first in by_run[0].items():
            cells = " | ".join(f"{t[task]['mean_return']:.1f} | {fmt(t[task]['normalized'])} | {fmt(t[task]['success_rate'])}"
                               for t in by_run)
            rows.append(f"| {domain} | {task} | {cells} | {fmt(first['data_policy'])} |")
    return rows


def finetune_rows(report: dict) -> list[str]:
    rows = ["| task | pretrained: norm. | success | from scratch: norm. | success |", "|---|---:|---:|---:|---:|"]
    results = report["results"]
    for domain, task in dict.fromkeys((r["domain"], r["task"]) for r in results):
        pre, scratch = ([r for r in results if (r["domain"], r["task"], r["variant"]) == (domain, task, v)][0]
                        for v in ("pretrained", "scratch"))
        rows.append(f"| {domain}/{task} | {fmt(pre['normalized'])} | {fmt(pre['success_rate'])} | {fmt(scratch['normalized'])} | "
                    f"{fmt(scratch['success_rate'])} |")
    means = report["mean_normalized"]
    rows.append(f"| **mean** | **{fmt(means['pretrained'])}** | | **{fmt(means['scratch'])}** | |")
    return rows


def headline(evaluation: dict) -> dict:
    """The card's key numbers (also the generic card's Results table)."""
    numbers = {}
    for key, suite in evaluation["suites"].items():
        numbers[f"{key} normalised"] = suite["summary"]["normalized"]
        if math.isfinite(suite["summary"]["success rate"]):
            numbers[f"{key} success"] = suite["summary"]["success rate"]
    return numbers


# ---- card -------------------------------------------------------------------------------------------
def stage2_text(facts: dict) -> str:
    first, second = facts["stages"]
    return (f"Two stages: {first['steps']:,} steps on all the data ({first['minutes']:.0f} min, `{first['config']}`), then "
            f"{second['steps']:,} steps from those weights on each task's best third of its episodes by return ({second['minutes']:.0f} "
            f"min, `{second['config']}`): the Meta-World data mixes the scripted experts with action noise up to 1.0 and random "
            "actions, and a model this small spends a single stage on the noise.")


def finetune_source(finetune: dict, facts: dict) -> str:
    if len(facts["stages"]) > 1:  # the comparison was run on the stage-1 model, before stage 2 existed
        return f"the stage-1 model, `{facts['stages'][0]['model_dir']}`, not stage 2"
    return f"`{finetune['model']}`"


def decoding_text(evaluation: dict) -> str:
    if evaluation.get("continuous_decoding", "argmax") == "mean":
        return "continuous actions: the expected value over the head's 256 bins, `continuous_decoding='mean'`, saved with the agent"
    return "argmax"


def card(name: str, run: str, generic: str, evaluations: dict, facts: dict, latency: dict, finetune: dict | None,
         data_rows: list[str], episodes: int, evaluation_dirs: dict) -> str:
    ev = evaluations[run]
    mt = ev["suites"].get("metaworld/train", {}).get("summary", {})
    dmc = ev["suites"].get("dmcontrol/train", {}).get("summary", {})
    lines = [
        "## The LRAM generalist at CPU size",
        "",
        f"{RUNS[run][1]} ({parameter_count(ev['parameters'])} parameters) trained offline on every recorded training task of "
        "five LRAM domains at once — Meta-World MT45, DMControl DMC11, 8 Atari games, 4 Procgen games, robosuite Lift and "
        "Stack (standing in for Composuite / Mimicgen) — with LRAM's recipe: every batch balanced across domains, no actions "
        "in the context, 50-timestep windows, reward scales 200 / 100 / 20 / 1, the target return of each task the best return "
        "in its data, AdamW with warm-up and cosine decay, clip 0.25, weight decay 0.01. "
        f"{facts[run]['steps']:,} steps of batch {facts[run]['batch_size']} took {facts[run]['minutes']:.0f} minutes of training on "
        "this 2-core CPU machine (LRAM's 206M model, 200K steps of 768 windows on 894M transitions, needs GPUs: "
        "`examples/lram/train_206m.yaml`).",
        *([""] + [stage2_text(facts[run])] if len(facts[run]["stages"]) > 1 else []),
        "",
        f"* Meta-World MT45: mean success **{fmt(mt.get('success rate'))}**, data-normalised score **{fmt(mt.get('normalized'))}** "
        f"(the data's own expert: {fmt(mt.get('data_policy'))}); DMControl DMC11: **{fmt(dmc.get('normalized'))}** "
        f"(the data's SAC policy: {fmt(dmc.get('data_policy'))}). {episodes} episodes per task, first reset seeded 0, "
        f"deterministic actions ({decoding_text(ev)}).",
        "",
        "```python",
        "import gymnasium as gym, lram_agents",
        f'agent = lram_agents.load("{name}")',
        'env = gym.make("lram_agents/MetaWorld-button-press-v0")',
        "agent.bind(env)      # picks the task's reward scale (200) and target return from the env id",
        "obs, info = env.reset(seed=0); reward = 0.0",
        "for t in range(200):",
        "    obs, reward, terminated, truncated, info = env.step(agent.act(obs, reward))",
        "```",
        "",
        "![normalised score per task](scores.png)",
        "",
        "### Scores per domain (training tasks)",
        "",
        f"Same data, steps, batch and schedule for {' and '.join(RUNS[r][1] for r in evaluations)} "
        f"({', '.join(parameter_count(evaluations[r]['parameters']) for r in evaluations)} parameters):",
        "",
        *domain_rows(evaluations, "train"),
        "",
        "Atari is human-normalised, the other domains data-normalised ((R - data min) / (data max - data min), "
        "`envs/domains/REFERENCE.md`). The data's policy column is the policy that recorded the data "
        "(Meta-World's scripted expert without noise, DMControl's and Atari's / Procgen's final SAC / PPO policy, robosuite's script).",
        "",
        "### Zero-shot on the hold-out tasks",
        "",
        "Tasks never seen in training, with the domain's reward scale and the median target return of its training tasks:",
        "",
        *domain_rows(evaluations, "holdout"),
        "",
    ]
    if finetune is not None:
        lines += [
            "### Fine-tuning on the hold-out tasks (LRAM figure 16)",
            "",
            f"Full fine-tuning on the top {finetune['top_fraction']:.0%} of each hold-out task's episodes, {finetune['steps']} steps "
            f"of batch {finetune['batch_size']} (learning rate {finetune['learning_rate']:g}), from the pretrained weights "
            f"({finetune_source(finetune, facts[run])}) and from "
            f"fresh weights of the same architecture; {finetune['episodes']} evaluation episodes each, argmax actions:",
            "",
            *finetune_rows(finetune),
            "",
        ]
    lines += [
        "### Latency",
        "",
        f"Median `agent.act` per step on `{LATENCY_ENV}`, one thread, this 2-core CPU (CPU time / wall time):",
        "",
        "| model | plain step | compiled step |",
        "|---|---:|---:|",
        *[f"| {RUNS[r][1]} | {latency[r]['plain']['cpu_ms']:.2f} / {latency[r]['plain']['wall_ms']:.2f} ms | "
          f"{latency[r]['compiled']['cpu_ms']:.2f} / {latency[r]['compiled']['wall_ms']:.2f} ms |" for r in latency],
        "",
        "### Data",
        "",
        *data_rows,
        "",
        "Budgets, sources and wall times of the data: `examples/domains/README.md`.",
        "",
        "### Per task",
        "",
        *task_rows(evaluations, "train"),
        "",
        "Hold-out tasks (zero-shot):",
        "",
        *task_rows(evaluations, "holdout"),
        "",
        "## Reproduce",
        "",
        "```bash",
        "# data (each: --shard 0/2 and --shard 1/2 in parallel; see examples/domains/README.md)",
        "for d in metaworld dmcontrol atari procgen robosuite; do python examples/domains/generate_data.py examples/domains/$d.yaml; done",
        *[f"lram train {stage['config']} --threads 1" for r in facts for stage in facts[r]["stages"]],
        *[f"python examples/lram/evaluate.py {facts[r]['model_dir']} --config {facts[r]['config']} "
          f"--continuous-decoding {evaluations[r]['continuous_decoding']} --output {evaluation_dirs[r]}" for r in facts],
        *([f"python examples/lram/finetune.py {facts[run]['stages'][0]['model_dir']} --output runs/lram/finetune/{run}"] if finetune else []),
        f"python examples/lram/ship.py{' --stage2' if len(facts[run]['stages']) > 1 else ''}",
        "```",
        "",
    ]
    head, _, config = generic.partition("## Config")
    return head + "\n".join(lines) + "## Config" + config


def scores_plot(evaluation: dict, path: Path) -> None:
    scores = [TaskScore(key.split("/")[0], t["task"], key.split("/")[1], evaluation["episodes"], t["mean_return"], t["std_return"],
                        t["success_rate"], t["normalized"]) for key, suite in evaluation["suites"].items() if key.endswith("/train")
              for t in suite["tasks"]]
    SuiteResult(tuple(scores)).plot(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluation", type=Path, default=Path("runs/lram/evaluation"))
    parser.add_argument("--finetune", type=Path, default=Path("runs/lram/finetune"))
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--zoo", type=Path, default=HERE.parent.parent / "zoo")
    parser.add_argument("--stage2", action="store_true", help="ship the stage-2 models (train_<run>_stage2.yaml), "
                        "evaluated in <evaluation>/<run>-stage2")
    args = parser.parse_args()
    torch.set_num_threads(1)
    evaluation_dirs = {r: args.evaluation / (f"{r}-stage2" if args.stage2 else r) for r in args.runs}
    evaluations = {r: json.loads((evaluation_dirs[r] / "evaluation.json").read_text()) for r in args.runs}
    facts = {r: training_facts(r, args.stage2) for r in args.runs}
    latency = {r: measure_latency(facts[r]["model_dir"]) for r in args.runs}
    data_rows = data_facts(evaluations[args.runs[0]])
    for run in args.runs:
        ev = evaluations[run]
        name = RUNS[run][0]
        finetune_file = args.finetune / run / "finetune.json"
        finetune = json.loads(finetune_file.read_text()) if finetune_file.is_file() else None
        agent = lram_agents.load(facts[run]["model_dir"], device="cpu",
                                 continuous_decoding=ev.get("continuous_decoding", "argmax"))  # as evaluated
        directory = args.zoo / name
        shutil.rmtree(directory, ignore_errors=True)
        agent.save_pretrained(directory, name=name, results=headline(ev))
        scores_plot(ev, directory / "scores.png")
        atomic_write_text(directory / "evaluation.json", json.dumps({k: v for k, v in ev.items() if k != "model"}, indent=1) + "\n")
        if finetune is not None:
            shutil.copy(finetune_file.with_suffix(".png"), directory / "finetune.png")
        readme = card(name, run, (directory / "README.md").read_text(), evaluations, facts, latency, finetune, data_rows, ev["episodes"],
                      evaluation_dirs)
        atomic_write_text(directory / "README.md", readme)
        mt = ev["suites"].get("metaworld/train", {}).get("summary", {})
        description = (f"{RUNS[run][1]} LRAM generalist at CPU size ({parameter_count(ev['parameters'])} parameters), trained on "
                       f"Meta-World, DMControl, Atari, Procgen and robosuite at once; MT45 success {fmt(mt.get('success rate'))}. "
                       "Acts in any task of these domains: agent.bind(env) picks the task's reward scale and target return.")
        add_to_manifest(args.zoo, manifest_entry(directory, name, description, local=name))
        size = sum(p.stat().st_size for p in directory.iterdir())
        print(f"shipped {run} as {name!r} in {directory} ({size / 1e3:.0f} kB on disk); manifest updated")


if __name__ == "__main__":
    main()
