"""Fine-tune the zoo T-Maze agent on a T-Maze variant it never saw, against training from scratch.

The zoo agent learned T-Maze with the flag shown at the junction (``flag_mode="junction"``, the
authors' code). The held-out variant shows it one cell earlier (``"before_junction"``, the paper's
wording): an agent that turns when it sees the flag now walks into the corridor wall. The variant's
data are episodes of a noisy oracle (each episode takes a uniformly random action with probability
epsilon, epsilon ~ U[0, --max-epsilon] per episode), corridor lengths L uniform in [1, K*N - 2] as
the zoo's training data; most noisy episodes fail. Then:

1. evaluate the zoo agent on the variant (success rate at L = K*n - 2 for n in --segments);
2. fine-tune it on the top --top-fraction of the episodes by return (LRAM appendix C.3: 5%) with
   :func:`lram_agents.finetune.finetune`, for each method of --methods (full, lora);
3. train the same architecture from random weights on the same episodes with the same budget;
4. evaluate all of them, also on the original task (forgetting), and every run's checkpoints along
   the way; plot success per corridor length and success vs optimizer steps (PNG), write the
   numbers (JSON).

    python examples/finetune_tmaze.py                                  # the zoo's xlstm-tmaze
    python examples/finetune_tmaze.py --model runs/tmaze/model --steps 300 --out runs/finetune_tmaze
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from tqdm.auto import tqdm

import lram_agents
from lram_agents.agent import Agent
from lram_agents.data import TrajectoryDataset, TrajectoryWriter
from lram_agents.data.recorder import RecordEpisodes
from lram_agents.envs.tmaze import TMazeOracle
from lram_agents.finetune import FinetuneConfig, finetune
from lram_agents.model import LRAMModel
from lram_agents.training import TrainerConfig
from lram_agents.training.checkpoint import list_checkpoints

ENV_ID = "lram_agents/TMaze-v0"
VARIANT = {"flag_mode": "before_junction"}


class NoisyOracle:
    """T-Maze's oracle, replaced by a uniformly random action with probability ``epsilon`` at every step."""

    def __init__(self, corridor_length: int, epsilon: float, rng: np.random.Generator):
        self.oracle, self.epsilon, self.rng = TMazeOracle(corridor_length), epsilon, rng

    def act(self, observation) -> int:
        action = self.oracle.act(observation)
        return int(self.rng.integers(4)) if self.rng.random() < self.epsilon else action


def record_variant(out: Path, episodes: int, max_length: int, max_epsilon: float, seed: int) -> TrajectoryDataset:
    """The variant's episodes (reused when ``out`` already holds them)."""
    if not any(out.glob("*.h5")):
        rng = np.random.default_rng(seed)
        spaces = gym.make(ENV_ID, corridor_length=1, **VARIANT)
        writer = TrajectoryWriter(out, spaces.observation_space, spaces.action_space, domain="tmaze", env_id=ENV_ID, episodes_per_file=500,
                                  metadata={"policy": "noisy TMazeOracle", "max_epsilon": max_epsilon, **VARIANT})
        with writer:
            for i in tqdm(range(episodes), desc="variant data", unit="episode"):
                length = int(rng.integers(1, max_length, endpoint=True))
                env = RecordEpisodes(gym.make(ENV_ID, corridor_length=length, **VARIANT), writer)
                play(env, NoisyOracle(length, rng.uniform(0, max_epsilon), rng), seed=seed * 1_000_003 + i)
    return TrajectoryDataset(out)


def play(env: gym.Env, policy: NoisyOracle, seed: int) -> None:
    observation, _ = env.reset(seed=seed)
    while True:
        observation, _, terminated, truncated, _ = env.step(policy.act(observation))
        if terminated or truncated:
            return


def success_rates(agent: Agent, lengths: list[int], episodes: int, variant: bool) -> list[float]:
    """Success rate at each corridor length over ``episodes`` seeded episodes (10 envs in parallel)."""
    rates = []
    for length in lengths:
        kwargs = {"corridor_length": length, **(VARIANT if variant else {})}
        env = gym.vector.SyncVectorEnv([lambda: gym.make(ENV_ID, **kwargs) for _ in range(10)])
        rates.append(lram_agents.evaluate(agent, env, episodes, seed=length, progress=False).mean_return)
    return rates


def train(name: str, agent: Agent, data: TrajectoryDataset, args, method: str) -> tuple[Agent, float]:
    config = FinetuneConfig(method=method, top_fraction=args.top_fraction, train_also=["head"] if method == "lora" else [])
    trainer = TrainerConfig(batch_size=args.batch_size, context=args.context, windows="from_start", learning_rate=args.learning_rate,
                            warmup_steps=max(1, args.steps // 10), min_learning_rate=args.learning_rate / 10, log_every=10,
                            checkpoint_every=max(1, args.steps // args.curve_points), keep_checkpoints=args.curve_points + 1,
                            seed=args.seed)
    begin = time.perf_counter()
    result = finetune(agent, data, args.steps, config, trainer, args.out / name, resume=(args.out / name / "checkpoints").is_dir(),
                      device="cpu")
    print(f"{name}: {result.episodes_used} of {result.episodes_total} episodes, {result.trainable_parameters} trainable weights, "
          f"final loss {result.train.loss:.4f}")
    return result.agent, time.perf_counter() - begin


def learning_curve(run: Path, start: Agent, lengths: list[int], episodes: int) -> list[tuple[int, float]]:
    """(optimizer step, mean success on the variant) of the run's start and of every checkpoint."""
    curve = [(0, float(np.mean(success_rates(start, lengths, episodes, variant=True))))]
    for path in list_checkpoints(run / "checkpoints"):
        agent = Agent(LRAMModel.from_pretrained(path), start.preprocessing)
        curve.append((int(path.name.split("-")[1]), float(np.mean(success_rates(agent, lengths, episodes, variant=True)))))
    return curve


def plot(results: dict, lengths: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (bars, curves) = plt.subplots(1, 2, figsize=(12, 4.4))
    width = 0.8 / len(results)
    for k, (name, row) in enumerate(results.items()):
        x = np.arange(len(lengths)) + (k - (len(results) - 1) / 2) * width
        drawn = bars.bar(x, row["variant"], width, label=f"{name} (mean {np.mean(row['variant']):.2f})", color=row["color"])
        bars.bar_label(drawn, fmt="%.2f", fontsize=7)
        if row.get("curve"):
            curves.plot(*zip(*row["curve"]), marker="o", label=name, color=row["color"])
    bars.set(xticks=np.arange(len(lengths)), xticklabels=[f"L = {n}" for n in lengths], ylabel="success rate", ylim=(0, 1.05),
             title="held-out variant: flag one cell before the junction")
    bars.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, fontsize=9)
    curves.set(xlabel="optimizer steps", ylabel="mean success rate on the variant", ylim=(-0.03, 1.03),
               title="during training (same data, same budget)")
    curves.legend(fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="xlstm-tmaze", help="zoo name or directory of the pretrained agent")
    parser.add_argument("--out", type=Path, default=Path("runs/finetune_tmaze"))
    parser.add_argument("--episodes", type=int, default=4000, help="episodes of the variant recorded")
    parser.add_argument("--max-epsilon", type=float, default=0.5)
    parser.add_argument("--top-fraction", type=float, default=0.05)
    parser.add_argument("--segment-steps", type=int, default=30, help="K")
    parser.add_argument("--train-segments", type=int, default=3, help="N: data corridors L in [1, K*N - 2]")
    parser.add_argument("--segments", type=int, nargs="+", default=[1, 2, 3], help="evaluate at L = K*n - 2")
    parser.add_argument("--eval-episodes", type=int, default=100)
    parser.add_argument("--curve-points", type=int, default=5, help="checkpoints evaluated along each run")
    parser.add_argument("--curve-episodes", type=int, default=30, help="episodes per length for the checkpoints")
    parser.add_argument("--methods", nargs="+", default=["full", "lora"], choices=["full", "lora"])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--plot", type=Path, help="PNG path (default: OUT/finetune_tmaze.png)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    max_length = args.segment_steps * args.train_segments - 2
    args.context = max_length + 2  # whole episodes: L steps right, the turn, and the time limit's spare step
    lengths = [args.segment_steps * n - 2 for n in args.segments]
    data = record_variant(args.out / "data", args.episodes, max_length, args.max_epsilon, args.seed)
    print(f"variant data: {data.num_episodes} episodes, success rate {np.mean(data.table.total_return):.3f}")

    pretrained = lram_agents.load(args.model, device="cpu")
    torch.manual_seed(args.seed)
    scratch = Agent(LRAMModel(pretrained.model.config), pretrained.saved_preprocessing())
    colors = iter(["tab:blue", "tab:orange"])
    runs = {"zoo model, not fine-tuned": (pretrained, None, 0.0, "grey")}  # name: (agent, run directory, seconds, colour)
    for method in args.methods:
        agent, seconds = train(f"finetune-{method}", pretrained, data, args, method)
        runs[f"fine-tuned ({method})"] = (agent, args.out / f"finetune-{method}", seconds, next(colors))
    agent, seconds = train("scratch", scratch, data, args, "full")
    runs["from scratch, same budget"] = (agent, args.out / "scratch", seconds, "black")

    results = {}
    for name, (agent, run, seconds, color) in runs.items():
        variant = success_rates(agent, lengths, args.eval_episodes, variant=True)
        original = success_rates(agent, lengths, args.eval_episodes, variant=False)
        start = scratch if run == args.out / "scratch" else pretrained
        curve = learning_curve(run, start, lengths, args.curve_episodes) if run is not None else None
        results[name] = {"variant": variant, "original": original, "train_seconds": round(seconds, 1), "curve": curve, "color": color}
        print(f"{name:28s} variant {np.round(variant, 3).tolist()} (mean {np.mean(variant):.3f}); original task "
              f"{np.round(original, 3).tolist()}; along training {curve}")
    path = args.plot or args.out / "finetune_tmaze.png"
    plot(results, lengths, path)
    summary = {"model": args.model, "lengths": lengths, "steps": args.steps, "top_fraction": args.top_fraction,
               "episodes": data.num_episodes, "data_success_rate": float(np.mean(data.table.total_return)),
               "results": {k: {f: v for f, v in r.items() if f != "color"} for k, r in results.items()}}
    (args.out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"plot: {path}; numbers: {args.out / 'results.json'}")


if __name__ == "__main__":
    main()
