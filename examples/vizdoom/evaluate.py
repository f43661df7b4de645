"""ViZDoom-Two-Colors evaluation: 100 seeded episodes per model (timeout 4,200 steps) beside RATE's Table 1.

    python examples/vizdoom/evaluate.py                                  # every runs/vizdoom/<model>/model there is
    python examples/vizdoom/evaluate.py --models rate=runs/vizdoom/rate/model --episodes 20

Each model is loaded with :func:`lram_agents.load` and acts with its memory carried through the episode (a DT
slides its window), sampled actions (as the RATE authors evaluate) unless ``--greedy``. Episode ``i`` is played
on ``reset(seed=seed_offset + i)`` (the data used seeds 0-1,023), so every model, the random policy and the scripted
memory policy meet the same pillar colours and item layouts. Per episode: return, lifetime (agent steps),
items picked up of the pillar's colour (good) and of the other (bad), counted by the env.

Writes ``evaluation.json`` (every episode of every model; results of other models measured the same way are kept)
and prints the table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from tqdm.auto import tqdm

import lram_agents
from lram_agents.envs.vizdoom_two_colors import ENV_ID, RandomPolicy, ScriptedMemoryPolicy
from lram_agents.serialization import atomic_write_text

from baselines import run_episode  # beside this script

MODELS = {"rate": "RATE", "xlstm": "xLSTM [1:0]", "mamba": "Mamba", "dt": "DT (90 steps)"}
# RATE, Table 1: reward (mean ± s.e. where given) and lifetime. The paper's "steps" are game tics: its random row
# (391) matches this env's random policy when counted in tics (envs/vizdoom_two_colors/README.md); an agent step is 2
PAPER = {"random": ("4.62", 391), "DT30": ("7.40", 354), "DT90": ("6.08", 423), "RATE": ("16.46 ± 6.90", 745)}
TICS_PER_STEP = 2
PROTOCOL_KEYS = ("episodes", "seed_offset", "max_steps", "greedy")


def episode_record(total: float, steps: int, good: int, bad: int, color: str) -> dict:
    """One episode as evaluation.json keeps it."""
    return {"return": round(float(total), 4), "steps": int(steps), "good": int(good), "bad": int(bad), "color": color}


def play_agent(agent, seeds: list[int], num_envs: int, max_steps: int, greedy: bool) -> list[dict]:
    """Every seed's episode, ``num_envs`` envs stepping together (one batched agent call per step)."""
    envs = [gym.make(ENV_ID, max_episode_steps=max_steps) for _ in range(min(num_envs, len(seeds)))]
    queue, results = list(enumerate(seeds)), [None] * len(seeds)
    slot = [None] * len(envs)  # (episode index, return, steps) per env, None when idle
    obs = np.zeros((len(envs), *envs[0].observation_space.shape), np.uint8)
    rewards, starts = np.zeros(len(envs)), np.ones(len(envs), bool)
    agent.bind(observation_space=envs[0].observation_space, action_space=envs[0].action_space)
    agent.reset()
    try:
        with tqdm(total=len(seeds), desc="episodes", unit="episode") as bar:
            while True:
                for e, env in enumerate(envs):
                    if slot[e] is None and queue:
                        index, seed = queue.pop(0)
                        obs[e], _ = env.reset(seed=seed)
                        slot[e], rewards[e], starts[e] = [index, 0.0, 0], 0.0, True
                active = np.array([s is not None for s in slot])
                if not active.any():
                    return results
                actions = agent.act_batch(obs, rewards, starts, active=active, deterministic=greedy)
                starts[:] = False
                for e in np.flatnonzero(active):
                    obs[e], reward, terminated, truncated, info = envs[e].step(actions[e])
                    rewards[e] = reward
                    slot[e][1] += reward
                    slot[e][2] += 1
                    if terminated or truncated:
                        results[slot[e][0]] = episode_record(slot[e][1], slot[e][2], info["good_items"], info["bad_items"],
                                                             info["pillar_color"])
                        slot[e] = None
                        bar.update(1)
    finally:
        for env in envs:
            env.close()


def play_reference(name: str, seeds: list[int], max_steps: int) -> list[dict]:
    """The random policy or the scripted memory policy (reading the colour from the first frame) on ``seeds``."""
    env = gym.make(ENV_ID, max_episode_steps=max_steps)
    try:
        rows = [run_episode(env, RandomPolicy(seed=seed) if name == "random" else ScriptedMemoryPolicy(env), seed, lambda info: None)
                for seed in tqdm(seeds, desc=name, unit="episode")]
    finally:
        env.close()
    return [episode_record(r["return"], r["steps"], r["good"], r["bad"], r["color"]) for r in rows]


def mean_se(values) -> str:
    values = np.asarray(values, np.float64)
    se = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
    return f"{values.mean():.2f} ± {se:.2f}"


def table_row(label: str, episodes: list[dict], max_steps: int) -> str:
    good, bad = sum(e["good"] for e in episodes), sum(e["bad"] for e in episodes)
    by_color = " / ".join(f"{np.mean([e['return'] for e in episodes if e['color'] == c]):.2f}" if any(e["color"] == c for e in episodes)
                          else "–" for c in ("red", "green"))
    timeouts = sum(e["steps"] >= max_steps for e in episodes)
    return (f"| {label} | {mean_se([e['return'] for e in episodes])} | {mean_se([e['steps'] for e in episodes])} | "
            f"{good / max(good + bad, 1):.2f} ({good} / {bad}) | {by_color} | {timeouts} |")


def table(report: dict) -> str:
    lines = ["| model | reward | steps | share of items of the pillar's colour (good / bad) | reward, red / green pillar | timeouts |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, episodes in report["results"].items():
        lines.append(table_row(MODELS.get(name, name), episodes, report["max_steps"]))
    for name, label in (("scripted", "scripted memory policy"), ("random", "random policy")):
        lines.append(table_row(label, report["references"][name], report["max_steps"]))
    lines += [f"| paper: {name} | {reward} | {tics / TICS_PER_STEP:.0f} ({tics} tics) | | | |" for name, (reward, tics) in PAPER.items()]
    return "\n".join(lines)


def earlier_report(path: Path, protocol: dict) -> dict:
    """What ``path`` holds if it was measured with the same protocol, else nothing."""
    earlier = json.loads(path.read_text()) if path.is_file() else {}
    return earlier if all(earlier.get(key) == protocol[key] for key in PROTOCOL_KEYS) else {}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", help="name=model_dir pairs (default: runs/vizdoom/<name>/model for every model)")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed-offset", type=int, default=100_000, help="episode i is played on seed offset + i")
    parser.add_argument("--envs", type=int, default=10, help="envs stepped together (one batched agent call)")
    parser.add_argument("--max-steps", type=int, default=4200, help="timeout in agent steps (RATE: 4,200)")
    parser.add_argument("--target-return", type=float, help="the return the models are asked for (default: each model's own)")
    parser.add_argument("--greedy", action="store_true", help="the most likely action instead of a sampled one")
    parser.add_argument("--output", type=Path, default=Path("runs/vizdoom/evaluation"))
    args = parser.parse_args(argv)
    if args.episodes < 1 or args.envs < 1 or args.max_steps < 1:
        parser.error(f"--episodes, --envs and --max-steps must be >= 1 (got {args.episodes}, {args.envs}, {args.max_steps})")
    torch.set_num_threads(1)
    seeds = [args.seed_offset + i for i in range(args.episodes)]
    protocol = {"episodes": args.episodes, "seed_offset": args.seed_offset, "max_steps": args.max_steps, "greedy": args.greedy}
    path = args.output / "evaluation.json"
    references = earlier_report(path, protocol).get("references")
    if references is None:
        references = {name: play_reference(name, seeds, args.max_steps) for name in ("scripted", "random")}
    results = {}
    for pair in args.models or [f"{name}=runs/vizdoom/{name}/model" for name in MODELS]:
        name, _, model_dir = pair.partition("=")
        if not Path(model_dir).is_dir():
            print(f"skipping {name}: {model_dir} does not exist (train it first)")
            continue
        agent = lram_agents.load(model_dir, seed=0, target_return=args.target_return, keep_memory=False)  # episodes are independent
        results[name] = play_agent(agent, seeds, args.envs, args.max_steps, args.greedy)
        print(table_row(MODELS.get(name, name), results[name], args.max_steps))
    # read the earlier results again just before writing: evaluations of other models may run at the same time
    merged = {**earlier_report(path, protocol).get("results", {}), **results}
    report = {**protocol, "env_id": ENV_ID, "results": merged, "references": references}
    args.output.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(report) + "\n")
    print(table(report))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
