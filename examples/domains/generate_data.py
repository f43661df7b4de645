"""Offline data for LRAM's training domains, one folder of trajectory files per task.

    python examples/domains/generate_data.py examples/domains/metaworld.yaml --shard 0/2 &
    python examples/domains/generate_data.py examples/domains/metaworld.yaml --shard 1/2

A config names the domain, the tasks (``all``, ``train``, ``holdout`` or a list) and the source:

* ``expert``: Meta-World's scripted experts (``metaworld.policies``), ``episodes_per_level`` episodes at
  each Gaussian action-noise level of ``noise_levels``, where the level ``random`` means uniformly random
  actions (mixed-quality data, from expert to random, as offline data sets are);
* ``scripted``: robosuite's pick-and-place script, with the same noise levels;
* ``sac`` / ``ppo``: a Stable-Baselines3 learning run of ``total_timesteps`` per task, every episode it
  played kept in order (LRAM's DMControl recipe; PPO for Atari and Procgen); the final policy is
  saved beside the data as ``policy.zip`` (the data's own policy, for the reference scores).

Resumable and safe: a task is recorded into ``<output>/.staging-<task>`` and renamed to
``<output>/<task>`` when complete, with its settings in ``recording.json``; a rerun skips finished
tasks, restarts interrupted ones, and refuses a finished task recorded with other settings.
``--shard I/N`` records tasks I, I+N, ... (one process per core).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from tqdm.auto import tqdm

import lram_agents  # noqa: F401  (registers the environments)
from lram_agents.config_utils import from_dict, require
from lram_agents.data.format import is_image_space
from lram_agents.data.jobs import check_same_settings, parse_shard
from lram_agents.data.learning_history import record_learning_history
from lram_agents.data.recorder import TrajectoryWriter, record
from lram_agents.envs import domains
from lram_agents.envs.source_rl import algorithm_class
from lram_agents.run_configs import load_config_file

SOURCES = ("expert", "scripted", "sac", "ppo")
SETTINGS_FILE = "recording.json"


@dataclass
class DomainDataConfig:
    """The settings of one ``examples/domains/<domain>.yaml`` (see those files for the values and why)."""

    domain: str
    source: str
    output: str
    tasks: str | list[str] = "all"
    seed: int = 0
    env_kwargs: dict = field(default_factory=dict)
    # expert / scripted
    noise_levels: list[float | str] = field(default_factory=lambda: [0.0])
    episodes_per_level: int = 20
    # sac / ppo
    total_timesteps: int = 0
    n_envs: int = 1
    algorithm_kwargs: dict = field(default_factory=dict)

    def __post_init__(self):
        domains.get(self.domain)
        require(self.source in SOURCES, "source", self.source, f"must be one of {SOURCES}")
        require(all(s == "random" or (isinstance(s, (int, float)) and s >= 0) for s in self.noise_levels), "noise_levels",
                self.noise_levels, "entries must be numbers >= 0 or 'random'")
        require(self.episodes_per_level >= 1, "episodes_per_level", self.episodes_per_level, "must be >= 1")
        if self.source in ("sac", "ppo"):
            require(self.total_timesteps >= 1, "total_timesteps", self.total_timesteps, "must be >= 1 for an RL source")
        require(self.n_envs >= 1, "n_envs", self.n_envs, "must be >= 1")

    def task_list(self) -> list[str]:
        spec = domains.get(self.domain)
        if isinstance(self.tasks, str):
            return list(spec.tasks(self.tasks))
        for task in self.tasks:
            spec.split_of(task)  # ValueError naming an unknown task
        return list(self.tasks)

    def recipe(self) -> dict:
        """What decides the data (the output folder and the task list do not)."""
        settings = asdict(self)
        for key in ("output", "tasks"):
            settings.pop(key)
        return settings


class NoisyPolicy:
    """``policy(obs)`` plus N(0, std^2) noise per action dimension, clipped to the action bounds;
    ``std="random"``: uniform actions instead (the policy is still called, so scripts keep their phase)."""

    def __init__(self, policy, action_space: gym.spaces.Box, std: float | str, rng: np.random.Generator):
        self.policy, self.space, self.std, self.rng = policy, action_space, std, rng

    def __call__(self, observation):
        action = np.asarray(self.policy(observation), dtype=np.float32)
        if self.std == "random":
            return self.rng.uniform(self.space.low, self.space.high).astype(np.float32)
        if self.std > 0:
            action = action + self.rng.normal(0.0, self.std, action.shape).astype(np.float32)
        return np.clip(action, self.space.low, self.space.high)


def scripted_source(cfg: DomainDataConfig, env: gym.Env, task: str):
    if cfg.domain == "metaworld":
        from lram_agents.envs.domains.metaworld import expert_policy

        return expert_policy(task)
    if cfg.domain == "robosuite":
        from lram_agents.envs.domains.robosuite import scripted_policy

        return scripted_policy(env)
    raise SystemExit(f"source {cfg.source!r} exists for metaworld (expert) and robosuite (scripted), not {cfg.domain}")


def record_scripted(cfg: DomainDataConfig, task: str, index: int, staging: Path) -> list[float]:
    env_id = domains.env_id(cfg.domain, task)
    env = gym.make(env_id, **cfg.env_kwargs)
    policy, returns = scripted_source(cfg, env, task), []
    for level, std in enumerate(cfg.noise_levels):
        seed = cfg.seed + 1000 * index + 100 * level
        writer = TrajectoryWriter(staging, env.observation_space, env.action_space, domain=cfg.domain, env_id=env_id,
                                  episodes_per_file=cfg.episodes_per_level,
                                  prefix="random" if std == "random" else f"noise{std:g}",
                                  metadata={**cfg.recipe(), "noise_std": std, "task": task})
        noisy = NoisyPolicy(policy, env.action_space, std, np.random.default_rng(seed))
        summary = record(env, noisy, writer, episodes=cfg.episodes_per_level, seed=seed, task=task, progress=False)
        returns += summary.returns
    env.close()
    return returns


def record_learning_run(cfg: DomainDataConfig, task: str, index: int, staging: Path) -> list[float]:
    from stable_baselines3.common.env_util import make_vec_env

    env_id = domains.env_id(cfg.domain, task)
    vec_env = make_vec_env(env_id, n_envs=cfg.n_envs, seed=cfg.seed + index, env_kwargs=cfg.env_kwargs)
    policy = "CnnPolicy" if is_image_space(vec_env.observation_space) else "MlpPolicy"
    model = algorithm_class(cfg.source.upper())(policy, vec_env, seed=cfg.seed + index, verbose=0, **cfg.algorithm_kwargs)
    summary = record_learning_history(model, cfg.total_timesteps, staging, keep_every=1, history_id=index, task=task,
                                      domain=cfg.domain, episodes_per_file=1, progress=False)  # LRAM: one episode per file
    model.save(staging / "policy.zip")
    vec_env.close()
    return summary.returns


def record_task(cfg: DomainDataConfig, task: str, index: int, output: Path) -> list[float]:
    staging = output / f".staging-{task}"  # hidden: datasets skip it
    shutil.rmtree(staging, ignore_errors=True)  # left over from an interrupted run
    staging.mkdir(parents=True)
    recorder = record_scripted if cfg.source in ("expert", "scripted") else record_learning_run
    returns = recorder(cfg, task, index, staging)
    (staging / SETTINGS_FILE).write_text(json.dumps(cfg.recipe(), indent=2) + "\n")
    staging.replace(output / task)  # atomic: the task counts as done from here on
    return returns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path, help="e.g. examples/domains/metaworld.yaml")
    parser.add_argument("--output", help="override the config's output directory")
    parser.add_argument("--tasks", nargs="+", help="override the config's tasks (names, or all / train / holdout)")
    parser.add_argument("--shard", default="0/1", help="I/N: record tasks I, I+N, ... (one process per core)")
    args = parser.parse_args()
    data = load_config_file(args.config)
    if args.output:
        data["output"] = args.output
    if args.tasks:
        data["tasks"] = args.tasks[0] if len(args.tasks) == 1 and args.tasks[0] in ("all", "train", "holdout") else args.tasks
    cfg = from_dict(DomainDataConfig, data)
    domains.get(cfg.domain).require()
    torch.set_num_threads(1)  # small SB3 networks gain nothing from a second thread on a shared machine
    output = Path(cfg.output)
    output.mkdir(parents=True, exist_ok=True)
    shard, num_shards = parse_shard(args.shard)
    tasks = list(enumerate(cfg.task_list()))[shard::num_shards]
    for index, task in tqdm(tasks, desc=f"{cfg.domain} data", unit="task"):
        if (output / task).is_dir():
            check_same_settings(output / task / SETTINGS_FILE, cfg.recipe())
            continue
        start = time.perf_counter()
        returns = record_task(cfg, task, index, output)
        tqdm.write(f"{task}: {len(returns)} episodes, mean return {np.mean(returns):.1f}, max {np.max(returns):.1f} "
                   f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
