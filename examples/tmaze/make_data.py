"""The T-Maze oracle dataset of the RATE paper (section 4.1): one episode per corridor length L drawn
uniformly in [1, K·N - 2], played by :class:`~lram_agents.envs.tmaze.TMazeOracle` and recorded with
:class:`~lram_agents.data.recorder.RecordEpisodes` (one HDF5 file per ``--episodes-per-file`` episodes).

    python examples/tmaze/make_data.py                       # data/tmaze: 6000 episodes, L in [1, 88]
    python examples/tmaze/make_data.py --max-segments 9 --out data/tmaze-9

An episode of corridor length L has L + 1 steps (L x right, one turn into the hinted goal), so it fits
in ceil((L + 1) / K) segments of K steps; the curriculum's data set q_n is the episodes of n segments.
Every episode is a success (return 1), the target return of the agents trained on it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
from tqdm.auto import tqdm

from common import ENV_ID
from lram_agents.data import TrajectoryWriter
from lram_agents.data.recorder import RecordEpisodes
from lram_agents.envs.tmaze import TMazeOracle

DOMAIN = "tmaze"


def corridor_lengths(episodes: int, segment_steps: int, max_segments: int, seed: int) -> np.ndarray:
    """L uniform in [1, K·N - 2] (envs.md), so the longest episode (L + 2 = K·N steps) fills N segments."""
    if episodes < 1 or segment_steps < 3 or max_segments < 1:
        raise ValueError(f"need episodes >= 1, segment_steps >= 3, max_segments >= 1; got {episodes}, {segment_steps}, {max_segments}")
    return np.random.default_rng(seed).integers(1, segment_steps * max_segments - 2, size=episodes, endpoint=True)


def play_oracle(env: gym.Env, corridor_length: int, seed: int) -> float:
    """One oracle episode in ``env`` (recorded by its wrapper); returns the episode's return."""
    oracle = TMazeOracle(corridor_length)
    observation, _ = env.reset(seed=seed)
    total = 0.0
    while True:
        observation, reward, terminated, truncated, _ = env.step(oracle.act(observation))
        total += float(reward)
        if terminated or truncated:
            return total


def make_dataset(out: Path, episodes: int, segment_steps: int, max_segments: int, seed: int, episodes_per_file: int) -> None:
    if any(out.glob("*.h5")):
        raise FileExistsError(f"{out} already holds trajectory files: delete it or choose another --out")
    lengths = corridor_lengths(episodes, segment_steps, max_segments, seed)
    space_env = gym.make(ENV_ID, corridor_length=1)
    metadata = {"policy": "TMazeOracle", "segment_steps": segment_steps, "max_segments": max_segments, "seed": seed}
    writer = TrajectoryWriter(out, space_env.observation_space, space_env.action_space, domain=DOMAIN, env_id=ENV_ID,
                              episodes_per_file=episodes_per_file, metadata=metadata)
    returns = []
    with writer:
        for i, length in enumerate(tqdm(lengths, desc="oracle episodes", unit="episode")):
            env = RecordEpisodes(gym.make(ENV_ID, corridor_length=int(length)), writer)
            returns.append(play_oracle(env, int(length), seed=seed * 1_000_003 + i))
    (out / "dataset.json").write_text(json.dumps({**metadata, "episodes": episodes, "env_id": ENV_ID,
                                                  "success_rate": float(np.mean(returns))}, indent=2) + "\n")
    print(f"{episodes} episodes (L in [{lengths.min()}, {lengths.max()}], success rate {np.mean(returns):.3f}) in {out}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("data/tmaze"))
    parser.add_argument("--episodes", type=int, default=6000)
    parser.add_argument("--segment-steps", type=int, default=30, help="K (RATE: 30)")
    parser.add_argument("--max-segments", type=int, default=3, help="N (RATE's training maximum: 3)")
    parser.add_argument("--episodes-per-file", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    make_dataset(args.out, args.episodes, args.segment_steps, args.max_segments, args.seed, args.episodes_per_file)


if __name__ == "__main__":
    main()
