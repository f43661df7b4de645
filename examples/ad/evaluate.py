"""In-context evaluation of Algorithm Distillation on continuous control: unseen tasks, many episodes, no gradient step.

Each trained model is loaded with :func:`lram_agents.load` and played by :func:`lram_agents.evaluate` on
:func:`lram_agents.envs.task_vector_env` (one env per hold-out task) with ``keep_memory=True``: the same
code a user runs. Every (task, episode) return is kept, per env seed. Beside the models:

* the source algorithm's own learning curve on the same hold-out tasks (its recorded histories,
  ``--source-data``; AD's episode j imitates the history's j-th kept episode, i.e. source episode j*k),
* the zero-action and uniform-random policies on the same tasks and seeds.

Writes ``evaluation.json`` and ``return_vs_episode.png`` (mean ± s.e. over tasks of the seed-averaged
returns) and prints the table. Results already in the output's ``evaluation.json`` measured the same
way (env, tasks, episodes, seeds) are kept, so each backbone can be evaluated right after it trains.

    nice -n 10 python examples/ad/evaluate.py --env reachergoal          # the runs of examples/ad/train_reachergoal_*.yaml
    nice -n 10 python examples/ad/evaluate.py --env reachergoal --models mamba=runs/ad/reachergoal/mamba/model
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import h5py
import matplotlib
import numpy as np
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import lram_agents  # noqa: E402
from lram_agents.envs import task_family, task_vector_env  # noqa: E402
from lram_agents.evaluation_report import in_context_gain, mean_sem  # noqa: E402
from lram_agents.serialization import atomic_write_text, save_figure  # noqa: E402

ENVS = {  # short name -> (env id, label, episode length)
    "reachergoal": ("lram_agents/ReacherGoal-v0", "Reacher-Goal", 50),
    "halfcheetahvel": ("lram_agents/HalfCheetahVel-v0", "HalfCheetah-Vel", 200),
    "pushergoal": ("lram_agents/PusherGoal-v0", "Pusher-Goal", 100),
    "antdir": ("lram_agents/AntDir-v0", "Ant-Dir", 200),
}
BACKBONES = {  # run name -> label in tables and plots
    "mamba": "Mamba",
    "transformer": "Transformer (RoPE)",
    "xlstm": "xLSTM [1:0]",
    "mamba-mse": "Mamba, MSE head",
}
LAST = 10  # the "last episodes" of the table and the gain: the mean of the last 10 episodes
TABLE_EPISODES = (1, 2, 5, 10, 20, 40, 60, 80)  # the table's columns (and the last episode)


def evaluate_model(model_dir: str | Path, env_id: str, tasks: list, episodes: int, seed: int, greedy: bool = False,
                   progress: bool = True) -> dict:
    """(task, episode) returns of the agent saved in ``model_dir``, memory kept across its episodes.

    Actions are sampled (seeded), as the source algorithm's were: a binned head explores that way (the
    regression head has no distribution and gives its mean either way); ``greedy``: the expected value
    of the bins instead (no exploration noise).
    """
    options = {"deterministic": True, "continuous_decoding": "mean"} if greedy else {"deterministic": False}
    agent = lram_agents.load(model_dir, device="cpu", seed=seed, **options)
    start = time.perf_counter()
    result = lram_agents.evaluate(agent, task_vector_env(env_id, tasks), n_episodes=len(tasks) * episodes, keep_memory=True,
                                  seed=seed, progress=progress)
    return {"returns": result.trial_returns().tolist(), "parameters": agent.model.num_parameters(),
            "seconds": time.perf_counter() - start, "latency_median_ms": result.latency_median_ms}


def evaluate_over_seeds(model_dir: str, env_id: str, tasks: list, episodes: int, seeds: list[int], greedy: bool) -> dict:
    """:func:`evaluate_model` once per seed: the (seed, task, episode) returns and the run's facts."""
    runs = [evaluate_model(model_dir, env_id, tasks, episodes, seed, greedy) for seed in seeds]
    return {"model_dir": model_dir, "parameters": runs[0]["parameters"], "per_seed": [r["returns"] for r in runs],
            "seconds": sum(r["seconds"] for r in runs), "latency_median_ms": float(np.median([r["latency_median_ms"] for r in runs]))}


def baseline_returns(env_id: str, tasks: list, episodes: int, seed: int, policy: str) -> list[list[float]]:
    """(task, episode) returns of the zero-action or uniform-random policy (seeded like the models)."""
    env = task_vector_env(env_id, tasks)  # Gymnasium's next-step autoreset: the step after an end only resets
    space, rng = env.action_space, np.random.default_rng(seed)
    table, running = np.zeros((len(tasks), episodes)), np.zeros(len(tasks))
    counts, resetting = np.zeros(len(tasks), dtype=int), np.zeros(len(tasks), dtype=bool)
    env.reset(seed=seed)
    while (counts < episodes).any():
        action = np.zeros(space.shape, space.dtype) if policy == "zero" else rng.uniform(space.low, space.high).astype(space.dtype)
        _, reward, terminated, truncated, _ = env.step(action)
        running += np.where(resetting, 0.0, reward)
        ended = (terminated | truncated) & ~resetting
        for i in np.flatnonzero(ended & (counts < episodes)):
            table[i, counts[i]] = running[i]
        counts += ended
        running[ended] = 0.0
        resetting = ended
    env.close()
    return table.tolist()


def recorded_setting(directory: Path, key: str):
    """The value of ``key`` in the recipe of the learning histories in ``directory`` (their metadata); ``None``
    without histories. Exits naming the files if they were recorded with different values."""
    values = {}
    for path in sorted(directory.glob("*.h5")) if directory.is_dir() else []:
        with h5py.File(path, "r") as f:
            values[path.name] = json.loads(f.attrs["metadata"]).get(key)
    if len(set(values.values())) > 1:
        raise SystemExit(f"{directory} mixes histories recorded with different {key}: {values}")
    return next(iter(values.values()), None)


def recorded_keep_every(directory: Path) -> int | None:
    """k of the learning histories in ``directory``; ``None`` without histories."""
    return recorded_setting(directory, "keep_every")


def common_keep_every(source_data: Path, training_data: Path) -> int | None:
    """k shared by the source's hold-out histories and the training data (either may be absent); exits if they differ,
    since the source curve's episode j must be the j-th kept episode, as in the histories AD imitated."""
    source, trained = recorded_keep_every(source_data), recorded_keep_every(training_data)
    if None not in (source, trained) and source != trained:
        raise SystemExit(f"{source_data} keeps every {source}-th episode, the training data {training_data} every "
                         f"{trained}-th: the source curve would not match AD's episodes")
    return source or trained


def source_curves(directory: Path, episodes: int) -> dict | None:
    """The source algorithm's return at its kept episodes 0, k, 2k, ... on the hold-out tasks it learned
    (``task`` -> list of the first ``episodes``), from the histories in ``directory``; ``None`` if there are none."""
    files = sorted(directory.glob("*.h5")) if directory.is_dir() else []
    if not files:
        return None
    curves = {}
    for path in files:
        with h5py.File(path, "r") as f:
            order = np.argsort(f["episodes/episode_index"][:])
            curves[f["episodes/task"][0].decode()] = f["episodes/return"][:][order][:episodes].tolist()
    return curves


def seed_mean(per_seed: list) -> np.ndarray:
    """(seeds, tasks, episodes) -> (tasks, episodes): each task's return averaged over the seeds."""
    return np.asarray(per_seed, dtype=np.float64).mean(0)


def summary_rows(report: dict) -> list[str]:
    """Markdown: return at some episodes, last-10 mean and the in-context gain (mean ± s.e. over tasks)."""
    episodes = report["episodes"]
    shown = sorted({e for e in TABLE_EPISODES if e <= episodes} | {episodes})
    header = ("| policy | params | " + " | ".join(f"ep. {e}" for e in shown)
              + f" | last {LAST} | gain (last {LAST} − ep. 1) |")
    rows = [header, "|" + " --- |" * (len(shown) + 4)]
    entries = [(BACKBONES.get(name, name), r["parameters"], seed_mean(r["per_seed"])) for name, r in report["results"].items()]
    entries += [(f"{name} actions", None, seed_mean(table)) for name, table in report["baselines"].items()]
    for label, parameters, table in entries:
        mean, sem = mean_sem(table)
        last_mean, last_sem = mean_sem(table[:, -LAST:].mean(1))
        gain, gain_sem = in_context_gain(table, last=LAST)
        cells = " | ".join(f"{mean[e - 1]:.1f} ± {sem[e - 1]:.1f}" for e in shown)
        size = f"{parameters / 1e6:.2f}M" if parameters else ""
        rows.append(f"| {label} | {size} | {cells} | {last_mean:.1f} ± {last_sem:.1f} | {gain:+.1f} ± {gain_sem:.1f} |")
    return rows


def source_row(report: dict) -> str | None:
    """The source algorithm's curve on the tasks it learned, at AD's episode counts (episode j = its episode j*k)."""
    curves = report.get("source")
    if not curves:
        return None
    table = np.asarray(list(curves.values()), dtype=np.float64)
    k, n = report["keep_every"], table.shape[1]
    last = min(LAST, n)
    first, final = mean_sem(table[:, 0]), mean_sem(table[:, -last:].mean(1))
    split = report.get("source_split", "hold-out")
    return (f"source algorithm on {len(curves)} {split} tasks (its own learning, kept episodes 0, {k}, {2 * k}, ...): "
            f"episode 1 {first[0]:.1f} ± {first[1]:.1f}, its kept episodes {n - last + 1}-{n} "
            f"(source episodes {(n - last) * k}-{(n - 1) * k}) {final[0]:.1f} ± {final[1]:.1f}")


def plot(report: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.8, 4.2), dpi=100)
    for name, result in report["results"].items():
        mean, sem = mean_sem(seed_mean(result["per_seed"]))
        x = np.arange(1, len(mean) + 1)
        line, = ax.plot(x, mean, label=f"AD, {BACKBONES.get(name, name)}", lw=1.6)
        ax.fill_between(x, mean - sem, mean + sem, color=line.get_color(), alpha=0.2)
    if report.get("source"):
        mean, sem = mean_sem(np.asarray(list(report["source"].values())))
        x = np.arange(1, len(mean) + 1)
        ax.plot(x, mean, color="black", lw=1.2, label=f"source {report['algorithm']} (episode j = its episode {report['keep_every']}(j-1))")
    for name, style in (("zero", ":"), ("random", "--")):
        if name in report["baselines"]:
            ax.axhline(seed_mean(report["baselines"][name]).mean(), color="grey", ls=style, lw=1.2, label=f"{name} actions")
    label = ENVS[report["env"]][1]
    ax.set(xlabel="episode on the same unseen task (memory kept, no gradient step)", ylabel="return",
           title=f"{label}: in-context RL on {len(report['tasks'])} unseen tasks x {len(report['seeds'])} seeds\nmean ± s.e. over tasks")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def earlier_results(path: Path, report: dict) -> dict:
    """The model results already in ``path`` if measured the same way, else none."""
    if not path.is_file():
        return {}
    earlier = json.loads(path.read_text())
    same = all(earlier.get(key) == report[key] for key in ("env", "tasks", "episodes", "seeds", "greedy"))
    return earlier["results"] if same else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", choices=sorted(ENVS), default="reachergoal")
    parser.add_argument("--models", nargs="*", help="name=model_dir pairs (default: runs/ad/<env>/<backbone>/model for every backbone)")
    parser.add_argument("--tasks", type=int, default=10, help="the first N hold-out tasks (default 10)")
    parser.add_argument("--episodes", type=int, default=60, help="consecutive episodes per task, memory kept")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="env (and agent) seeds")
    parser.add_argument("--source-data", type=Path, help="the source algorithm's hold-out histories (default data/ad/<env>-holdout; "
                        "data/ad/<env>: its training histories instead)")
    parser.add_argument("--algorithm", help="the source algorithm's name, for the plot (default: the one the data was recorded with)")
    parser.add_argument("--greedy", action="store_true", help="the bins' expected value instead of sampled actions")
    parser.add_argument("--output", type=Path, help="default: runs/ad/<env>/evaluation (evaluation-greedy with --greedy)")
    args = parser.parse_args()
    env_id = ENVS[args.env][0]
    output = args.output or Path(f"runs/ad/{args.env}/evaluation" + ("-greedy" if args.greedy else ""))
    models = args.models or [f"{name}=runs/ad/{args.env}/{name}/model" for name in BACKBONES]
    source_data = args.source_data or Path(f"data/ad/{args.env}-holdout")
    keep_every = common_keep_every(source_data, Path(f"data/ad/{args.env}"))
    algorithm = args.algorithm or recorded_setting(Path(f"data/ad/{args.env}"), "algorithm") or recorded_setting(source_data, "algorithm")
    torch.set_num_threads(1)
    tasks = list(task_family(env_id).holdout_tasks()[: args.tasks])
    report = {"env": args.env, "env_id": env_id, "tasks": [list(np.atleast_1d(t).tolist()) for t in tasks], "episodes": args.episodes,
              "seeds": args.seeds, "keep_every": keep_every, "algorithm": algorithm or "source",
              "greedy": args.greedy}
    results = {}
    for pair in models:
        name, _, model_dir = pair.partition("=")
        if not Path(model_dir).is_dir():
            print(f"skipping {name}: {model_dir} does not exist (train it first)")
            continue
        print(f"{name}: {model_dir}")
        results[name] = evaluate_over_seeds(model_dir, env_id, tasks, args.episodes, args.seeds, args.greedy)
    report["baselines"] = {policy: [baseline_returns(env_id, tasks, args.episodes, seed, policy) for seed in args.seeds]
                           for policy in ("zero", "random")}
    report["source"] = source_curves(source_data, args.episodes)
    # without hold-out histories, --source-data may name the training data: the same algorithm's curve on other tasks
    report["source_split"] = "training" if source_data.resolve() == Path(f"data/ad/{args.env}").resolve() else "hold-out"
    # read the earlier results only now, just before writing: evaluations of other models may run at the same time
    merged = {**earlier_results(output / "evaluation.json", report), **results}
    if not merged:
        raise SystemExit("no model to evaluate")
    order = [*BACKBONES, *sorted(set(merged) - set(BACKBONES))]
    report["results"] = {name: merged[name] for name in order if name in merged}
    output.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output / "evaluation.json", json.dumps(report, indent=1) + "\n")
    plot(report, output / "return_vs_episode.png")
    print("\n".join(summary_rows(report)))
    print(source_row(report) or "no source histories on hold-out tasks (record them with --split holdout)")
    print(f"written to {output}")


if __name__ == "__main__":
    main()
