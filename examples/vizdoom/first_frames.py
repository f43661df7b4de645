"""Save the first observation of ViZDoom-Two-Colors for each pillar colour as a PNG.

    python examples/vizdoom/first_frames.py [--seed 0] [--scale 3] [--out examples/images]

Writes ``vizdoom_two_colors_red.png`` and ``vizdoom_two_colors_green.png``: the 3x64x112
observation the agent gets at ``reset``, enlarged ``--scale`` times (nearest neighbour).
"""

import argparse
from pathlib import Path

import gymnasium as gym
import numpy as np

import lram_agents  # noqa: F401  (registers the environments)
from lram_agents.envs.vizdoom_two_colors import COLORS, ENV_ID
from lram_agents.envs.vizdoom_two_colors.png import encode_png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "images")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    env = gym.make(ENV_ID)
    try:
        for color in COLORS:
            obs, info = env.reset(seed=args.seed, options={"task": color})
            image = obs.transpose(1, 2, 0).repeat(args.scale, axis=0).repeat(args.scale, axis=1)
            path = args.out / f"vizdoom_two_colors_{color}.png"
            path.write_bytes(encode_png(np.ascontiguousarray(image)))
            print(f"{path}  pillar={info['pillar_color']}  shape={obs.shape}")
    finally:
        env.close()


if __name__ == "__main__":
    main()
