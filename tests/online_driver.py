"""Runs online fine-tuning of a tiny model on T-Maze in a subprocess, for tests/test_online_resume_after_kill.py.

    python online_driver.py RUN_DIR TOTAL_ENV_STEPS [--resume]

* ``STEP_DELAY=seconds``: sleep in every ``on_step`` (gives a test time to kill inside a rollout).
* ``EPISODE_LOG=path``: ``on_episode_end`` appends the episode's key (history id, index, sha256 of its
  arrays) once the episode is on disk, so a test knows which episodes had been collected.

At the end, ``RUN_DIR/result.json`` holds the result's counters.
"""

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import gymnasium as gym
import torch
from finetune_fixtures import tiny_config, tmaze

from lram_agents.agent import Agent
from lram_agents.finetune import OnlineCallback, OnlineConfig, OnlineFinetuner
from lram_agents.model import LRAMModel
from lram_agents.preprocessing import Preprocessing


def episode_key(episode) -> str:
    digest = hashlib.sha256()
    for array in (episode.observations, episode.actions, episode.rewards):
        digest.update(array.tobytes())
    return f"{episode.history_id} {episode.episode_index} {digest.hexdigest()}"


class Log(OnlineCallback):
    def __init__(self, delay: float, path: str | None):
        super().__init__()
        self.delay, self.path = delay, path

    def on_step(self) -> bool:
        time.sleep(self.delay)
        return True

    def on_episode_end(self, episode, env_index) -> bool:
        if self.path:
            with open(self.path, "a") as f:
                f.write(episode_key(episode) + "\n")
        return True


def main(run: Path, total: int, resume: bool) -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    agent = Agent(LRAMModel(tiny_config()), Preprocessing(target_return=1.0))
    env = gym.vector.SyncVectorEnv([tmaze, tmaze])
    config = OnlineConfig(episodes_per_rollout=6, updates_per_rollout=2, batch_size=4, context=4, exploration_epsilon=0.3,
                          checkpoint_every=1, keep_checkpoints=2, progress=False)
    log = Log(float(os.environ.get("STEP_DELAY", "0")), os.environ.get("EPISODE_LOG"))
    result = OnlineFinetuner(agent, env, config, run, [log]).learn(total, resume=resume)
    counters = {k: getattr(result, k) for k in ("iterations", "env_steps", "episodes", "updates")}
    (run / "result.json").write_text(json.dumps(counters))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), "--resume" in sys.argv[3:])
