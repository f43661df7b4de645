"""Offline data for ViZDoom-Two-Colors: the scripted memory policy at several skill levels, RGB frames kept.

    python examples/vizdoom/make_data.py --shard 0/2 &        # one process per core
    python examples/vizdoom/make_data.py --shard 1/2
    python examples/vizdoom/make_data.py --summary            # returns, lifetimes and items per skill level

The RATE authors recorded 1,024 episodes of a trained A2C agent (mean lifetime 1,968 tics, mean return 51.16).
A trained agent plays at one skill level, with mistakes; here :class:`ScriptedMemoryPolicy` (it reads the pillar's
colour from the first frame, then walks to items of that colour) plays with epsilon-random actions, the level
cycling over ``--epsilons`` with the episode index, so the data mixes good and poor play as a learner's would.

Episode ``i`` is played on ``reset(seed=seed + i)`` with the policy's noise seeded by ``seed + i`` and written to
``<output>/episode-<i>.h5`` (one file per episode, observations ``(3, 64, 112)`` uint8, gzip). Episodes longer
than ``--max-steps`` are cut there (marked truncated). A rerun skips episodes already on disk and refuses a
folder recorded with other settings (``recording.json``).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import gymnasium as gym
import h5py
import numpy as np
from tqdm.auto import tqdm

import lram_agents  # noqa: F401  (registers the environments)
from lram_agents.data.format import Episode, write_episodes
from lram_agents.data.jobs import check_same_settings, parse_shard
from lram_agents.envs.vizdoom_two_colors import ENV_ID, ScriptedMemoryPolicy
from lram_agents.serialization import atomic_write_text

DOMAIN = "vizdoom_two_colors"
SETTINGS_FILE = "recording.json"


@dataclass
class RecordingSettings:
    """What decides the data (the output folder and the number of episodes do not: a rerun may add more)."""

    seed: int = 0
    epsilons: list[float] = field(default_factory=lambda: [0.0, 0.1, 0.2, 0.3])
    max_steps: int = 1000
    env_kwargs: dict = field(default_factory=dict)

    def __post_init__(self):
        if not self.epsilons or not all(0.0 <= e <= 1.0 for e in self.epsilons):
            raise SystemExit(f"--epsilons must be probabilities in [0, 1], got {self.epsilons}")
        if self.max_steps < 1:
            raise SystemExit(f"--max-steps must be >= 1, got {self.max_steps}")


def play_episode(env: gym.Env, policy: ScriptedMemoryPolicy, epsilon: float, seed: int, max_steps: int) -> tuple[Episode, dict]:
    """One episode of the scripted policy with probability ``epsilon`` of a uniformly random action per step."""
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    policy.reset(obs, info)
    observations, actions, rewards, terminations, truncations = [obs], [], [], [], []
    for step in range(max_steps):
        action = policy.act(obs, info)
        if rng.random() < epsilon:
            action = int(rng.integers(env.action_space.n))
        obs, reward, terminated, truncated, info = env.step(action)
        truncated = truncated or (step == max_steps - 1 and not terminated)
        observations.append(obs)
        actions.append(action)
        rewards.append(reward)
        terminations.append(terminated)
        truncations.append(truncated)
        if terminated or truncated:
            break
    episode = Episode(np.stack(observations), np.array(actions, np.int64), rewards, terminations, truncations, task=info["pillar_color"])
    stats = {"return": episode.total_return, "steps": len(episode), "died": bool(terminations[-1]), "good_items": int(info["good_items"]),
             "bad_items": int(info["bad_items"]), "pillar_color": info["pillar_color"], "epsilon": epsilon, "seed": seed}
    return episode, stats


def episode_path(output: Path, index: int) -> Path:
    return output / f"episode-{index:05d}.h5"


def record(output: Path, settings: RecordingSettings, indices: list[int]) -> None:
    """Record the episodes ``indices`` that are not on disk yet."""
    todo = [i for i in indices if not episode_path(output, i).exists()]
    if not todo:
        print(f"all {len(indices)} episodes of this shard are in {output}")
        return
    env = gym.make(ENV_ID, **settings.env_kwargs)
    policy = ScriptedMemoryPolicy(env)
    steps, start = 0, time.process_time()
    try:
        for i in tqdm(todo, desc="episodes", unit="episode"):
            epsilon = settings.epsilons[i % len(settings.epsilons)]
            cpu, wall = time.process_time(), time.perf_counter()
            episode, stats = play_episode(env, policy, epsilon, settings.seed + i, settings.max_steps)
            timing = {"cpu_seconds": time.process_time() - cpu, "seconds": time.perf_counter() - wall}  # the card's data cost
            write_episodes(episode_path(output, i), [episode], env.observation_space, env.action_space, DOMAIN, ENV_ID,
                           metadata={**asdict(settings), **stats, **timing})
            steps += len(episode)
    finally:
        env.close()
    seconds = time.process_time() - start
    print(f"{len(todo)} episodes, {steps} steps in {seconds:.0f} CPU s ({1000 * seconds / max(steps, 1):.2f} ms per step)")


def summary(output: Path) -> str:
    """A table of the recorded episodes per skill level: return, lifetime, items, the data's size."""
    rows = []
    for path in sorted(output.glob("episode-*.h5")):
        with h5py.File(path, "r") as f:
            rows.append(json.loads(f.attrs["metadata"]))
    if not rows:
        raise SystemExit(f"no episodes in {output}")
    size = sum(p.stat().st_size for p in output.glob("episode-*.h5"))
    cpu_hours = sum(r.get("cpu_seconds", 0.0) for r in rows) / 3600
    wall_hours = sum(r.get("seconds", 0.0) for r in rows) / 3600  # shards run side by side: divide by their number
    lines = [f"{len(rows)} episodes, {sum(r['steps'] for r in rows)} steps, {size / 2**30:.2f} GiB in {output}, "
             f"recorded in {cpu_hours:.2f} CPU hours, {wall_hours:.2f} wall hours summed over the episodes "
             f"({60 * wall_hours / 2:.0f} min with two shards side by side)", "",
             "| epsilon | episodes | return | steps | died | good items | bad items |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for epsilon in sorted({r["epsilon"] for r in rows}):
        group = [r for r in rows if r["epsilon"] == epsilon]
        mean = {key: float(np.mean([r[key] for r in group])) for key in ("return", "steps", "died", "good_items", "bad_items")}
        lines.append(f"| {epsilon:g} | {len(group)} | {mean['return']:.1f} | {mean['steps']:.0f} | {mean['died']:.2f} | "
                     f"{mean['good_items']:.1f} | {mean['bad_items']:.1f} |")
    everything = {key: float(np.mean([r[key] for r in rows])) for key in ("return", "steps")}
    lines.append(f"all: mean return {everything['return']:.2f}, mean lifetime {everything['steps']:.0f} steps "
                 f"({2 * everything['steps']:.0f} tics; RATE's data: 51.16, 1,968 tics)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, default=Path("data/vizdoom"))
    parser.add_argument("--episodes", type=int, default=1024, help="episodes in all (RATE: 1,024)")
    parser.add_argument("--shard", default="0/1", help="I/N: record episodes I, I+N, ... (one process per core)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epsilons", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3],
                        help="probabilities of a random action, cycled over the episodes")
    parser.add_argument("--max-steps", type=int, default=1000, help="cut longer episodes here (agent steps)")
    parser.add_argument("--summary", action="store_true", help="print the table of what is recorded and exit")
    args = parser.parse_args(argv)
    if args.summary:
        print(summary(args.output))
        return
    if args.episodes < 1:
        raise SystemExit(f"--episodes must be >= 1, got {args.episodes}")
    shard, num_shards = parse_shard(args.shard)
    settings = RecordingSettings(args.seed, list(args.epsilons), args.max_steps)
    args.output.mkdir(parents=True, exist_ok=True)
    settings_file = args.output / SETTINGS_FILE
    if settings_file.exists():
        check_same_settings(settings_file, asdict(settings))
    else:
        atomic_write_text(settings_file, json.dumps(asdict(settings), indent=1) + "\n")
    record(args.output, settings, list(range(shard, args.episodes, num_shards)))


if __name__ == "__main__":
    main()
