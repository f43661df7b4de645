"""The README's main command: the zoo's T-Maze agent holding one bit across long corridors.

    python -m lram_agents.demo                                  # xlstm-tmaze on T-Maze, 1/3/9 segments
    python -m lram_agents.demo --segments 1 3 9 100 --seeds 20  # other lengths, more seeds
    python -m lram_agents.demo --backbone xlstm --size 16m [--variant 7:1] --env CartPole-v1 [--episodes 10]
    python -m lram_agents.demo --model path/to/saved/agent --env CartPole-v1
    python -m lram_agents.demo --generalist [--tasks lram_agents/MetaWorld-reach-v0 ...] [--episodes 3]

Without ``--env`` (or with a T-Maze env id) the demo loads a trained T-Maze agent (default
``xlstm-tmaze``, or a ``--model`` trained in T-Maze's spaces) and plays ``--seeds`` episodes at each length of n segments of 30
steps (corridor length L = 30n - 2; the agent was trained on at most 3 segments), printing the
success rate and the per-step latency (median, p95: one env, one action per call). With ``--env``
it plays a zoo size preset (untrained, random weights) or ``--model`` in any Gymnasium env and
prints the returns and latency, which does not grow with the steps taken (with ``--keep-memory`` the
memory also survives episode ends, as for in-context agents). With ``--generalist`` the zoo's
multi-domain generalist plays a few tasks of Meta-World, DMControl and Atari, one model for all.
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
import torch

import lram_agents
from lram_agents.model_card import parameter_count
from lram_agents.presets import SIZES

_ZOO_PREFIX = {"xlstm": "xlstm", "transformer": "dt", "mamba": "mamba"}
TMAZE_ENV = "lram_agents/TMaze-v0"
TMAZE_MODEL = "xlstm-tmaze"
TMAZE_SEGMENT_STEPS = 30  # K: an episode of n segments lasts n·K steps
DEFAULT_SEGMENTS = [1, 3, 9]
GENERALIST_MODEL = "xlstm-lram-1m"
GENERALIST_TASKS = ("lram_agents/MetaWorld-button-press-v0", "lram_agents/MetaWorld-drawer-close-v0",
                    "lram_agents/DMControl-cartpole-swingup-v0", "lram_agents/Atari-boxing-v0")  # boxing: 2-minute games


def zoo_name(backbone: str, size: str, variant: str | None) -> str:
    """The zoo name of a size preset, e.g. ('xlstm', '16m', '1:0') -> 'xlstm-16m-mlstm'."""
    if variant not in (None, "7:1", "1:0") or (variant and backbone != "xlstm"):
        raise ValueError(f"variant {variant!r}: xlstm takes '7:1' (default) or '1:0'; other backbones none")
    return f"{_ZOO_PREFIX[backbone]}-{size}" + ("-mlstm" if variant == "1:0" else "")


def tmaze_demo(name: str, segments: list[int], seeds: int) -> None:
    """Success rate and per-step latency of a T-Maze agent at each length of n segments."""
    agent = lram_agents.load(name)
    print(f"{name}: {agent.model.num_parameters() / 1e3:.1f}k parameters ({agent.model.config.backbone.type}), "
          f"T-Maze, {seeds} seeds per length, one env per call")
    for n in segments:
        length = n * TMAZE_SEGMENT_STEPS - 2
        result = lram_agents.evaluate(agent, gym.make(TMAZE_ENV, corridor_length=length), seeds, seed=0, progress=False)
        print(f"{n:>4} segment(s) (corridor {length:>4}, {n * TMAZE_SEGMENT_STEPS:>5} steps): success rate "
              f"{np.mean(result.returns):.2f}; latency per step median {result.latency_median_ms:.2f} ms, "
              f"p95 {result.latency_p95_ms:.2f} ms")


def generalist_demo(name: str, env_ids: list[str], episodes: int) -> None:
    """A multi-domain generalist acting in tasks of several domains: return, normalised score, success
    and per-step latency per task (each task's reward scale and target return picked from its env)."""
    from lram_agents.envs import domains
    from lram_agents.suite import normalized_score

    agent = lram_agents.load(name)
    print(f"{name}: {parameter_count(agent.model.num_parameters())} parameters ({agent.model.config.backbone.type}), one model for "
          f"every task below, {episodes} episode(s) each, first reset seeded 0")
    for env_id in env_ids:
        domain, task = domains.parse_env_id(env_id)
        missing = domain.missing()
        if missing:
            print(f"{env_id}: skipped ({missing})")
            continue
        options = {"seed": 0} if domain.name == "metaworld" else {}  # one set of Meta-World task variations: the same run each time
        result = lram_agents.evaluate(agent, gym.make(env_id, **options), episodes, seed=0, progress=False)
        mean = float(np.mean(result.returns))
        success = "" if np.isnan(result.success_rate) else f", success {result.success_rate:.2f}"
        print(f"{env_id}: return {mean:.1f} (normalised {normalized_score(domain.name, task, mean):.2f}){success}; "
              f"latency per step median {result.latency_median_ms:.2f} ms")


def env_demo(args: argparse.Namespace) -> None:
    """A zoo size preset (untrained) or a saved agent (``--model``) in any Gymnasium env."""
    name = args.model or zoo_name(args.backbone or "xlstm", args.size or "16m", args.variant)
    pretrained = args.model is not None  # the size presets have no trained weights yet
    agent = lram_agents.load(name, pretrained=pretrained, target_return=args.target_return, keep_memory=args.keep_memory or None)
    print(f"{name}: {parameter_count(agent.model.num_parameters())} parameters "
          f"({'trained' if pretrained else 'untrained'}), env {args.env}")
    result = lram_agents.evaluate(agent, gym.make(args.env), args.episodes, seed=0)
    lat = 1e3 * result.step_latencies
    print(result)
    print(f"returns {np.round(result.returns, 2).tolist()}")
    print(f"latency over time: first 20 steps median {np.median(lat[:20]):.2f} ms, "
          f"last 20 steps median {np.median(lat[-20:]):.2f} ms ({len(lat)} steps)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default=None, choices=sorted(_ZOO_PREFIX), help="a size preset (default xlstm)")
    parser.add_argument("--size", default=None, choices=SIZES, help="a size preset (default 16m)")
    parser.add_argument("--variant", default=None, help="xlstm only: 7:1 (default) or 1:0")
    parser.add_argument("--model", default=None, help="a zoo name or saved directory (overrides --backbone/--size/--variant)")
    parser.add_argument("--env", default=None, help=f"a Gymnasium env id (default: T-Maze with {TMAZE_MODEL}, or CartPole-v1 "
                                                    "for a preset or --model)")
    parser.add_argument("--segments", type=int, nargs="+", help=f"T-Maze lengths in segments of 30 steps (default {DEFAULT_SEGMENTS})")
    parser.add_argument("--seeds", type=int, default=10, help="T-Maze episodes per length")
    parser.add_argument("--episodes", type=int, default=None, help="episodes per env (default 10; --generalist: 1)")
    parser.add_argument("--generalist", action="store_true", help=f"the multi-domain generalist ({GENERALIST_MODEL}, or --model) "
                                                                   "in tasks of several domains")
    parser.add_argument("--tasks", nargs="+", help="--generalist: these domain env ids (lram_agents/<Domain>-<task>-v0)")
    parser.add_argument("--keep-memory", action="store_true", help="keep the memory across episodes (default: the model's setting)")
    parser.add_argument("--target-return", type=float, default=None, help="default: the model's")
    # One env acting one step at a time is latency-bound: extra threads only add synchronisation, which
    # on a busy 2-core machine made the 18k-parameter T-Maze agent 50x slower (111 ms vs 2 ms per step).
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1; 0: torch's choice)")
    args = parser.parse_args(argv)
    args.episodes = args.episodes or (1 if args.generalist else 10)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.generalist:
        generalist_demo(args.model or GENERALIST_MODEL, args.tasks or list(GENERALIST_TASKS), args.episodes)
        return
    preset_asked = any(v is not None for v in (args.backbone, args.size, args.variant))
    if args.env is None and args.model is not None and not preset_asked and _is_tmaze_agent(args.model):
        args.env = TMAZE_ENV  # e.g. --model xlstm-tmaze-long: a T-Maze agent plays T-Maze
    if args.env == TMAZE_ENV or (args.env is None and args.model is None and not preset_asked):
        tmaze_demo(args.model or TMAZE_MODEL, args.segments or DEFAULT_SEGMENTS, args.seeds)
        return
    if args.segments is not None:
        parser.error(f"--segments sets T-Maze lengths, but this demo plays {args.env or 'CartPole-v1'} "
                     f"(add --env {TMAZE_ENV} for a T-Maze agent)")
    args.env = args.env or "CartPole-v1"
    env_demo(args)


def _is_tmaze_agent(name: str) -> bool:
    """Whether the saved agent ``name`` was trained in T-Maze's spaces (recorded in its preprocessing)."""
    agent = lram_agents.load(name, compile=False)
    env = gym.make(TMAZE_ENV)
    return agent.observation_space == env.observation_space and agent.action_space == env.action_space


if __name__ == "__main__":
    main()
