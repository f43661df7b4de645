"""Online fine-tuning in the style of the Online Decision Transformer: act, keep the episodes, relabel, update.

    finetuner = OnlineFinetuner(lram_agents.load("xlstm-tmaze"), env, OnlineConfig(target_mode="best"),
                                output_dir="runs/online", callbacks=[MyCallback()])
    result = finetuner.learn(total_env_steps=50_000)            # learn(..., resume=True) after a kill

Every iteration (see :class:`~lram_agents.finetune.config.OnlineConfig`):

1. **Rollout.** The agent plays the (vector) env with its recurrent state, sampling actions at
   ``temperature``, conditioned on ``target_return``; every finished episode is written to the
   :class:`~lram_agents.finetune.buffer.EpisodeBuffer` at once (HDF5, the offline format).
2. **Update.** ``updates_per_rollout`` AdamW steps of behaviour cloning on windows of the newest
   episodes. The sampler computes each window's returns-to-go from the rewards the episode really
   got, which is ODT's *hindsight return relabelling*: an episode that returned 3 teaches what to do
   when asked for 3, whatever the target was when it was played.
3. **Target.** ``target_mode="best"`` moves the target to the best return seen so far (times
   ``target_multiplier``); hooks may set ``trainer.target_return`` themselves.
4. Evaluation (deterministic) every ``eval_every`` iterations, a checkpoint every ``checkpoint_every``.

Hooks (:mod:`lram_agents.finetune.callbacks`): ``on_step`` (every env step), ``on_episode_end``,
``on_rollout_end``, ``on_update`` (every optimizer step), ``on_evaluation``; ``False`` stops.

Checkpoints are the offline trainer's (:mod:`lram_agents.training.checkpoint`: model, optimizer,
schedule, RNG, counters; atomic). Resuming restores the newest one and the buffer on disk, including
episodes that ended after that checkpoint: a kill loses only the episodes that had not ended (and
their env steps). The envs cannot be checkpointed: a resumed run starts a new rollout from a reset.

Run directory: ``episodes/`` (the buffer), ``checkpoints/``, ``online_metrics.csv`` (one row per
iteration), ``online_curves.png``, ``online_config.json`` and ``model/`` (the fine-tuned agent).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import VectorEnv
from tqdm.auto import tqdm

from lram_agents.agent import Agent
from lram_agents.data.format import Episode
from lram_agents.data.sampler import DataSource, TrajectorySampler
from lram_agents.evaluation import EvaluationResult, evaluate
from lram_agents.finetune.buffer import EpisodeBuffer
from lram_agents.finetune.callbacks import OnlineCallback, OnlineCallbackList
from lram_agents.finetune.config import OnlineConfig
from lram_agents.finetune.plots import plot_online_curves
from lram_agents.finetune.rollout import RolloutCollector, RolloutStats, StepData, as_vector_env
from lram_agents.finetune.spaces import check_transfer
from lram_agents.serialization import CheckpointError
from lram_agents.training import checkpoint as ckpt
from lram_agents.training.metrics import MetricsLogger
from lram_agents.training.schedule import WarmupCosine
from lram_agents.training.trainer import _Objective, build_optimizer

logger = logging.getLogger(__name__)

COLUMNS = ("step", "time_s", "env_steps", "episodes", "updates", "rollout_return", "best_return", "target_return", "loss", "lr",
           "eval_return")
METRICS_FILE = "online_metrics.csv"
EVAL_SEED_OFFSET = 1_000_003  # evaluation episodes never replay a rollout's resets


@dataclass
class OnlineResult:
    """What :meth:`OnlineFinetuner.learn` did (counters include those of resumed-from runs)."""

    iterations: int
    env_steps: int
    episodes: int
    updates: int
    stopped_early: bool  # a hook returned False
    target_return: float
    best_return: float | None  # None before any episode ended
    last_evaluation: EvaluationResult | None
    output_dir: Path
    checkpoint: Path | None


class OnlineFinetuner:
    """Fine-tunes an agent's model online (see the module docstring).

    Args:
        agent: the agent to fine-tune; its model is trained in place (LoRA: pass an agent whose model
            came from :func:`~lram_agents.finetune.prepare_model`, only weights with ``requires_grad`` train).
            Its preprocessing (reward scale, normalisation) and ``keep_memory`` are used throughout.
        env: a Gymnasium env or vector env (``NEXT_STEP`` autoreset, the default).
        config: see :class:`OnlineConfig`.
        output_dir: the run directory (``learn(..., resume=True)`` continues the run found there).
        callbacks: :class:`OnlineCallback` objects.
        eval_env: where evaluations play (default: ``env``, between rollouts).
    """

    def __init__(self, agent: Agent, env: gym.Env | VectorEnv, config: OnlineConfig | None = None,
                 output_dir: str | Path = "runs/online", callbacks: Sequence[OnlineCallback] = (), eval_env: gym.Env | VectorEnv | None = None):
        self.config = config or OnlineConfig()
        self.model, self.preprocessing = agent.model, agent.preprocessing
        self.env = as_vector_env(env)
        self.eval_env = eval_env if eval_env is not None else self.env
        spaces = (self.env.single_observation_space, self.env.single_action_space)
        self.space_mapping = check_transfer(self.model.config, *spaces)
        options = dict(observation_space=spaces[0], action_space=spaces[1], keep_memory=agent.keep_memory)
        self.rollout_agent = Agent(self.model, self.preprocessing, **options, deterministic=self.config.deterministic_rollouts,
                                   temperature=self.config.temperature)
        self.eval_agent = Agent(self.model, self.preprocessing, **options, deterministic=True)
        self.target_return = self.config.target_return if self.config.target_return is not None else agent.target_return
        self.output_dir = Path(output_dir)
        self.callback = OnlineCallbackList(callbacks)
        self.extra_sources: list[DataSource] = []
        self.metrics: dict[str, float] = {}
        self.last_step: StepData | None = None
        self.iteration = self.updates = self.env_steps = self.episodes = 0
        self.best_return = -math.inf
        self.last_evaluation: EvaluationResult | None = None
        self._dataset = None

    @property
    def target_return(self) -> float:
        """The return the agent is conditioned on; a new value applies from the next episode start."""
        return self._target_return

    @target_return.setter
    def target_return(self, value: float) -> None:
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"target_return must be finite, got {value}")
        self._target_return = self.rollout_agent.target_return = self.eval_agent.target_return = value

    @property
    def checkpoint_dir(self) -> Path:
        return self.output_dir / "checkpoints"

    # ---- the public entry point -----------------------------------------------------------------------
    def learn(self, total_env_steps: int, resume: bool = False) -> OnlineResult:
        """Iterate until ``total_env_steps`` env steps were taken (counting those of resumed-from runs)."""
        if total_env_steps < 1:
            raise ValueError(f"total_env_steps must be >= 1, got {total_env_steps}")
        cfg = self.config
        self.buffer = EpisodeBuffer(self.output_dir / "episodes", self.env.single_observation_space, self.env.single_action_space,
                                    cfg.buffer_episodes)
        self.optimizer = build_optimizer(self.model, cfg)
        # linear warm-up, then constant (WarmupCosine with a floor of 1 never decays)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, WarmupCosine(cfg.warmup_updates, cfg.warmup_updates, 1.0))
        self._start(resume)
        self._log = MetricsLogger(self.output_dir, self.iteration, columns=COLUMNS, filename=METRICS_FILE)
        try:
            stopped = self._run(total_env_steps)
        finally:
            self._log.close()
            if self._dataset is not None:
                self._dataset.close()
        best = self.best_return if math.isfinite(self.best_return) else None
        return OnlineResult(self.iteration, self.env_steps, self.episodes, self.updates, stopped, self.target_return, best,
                            self.last_evaluation, self.output_dir, self._last_checkpoint)

    def _run(self, total_env_steps: int) -> bool:
        self.callback.init_callback(self)
        self.callback.on_training_start()
        stopped = False
        with tqdm(total=total_env_steps, initial=min(self.env_steps, total_env_steps), desc="online", unit="step",
                  disable=not self.config.progress) as bar:
            while not stopped and self.env_steps < total_env_steps:
                stopped = self._iteration(bar)
        if self._checkpointed != (self.iteration, self.episodes, self.updates):
            self._checkpoint()
        self.eval_agent.save_pretrained(self.output_dir / "model", name="online fine-tuned agent")
        self.callback.on_training_end()
        return stopped

    # ---- one iteration -------------------------------------------------------------------------------
    def _iteration(self, bar: tqdm) -> bool:
        """A rollout, its update phase and (when due) an evaluation and a checkpoint; True if a hook stopped."""
        cfg = self.config
        stats = self._rollout(bar)
        self.iteration += 1
        if cfg.target_mode == "best" and math.isfinite(self.best_return):
            self.target_return = self.best_return * cfg.target_multiplier
        stopped = stats.stopped or self.callback.on_rollout_end() is False
        losses, stopped = ([], True) if stopped else self._update_phase()
        evaluation = None
        if not stopped and cfg.eval_every and self.iteration % cfg.eval_every == 0:
            evaluation = self.last_evaluation = evaluate(self.eval_agent, self.eval_env, cfg.eval_episodes, deterministic=True,
                                                         seed=cfg.seed + EVAL_SEED_OFFSET, progress=False)
            stopped = self.callback.on_evaluation(evaluation) is False
        self._log_iteration(stats, losses, evaluation)
        if self.iteration % cfg.checkpoint_every == 0:
            self._checkpoint()
        return stopped

    def _rollout(self, bar: tqdm) -> RolloutStats:
        def on_step(data: StepData) -> bool:
            self.last_step = data
            steps = int(data.active.sum())
            self.env_steps += steps
            bar.update(steps)
            return self.callback.on_step()

        def on_episode(episode: Episode, env_index: int) -> bool:
            self.episodes += 1
            self.best_return = max(self.best_return, episode.total_return)
            return self.callback.on_episode_end(episode, env_index)

        self.callback.on_rollout_start()
        collector = RolloutCollector(self.rollout_agent, self.env, self.buffer, on_step, on_episode, self.config.exploration_epsilon)
        # A distinct seed per rollout file (and per run seed: runs with seeds 0 and 1 do not share resets). Rollout
        # numbers are never reused, so a resumed run does not replay the rollout a kill interrupted (recovered).
        stats = collector.collect(self.config.episodes_per_rollout, seed=self.config.seed * 7919 + self.buffer.rollout_number)
        self.buffer.end_rollout()
        return stats

    # ---- updates -------------------------------------------------------------------------------------
    def training_sources(self) -> list[DataSource]:
        """The buffer's newest episodes and ``extra_sources`` (what the next update phase trains on)."""
        cfg = self.config
        if self._dataset is not None:
            self._dataset.close()
        self._dataset = self.buffer.dataset()
        own = [] if self._dataset is None else [DataSource(self._dataset, cfg.context, cfg.windows, self.preprocessing)]
        return own + list(self.extra_sources)

    def _update_phase(self) -> tuple[list[float], bool]:
        """``updates_per_rollout`` optimizer steps: (their losses, whether a hook stopped)."""
        if self.config.updates_per_rollout == 0:
            return [], False
        sources = self.training_sources()
        if not sources:
            raise RuntimeError("no episode has ended yet and there are no extra_sources: nothing to train on "
                               "(raise episodes_per_rollout, or check that the env's episodes end)")
        sampler = TrajectorySampler(sources, self.model.config, self.config.batch_size, seed=self.config.seed)
        objective, losses = _Objective(self.model), []
        self.model.train()
        try:
            for _ in range(self.config.updates_per_rollout):
                self.metrics = self._gradient_step(objective, sampler.batch(self.updates))
                self.updates += 1
                losses.append(self.metrics["loss"])
                if self.callback.on_update() is False:
                    return losses, True
        finally:
            self.model.eval()
        return losses, False

    def _gradient_step(self, objective: _Objective, parts) -> dict[str, float]:
        device = next(self.model.parameters()).device
        parts = [part.to(device) for part in parts]
        count = sum(float(part.mask.sum()) for part in parts)
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.zero_grad(set_to_none=True)
        loss = objective(parts) / count
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the loss is {float(loss)} at update {self.updates + 1}; the last checkpoint is intact")
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], self.config.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return {"loss": float(loss.detach()), "grad_norm": float(grad_norm), "lr": lr}

    # ---- logging ------------------------------------------------------------------------------------
    def _log_iteration(self, stats: RolloutStats, losses: list[float], evaluation: EvaluationResult | None) -> None:
        row = {"time_s": time.time(), "env_steps": self.env_steps, "episodes": self.episodes, "updates": self.updates,
               "rollout_return": float(np.mean(stats.returns)) if stats.returns else None,
               "best_return": self.best_return if math.isfinite(self.best_return) else None, "target_return": self.target_return,
               "loss": float(np.mean(losses)) if losses else None, "lr": self.metrics.get("lr"),
               "eval_return": evaluation.mean_return if evaluation is not None else None}
        self._log.log(self.iteration, row)

    # ---- checkpoints ---------------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        best = self.best_return if math.isfinite(self.best_return) else None
        return {"iteration": self.iteration, "updates": self.updates, "env_steps": self.env_steps, "episodes": self.episodes,
                "target_return": self.target_return, "best_return": best, "rollout_files": len(self.buffer.rollout_files()),
                "model_config": self.model.config.to_dict(), "online_config": self.config.to_dict()}

    def _checkpoint(self) -> Path:
        rng = {"torch_cpu.rank0": torch.get_rng_state()}
        path = ckpt.save_checkpoint(self.checkpoint_dir, self.iteration, self.model, self.optimizer, self.scheduler, rng, self._state())
        ckpt.prune_checkpoints(self.checkpoint_dir, self.config.keep_checkpoints)
        plot_online_curves(self._log.rows, self.output_dir / "online_curves.png")
        self._checkpointed, self._last_checkpoint = (self.iteration, self.episodes, self.updates), path
        return path

    def _start(self, resume: bool) -> None:
        on_disk = self.buffer.rollout_files()
        self._checkpointed, self._last_checkpoint = None, None
        if not resume and (ckpt.list_checkpoints(self.checkpoint_dir) or on_disk):
            raise CheckpointError(f"{self.output_dir} already holds a run (checkpoints or collected episodes): resume it "
                                  "(learn(..., resume=True)) or choose another output_dir")
        path = ckpt.latest_valid_checkpoint(self.checkpoint_dir) if resume else None
        if path is None:
            torch.manual_seed(self.config.seed)
            if resume:
                logger.warning("no checkpoint in %s: starting from the given model with the %d collected rollout files",
                               self.checkpoint_dir, len(on_disk))
            self._count_episodes(on_disk)
        else:
            self._restore(path, on_disk)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.config.save(self.output_dir / "online_config.json")

    def _restore(self, path: Path, on_disk: list[Path]) -> None:
        state, rng = ckpt.load_checkpoint(path, self.model, self.optimizer, self.scheduler)
        if state["model_config"] != json.loads(json.dumps(self.model.config.to_dict())):
            raise CheckpointError(f"cannot resume from {path}: the model's config differs from the checkpoint's")
        torch.set_rng_state(rng["torch_cpu.rank0"])
        self.iteration, self.updates, self.env_steps, self.episodes = (state[k] for k in ("iteration", "updates", "env_steps", "episodes"))
        self.target_return = state["target_return"]
        self.best_return = -math.inf if state["best_return"] is None else state["best_return"]
        self._count_episodes(on_disk[state["rollout_files"]:])  # ended after the checkpoint: kept, and counted
        self._checkpointed, self._last_checkpoint = (self.iteration, self.episodes, self.updates), path
        logger.info("resumed from %s: iteration %d, %d env steps, %d episodes", path, self.iteration, self.env_steps, self.episodes)

    def _count_episodes(self, files: list[Path]) -> None:
        for path in files:
            returns, lengths = self.buffer.summary(path)
            self.episodes += len(returns)
            self.env_steps += int(lengths.sum())
            self.best_return = max([self.best_return, *returns.tolist()])
