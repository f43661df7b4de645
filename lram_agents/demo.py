"""The README's main command: build a model from a preset and act recurrently in a Gymnasium env.

    python -m lram_agents.demo [--backbone xlstm] [--size 16m] [--variant 7:1] [--steps 300]

Prints the parameter count, the episode returns and the per-step latency (median and p95). The
model is untrained (random weights) until the zoo ships one; what this shows is the recurrent
inference loop and its cost per step, which does not grow with the number of steps.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
import torch

import lram_agents  # noqa: F401  (registers the environments)
from lram_agents.action_head import ActionSpec
from lram_agents.model import LRAMModel, Timesteps
from lram_agents.presets import SIZES, preset


def run(env_id: str, model: LRAMModel, steps: int, seed: int = 0, target_return: float = 500.0) -> dict:
    """Act for ``steps`` env steps with the model's recurrent state; time each model step."""
    env = gym.make(env_id)
    spec = ActionSpec.from_space(env.action_space)
    obs, _ = env.reset(seed=seed)
    state, reward, rtg = None, 0.0, target_return
    episode_start, returns, episode_return, latencies = True, [], 0.0, []
    for _ in range(steps):
        inputs = Timesteps(
            states=torch.as_tensor(obs, dtype=torch.float32).view(1, 1, -1),
            returns_to_go=torch.tensor([[rtg]]),
            prev_rewards=torch.tensor([[reward]]),
        )
        begin = time.perf_counter()
        with torch.inference_mode():
            # the mask is only passed when an episode starts: resetting nothing costs time
            out = model(inputs, state, episode_start=torch.tensor([True]) if episode_start else None)
            action = model.head.decode(out.logits[0, -1], spec)
        latencies.append(time.perf_counter() - begin)
        state = out.state
        obs, reward, terminated, truncated, _ = env.step(action.item() if spec.kind == "discrete" else action.numpy())
        episode_return += float(reward)
        rtg -= float(reward)
        episode_start = terminated or truncated
        if episode_start:
            returns.append(episode_return)
            obs, _ = env.reset()
            reward, rtg, episode_return = 0.0, target_return, 0.0
    env.close()
    return {"returns": returns, "latency_ms": 1e3 * np.array(latencies)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="xlstm", choices=["xlstm", "transformer", "mamba"])
    parser.add_argument("--size", default="16m", choices=SIZES)
    parser.add_argument("--variant", default=None, help="xlstm only: 7:1 (default) or 1:0")
    parser.add_argument("--env", default="CartPole-v1")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = preset(args.backbone, args.size, args.variant, image_shape=None)
    model = LRAMModel(config).eval()
    print(f"{args.backbone}-{args.size} ({getattr(config.backbone, 'variant', '')}): "
          f"{model.num_parameters() / 1e6:.1f}M parameters (untrained), env {args.env}")
    result = run(args.env, model, args.steps)
    lat = result["latency_ms"]
    print(f"{args.steps} steps, {len(result['returns'])} finished episodes, returns {result['returns'][:5]}")
    print(f"per-step latency: median {np.median(lat):.2f} ms, p95 {np.percentile(lat, 95):.2f} ms, "
          f"first {lat[0]:.2f} ms, last-50 median {np.median(lat[-50:]):.2f} ms")


if __name__ == "__main__":
    main()
