"""Online fine-tuning: hooks that stop it and change the target return, the buffer, relabelling, resume."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from finetune_fixtures import tiny_config, tmaze
from stubs import CountingEnv, IdentityBackbone, IdentityConfig, return_following_model

from lram_agents.agent import Agent
from lram_agents.data import Episode, TrajectoryDataset, TrajectorySampler
from lram_agents.finetune import EpisodeBuffer, OnlineCallback, OnlineConfig, OnlineFinetuner, StopOnReturn
from lram_agents.model import LRAMModel
from lram_agents.preprocessing import Preprocessing
from lram_agents.serialization import CheckpointError


def quick(**overrides) -> OnlineConfig:
    settings = dict(episodes_per_rollout=4, updates_per_rollout=2, batch_size=4, context=4, learning_rate=1e-3, progress=False)
    return OnlineConfig(**{**settings, **overrides})


def vector_tmaze(n: int = 2, **kwargs):
    return gym.vector.SyncVectorEnv([lambda: tmaze(**kwargs) for _ in range(n)])


def tiny_agent(**preprocessing) -> Agent:
    torch.manual_seed(0)
    return Agent(LRAMModel(tiny_config()), Preprocessing(target_return=1.0, **preprocessing))


def all_episodes(run) -> TrajectoryDataset:
    return TrajectoryDataset(sorted((run / "episodes").glob("rollout-*.h5")))


def episodes_on_disk(run) -> int:
    return all_episodes(run).num_episodes if list((run / "episodes").glob("rollout-*.h5")) else 0


class Recorder(OnlineCallback):
    """Counts every hook call; stops at the hook and count given."""

    def __init__(self, stop_at: tuple[str, int] | None = None):
        super().__init__()
        self.calls, self.stop_at, self.episodes = {}, stop_at, []

    def _count(self, hook: str) -> bool:
        self.calls[hook] = self.calls.get(hook, 0) + 1
        return (hook, self.calls[hook]) != self.stop_at

    def on_training_start(self):
        self._count("on_training_start")

    def on_rollout_start(self):
        self._count("on_rollout_start")

    def on_step(self):
        return self._count("on_step")

    def on_episode_end(self, episode, env_index):
        self.episodes.append(episode)
        return self._count("on_episode_end")

    def on_rollout_end(self):
        return self._count("on_rollout_end")

    def on_update(self):
        return self._count("on_update")

    def on_evaluation(self, result):
        return self._count("on_evaluation")

    def on_training_end(self):
        self._count("on_training_end")


# ---- hooks -------------------------------------------------------------------------------------------
def test_every_hook_is_called_and_the_run_is_recorded(tmp_path, one_thread):
    hooks = Recorder()
    result = OnlineFinetuner(tiny_agent(), vector_tmaze(), quick(eval_every=2, eval_episodes=2), tmp_path, [hooks]).learn(40)
    assert result.env_steps >= 40 and not result.stopped_early
    assert hooks.calls["on_update"] == result.updates == 2 * result.iterations
    assert hooks.calls["on_rollout_end"] == result.iterations and hooks.calls["on_evaluation"] == result.iterations // 2
    assert hooks.calls["on_episode_end"] == result.episodes == all_episodes(tmp_path).num_episodes >= 4 * result.iterations
    assert sum(len(e) for e in hooks.episodes) == all_episodes(tmp_path).num_steps <= result.env_steps
    assert hooks.calls["on_step"] >= result.env_steps / 2  # one call per step of the 2-env vector env
    assert hooks.calls["on_training_start"] == hooks.calls["on_training_end"] == 1
    assert (tmp_path / "model" / "model.safetensors").exists() and (tmp_path / "online_curves.png").exists()
    rows = (tmp_path / "online_metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + result.iterations


@pytest.mark.parametrize("hook, count", [("on_step", 3), ("on_episode_end", 2), ("on_rollout_end", 1), ("on_update", 3), ("on_evaluation", 1)])
def test_a_hook_returning_false_stops_training(tmp_path, hook, count, one_thread):
    hooks = Recorder(stop_at=(hook, count))
    result = OnlineFinetuner(tiny_agent(), vector_tmaze(), quick(eval_every=1, eval_episodes=2), tmp_path, [hooks]).learn(10_000)
    assert result.stopped_early and hooks.calls[hook] == count
    assert hooks.calls["on_training_end"] == 1
    assert hooks.calls.get("on_update", 0) == result.updates
    if hook in ("on_step", "on_episode_end", "on_rollout_end"):
        assert result.updates == 0 and result.iterations == 1  # stopped in the first rollout: no update
    assert result.episodes == episodes_on_disk(tmp_path) == hooks.calls.get("on_episode_end", 0)
    assert result.checkpoint is not None and result.checkpoint.exists()


def test_stop_on_return_stops_at_the_threshold(tmp_path, one_thread):
    result = OnlineFinetuner(tiny_agent(), vector_tmaze(), quick(eval_every=1, eval_episodes=2), tmp_path,
                             [StopOnReturn(-1.0)]).learn(10_000)
    assert result.stopped_early and result.iterations == 1 and result.last_evaluation is not None


class SetTarget(OnlineCallback):
    def __init__(self, value: float, after_rollouts: int):
        super().__init__()
        self.value, self.after_rollouts = value, after_rollouts

    def on_rollout_end(self):
        if self.trainer.iteration == self.after_rollouts:
            self.trainer.target_return = self.value


def test_a_hook_that_changes_the_target_return_changes_the_actions(tmp_path, monkeypatch):
    from lram_agents.backbones import BACKBONES

    monkeypatch.setitem(BACKBONES, "identity", (IdentityConfig, IdentityBackbone))
    agent = Agent(return_following_model(), Preprocessing(target_return=100.0))
    config = quick(episodes_per_rollout=2, updates_per_rollout=0, deterministic_rollouts=True)
    OnlineFinetuner(agent, CountingEnv(length=3), config, tmp_path, [SetTarget(-100.0, after_rollouts=1)]).learn(12)
    data = all_episodes(tmp_path)
    actions = [data.read(i, "actions").tolist() for i in range(data.num_episodes)]
    assert actions == [[0, 0, 0]] * 2 + [[1, 1, 1]] * 2  # asked for +100: action 0; after the hook, for -100: action 1


def test_target_mode_best_follows_the_best_return_seen(tmp_path, one_thread):
    config = quick(target_mode="best", target_multiplier=2.0, exploration_epsilon=0.5)
    finetuner = OnlineFinetuner(tiny_agent(), vector_tmaze(), config, tmp_path)
    result = finetuner.learn(60)
    best = all_episodes(tmp_path).table.total_return.max()
    assert best == 1.0 and result.best_return == best and result.target_return == 2.0


# ---- data --------------------------------------------------------------------------------------------
def test_update_windows_are_relabelled_with_the_returns_obtained(tmp_path, one_thread):
    agent = tiny_agent(reward_scale=2.0)
    finetuner = OnlineFinetuner(agent, vector_tmaze(), quick(windows="from_start", updates_per_rollout=0, exploration_epsilon=0.5),
                                tmp_path)
    finetuner.learn(40)
    (source,) = finetuner.training_sources()
    sampler = TrajectorySampler(source, agent.model.config, batch_size=16, seed=0)
    (batch,) = sampler.batch(0)
    plan = sampler.plan(0)
    returns = source.dataset.table.total_return[[source.sequences[w.sequence][0] for w in plan]]
    torch.testing.assert_close(batch.inputs.returns_to_go[:, 0], torch.tensor(returns / 2.0, dtype=torch.float32))


def test_exploration_takes_random_actions_that_the_agent_remembers(tmp_path, one_thread):
    class CheckMemory(OnlineCallback):
        def __init__(self):
            super().__init__()
            self.actions = []

        def on_step(self):
            step, memory = self.trainer.last_step, self.trainer.rollout_agent.memory
            assert np.array_equal(memory.prev_actions.numpy()[step.active], step.actions[step.active])
            self.actions += step.actions[step.active].tolist()

    check = CheckMemory()
    OnlineFinetuner(tiny_agent(), vector_tmaze(), quick(exploration_epsilon=1.0, updates_per_rollout=0), tmp_path, [check]).learn(60)
    assert set(check.actions) == {0, 1, 2, 3}


def test_buffer_recovers_pending_episodes_once(tmp_path):
    space, actions = gym.spaces.Box(-1, 1, (2,), np.float32), gym.spaces.Discrete(3)
    episode = Episode(np.zeros((3, 2), np.float32), [0, 1], [0.0, 1.0], [False, True], [False, False])
    buffer = EpisodeBuffer(tmp_path, space, actions)
    buffer.end_rollout()  # an empty rollout writes nothing
    buffer.add(episode)
    buffer.end_rollout()
    buffer.add(episode)
    buffer.add(episode)  # killed here: two pending episodes of rollout 2
    again = EpisodeBuffer(tmp_path, space, actions)
    assert again.recovered_episodes == 2 and [p.name for p in again.rollout_files()] == ["rollout-0000001.h5", "rollout-0000002.h5"]
    assert again.rollout_number == 3 and not list(again.pending_dir.iterdir())
    again.add(episode)
    (tmp_path / "rollout-0000003.h5").write_bytes((tmp_path / "rollout-0000001.h5").read_bytes())  # killed after the join
    third = EpisodeBuffer(tmp_path, space, actions, capacity=2)
    assert third.recovered_episodes == 0 and not list(third.pending_dir.iterdir())
    assert third.dataset().num_episodes == 3  # newest whole rollouts holding >= 2 episodes: files 3 and 2


# ---- checkpoints -------------------------------------------------------------------------------------
def test_learning_resumes_from_its_checkpoint(tmp_path, one_thread):
    first = OnlineFinetuner(tiny_agent(), vector_tmaze(), quick(), tmp_path).learn(20)
    with pytest.raises(CheckpointError, match="already holds a run"):
        OnlineFinetuner(tiny_agent(), vector_tmaze(), quick(), tmp_path).learn(40)
    second = OnlineFinetuner(tiny_agent(), vector_tmaze(), quick(), tmp_path).learn(40, resume=True)
    assert second.iterations > first.iterations and second.updates == 2 * second.iterations
    assert second.episodes == all_episodes(tmp_path).num_episodes
    rows = (tmp_path / "online_metrics.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(1, second.iterations + 1))


def test_single_env_and_bad_envs(tmp_path, one_thread):
    result = OnlineFinetuner(tiny_agent(), tmaze(), quick(episodes_per_rollout=2), tmp_path).learn(8)
    assert result.episodes >= 2
    same_step = gym.vector.SyncVectorEnv([tmaze], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    with pytest.raises(ValueError, match="NEXT_STEP"):
        OnlineFinetuner(tiny_agent(), same_step, quick(), tmp_path / "other")
