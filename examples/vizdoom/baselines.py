"""Reference points on ViZDoom-Two-Colors: random policy, scripted memory policy, forgetful policy.

    python examples/vizdoom/baselines.py [--episodes 50] [--acid-damage 8] [--acid-interval 32]
                                                    [--policies random,right,wrong,seen]

Episode ``i`` of every policy is played on ``reset(seed=i)`` (same pillar colour, same item
layout), up to the registered time limit of 4200 agent steps. Policies:

- ``random``: uniform actions (seeded with ``i``);
- ``right``: :class:`ScriptedMemoryPolicy` told the pillar's colour;
- ``seen``: the same policy reading the colour from the first frame;
- ``wrong``: the same policy told the other colour.

Prints mean +- standard error of the return and of the lifetime in agent steps (one step is
2 tics), the mean numbers of items picked up of the pillar's colour (good) and of the other
(bad), the mean game time in tics at the end, and how many episodes reached the time limit (t/o).
"""

import argparse
import time

import gymnasium as gym
import numpy as np

import lram_agents  # noqa: F401  (registers the environments)
from lram_agents.envs.vizdoom_two_colors import ENV_ID, RandomPolicy, ScriptedMemoryPolicy, other_color


def run_episode(env, policy, seed: int, color_of) -> dict:
    """Play one episode; ``color_of(info)`` is the colour told to the policy (None: it looks)."""
    obs, info = env.reset(seed=seed)
    if isinstance(policy, ScriptedMemoryPolicy):
        policy.reset(obs, info, color=color_of(info))
    else:
        policy.reset(obs, info)
    total, steps = 0.0, 0
    while True:
        obs, reward, terminated, truncated, info = env.step(policy.act(obs, info))
        total, steps = total + reward, steps + 1
        if terminated or truncated:
            return {"return": total, "steps": steps, "tics": info["tics"], "good": info["good_items"],
                    "bad": info["bad_items"], "color": info["pillar_color"], "timeout": truncated and not terminated}


def summarise(name: str, rows: list[dict]) -> str:
    def mean_se(key):
        values = np.array([row[key] for row in rows], np.float64)
        se = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
        return f"{values.mean():10.2f} ± {se:7.2f}"

    good = np.mean([row["good"] for row in rows])
    bad = np.mean([row["bad"] for row in rows])
    timeouts = sum(row["timeout"] for row in rows)
    label = {"random": "random", "right": "scripted, right colour", "seen": "scripted, colour seen",
             "wrong": "scripted, wrong colour"}[name]
    tics = np.mean([row["tics"] for row in rows])
    return (f"| {label:<24} | {mean_se('return')} | {mean_se('steps')} | {tics:7.0f} | {good:6.1f} | {bad:6.1f} "
            f"| {timeouts:4d} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--acid-damage", type=int, default=8)
    parser.add_argument("--acid-interval", type=int, default=32)
    parser.add_argument("--policies", default="random,right,wrong")
    args = parser.parse_args()

    env = gym.make(ENV_ID, acid_damage=args.acid_damage, acid_interval=args.acid_interval)
    policies = {
        "random": (lambda seed: RandomPolicy(seed=seed), None),
        "right": (lambda seed: ScriptedMemoryPolicy(env), lambda info: info["pillar_color"]),
        "seen": (lambda seed: ScriptedMemoryPolicy(env), lambda info: None),
        "wrong": (lambda seed: ScriptedMemoryPolicy(env), lambda info: other_color(info["pillar_color"])),
    }
    names = args.policies.split(",")
    unknown = sorted(set(names) - set(policies))
    if unknown:
        parser.error(f"unknown policies {unknown}; choose from {sorted(policies)}")
    print(f"{ENV_ID}, acid {args.acid_damage} HP / {args.acid_interval} tics, {args.episodes} episodes (seeds 0..{args.episodes - 1})")
    lines = []
    try:
        for name in names:
            make_policy, color_of = policies[name]
            start = time.perf_counter()
            rows = [run_episode(env, make_policy(seed), seed, color_of) for seed in range(args.episodes)]
            lines.append(summarise(name, rows))
            print(f"  {name}: {time.perf_counter() - start:.0f} s", flush=True)
    finally:
        env.close()
    print("| policy                   | return (mean ± s.e.) | steps (mean ± s.e.)  |   tics  |  good  |  bad   | t/o  |")
    print("| ------------------------ | -------------------- | -------------------- | ------- | ------ | ------ | ---- |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
