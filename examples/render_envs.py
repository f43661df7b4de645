"""Write one PNG per environment to ``examples/images/`` (for the README).

Grid worlds: the environment's own ``rgb_array`` frame with the expert's (blue) and a random
agent's (grey) trajectories drawn over it. MuJoCo tasks: a frame after 25 random steps, titled with
the hidden task (which the agent never observes).

    python examples/render_envs.py          # a few seconds; MuJoCo frames need MUJOCO_GL=egl headless
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import lram_agents  # noqa: E402,F401  (registers the environments)
from lram_agents.envs.darkroom import DarkKeyDoorExpert, DarkRoomExpert  # noqa: E402
from lram_agents.envs.tmaze import TMazeOracle  # noqa: E402

IMAGES = Path(__file__).parent / "images"
DPI = 80


def trajectory(env, policy, seed: int, options: dict) -> list[tuple[float, float]]:
    """Agent positions of one episode, as (x, y) grid coordinates."""
    observation, _ = env.reset(seed=seed, options=options)
    positions = [env.unwrapped.position]
    while True:
        observation, _, terminated, truncated, _ = env.step(policy(observation))
        positions.append(env.unwrapped.position)
        if terminated or truncated:
            return positions


def save(fig, name: str) -> None:
    fig.savefig(IMAGES / name, dpi=DPI, bbox_inches="tight", pad_inches=0.05)
    plt.close(fig)
    print("wrote", IMAGES / name)


def tmaze() -> None:
    length = 20
    env = gym.make("lram_agents/TMaze-v0", corridor_length=length, render_mode="rgb_array")
    rng = np.random.default_rng(3)
    oracle = TMazeOracle(length)
    paths = {
        "oracle": trajectory(env, oracle.act, 0, {"task": 1}),
        "random": trajectory(env, lambda _: int(rng.integers(4)), 0, {"task": 1}),
    }
    env.reset(seed=0, options={"task": 1})
    frame = env.render()
    cell = frame.shape[0] / 3
    fig, ax = plt.subplots(figsize=(7, 1.6))
    ax.imshow(frame)
    for (name, path), color, dy in zip(paths.items(), ("tab:blue", "0.35"), (-0.12, 0.12)):
        xs = [(x + 0.5) * cell for x, _ in path]
        ys = [(1 - y + 0.5 + dy) * cell for _, y in path]
        ax.plot(xs, ys, "-", color=color, lw=2, label=f"{name} ({len(path) - 1} steps)")
    ax.set_title(
        f"T-Maze, L = {length}, T = L + 2: hint +1 (up) seen only at t = 0; green = hinted goal",
        fontsize=9,
    )
    ax.legend(loc="lower left", fontsize=7, bbox_to_anchor=(0, -0.62), ncol=2)
    ax.axis("off")
    save(fig, "tmaze.png")


def grid(env_id: str, task, expert, title: str, name: str) -> None:
    env = gym.make(env_id, render_mode="rgb_array")
    rng = np.random.default_rng(0)
    expert_path = trajectory(env, expert.act, 0, {"task": task})
    random_path = trajectory(env, lambda _: int(rng.integers(5)), 0, {"task": task})
    env.reset(seed=0, options={"task": task})
    frame = env.render()
    cell = frame.shape[0] / env.unwrapped.size
    fig, ax = plt.subplots(figsize=(3.6, 3.8))
    ax.imshow(frame)
    for path, color, label, offset in (
        (random_path, "0.35", "random", 0.12),
        (expert_path, "tab:blue", "expert", -0.12),
    ):
        xs = [(x + 0.5 + offset) * cell for x, _ in path]
        ys = [(y + 0.5 + offset) * cell for _, y in path]
        ax.plot(xs, ys, "-", color=color, lw=1.6, alpha=0.85, label=label)
    ax.set_title(title, fontsize=9)
    ax.legend(loc="upper right", fontsize=7)
    ax.axis("off")
    save(fig, name)


def mujoco(env_id: str, task, title: str, name: str, **make_kwargs) -> None:
    env = gym.make(env_id, render_mode="rgb_array", width=320, height=240, **make_kwargs)
    env.reset(seed=0, options={"task": task})
    env.action_space.seed(0)
    for _ in range(25):
        env.step(env.action_space.sample())
    frame = env.render()
    env.close()
    fig, ax = plt.subplots(figsize=(4, 3.2))
    ax.imshow(frame)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    save(fig, name)


def main() -> None:
    IMAGES.mkdir(exist_ok=True)
    tmaze()
    grid(
        "lram_agents/DarkRoom-v0",
        (6, 7),
        DarkRoomExpert((6, 7)),
        "Dark-Room: invisible goal (green), start top-left",
        "darkroom.png",
    )
    grid(
        "lram_agents/DarkKeyDoor-v0",
        (7, 2, 2, 8),
        DarkKeyDoorExpert((7, 2, 2, 8)),
        "Dark Key-Door: key (yellow), then door (brown)",
        "darkkeydoor.png",
    )
    mujoco(
        "lram_agents/ReacherGoal-v0", (0.1, 0.12), "Reacher-Goal: hidden target (red dot)", "reachergoal.png"
    )
    mujoco(
        "lram_agents/PusherGoal-v0",
        (0.3, -0.25, 0.55, 0.1),
        "Pusher-Goal: push the cylinder (white) to the hidden goal (red)",
        "pushergoal.png",
        # Pusher-v5's camera is far away: look at the table from the arm's side instead.
        default_camera_config={
            "trackbodyid": -1,
            "distance": 1.8,
            "elevation": -60.0,
            "azimuth": -90.0,
            "lookat": np.array([0.45, -0.3, -0.3]),
        },
    )
    mujoco(
        "lram_agents/HalfCheetahVel-v0",
        1.5,
        "HalfCheetah-Vel: hidden target velocity v* = 1.5 m/s",
        "halfcheetahvel.png",
    )
    mujoco("lram_agents/AntDir-v0", 2.0, "Ant-Dir: hidden direction theta = 2.0 rad", "antdir.png")


if __name__ == "__main__":
    main()
