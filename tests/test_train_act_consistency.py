"""What a model is trained on (the sampler's windows) is what it is fed when acting (the Agent).

A learning history of three episodes is written to disk; the sampler cuts one window over the whole
history (memory kept across episodes, as in Algorithm Distillation); an Agent with memory kept acts
through the same observations and rewards while a stub forward records its inputs and replays the
recorded actions. Every input field of every token layout must match.
"""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from conftest import SMALL_BACKBONES
from lram_agents.agent import Agent
from lram_agents.backbones import RATEConfig
from lram_agents.config import LRAMConfig
from lram_agents.data import TrajectoryDataset
from lram_agents.data.format import Episode, write_episodes
from lram_agents.data.sampler import DataSource, TrajectorySampler, Window
from lram_agents.model import LRAMModel, ModelOutput
from lram_agents.preprocessing import Preprocessing

OBS_SPACE = gym.spaces.Box(-5, 5, (2,), np.float32)
ACT_SPACE = gym.spaces.Discrete(3)
LENGTHS = (4, 3, 5)
LAYOUTS = {
    "lram": dict(token_layout="lram", include_actions=False),
    "lram+actions": dict(token_layout="lram", include_actions=True),
    "rate": dict(token_layout="rate", include_actions=True),
    "ad": dict(token_layout="ad", include_actions=True),
    "transition": dict(token_layout="transition", include_actions=True),
}


def _history(rng) -> list[Episode]:
    episodes = []
    for k, length in enumerate(LENGTHS):
        episodes.append(Episode(
            observations=rng.uniform(-1, 1, (length + 1, 2)).astype(np.float32),
            actions=rng.integers(0, 3, length),
            rewards=rng.uniform(0, 1, length).astype(np.float32),
            terminations=np.eye(length, dtype=bool)[-1],
            truncations=np.zeros(length, dtype=bool),
            history_id=0, episode_index=k,
        ))
    return episodes


def _config(layout: str) -> LRAMConfig:
    backbone = RATEConfig(d_model=32, num_layers=1, num_heads=1, segment_tokens=90, num_memory_tokens=2, cache_tokens=0) \
        if layout == "rate" else SMALL_BACKBONES["transformer"]
    return LRAMConfig(backbone=backbone, max_state_dim=4, **LAYOUTS[layout])


def _acting_inputs(config: LRAMConfig, episodes: list[Episode], reward_scale: float) -> list:
    """Replay the history through an Agent that keeps memory; collect the inputs its model gets."""
    model = LRAMModel(config).eval()
    actions = [int(a) for e in episodes for a in e.actions]
    fed = []

    def replay(steps, state=None, episode_start=None):
        fed.append(steps)
        logits = torch.full((1, 1, model.head.proj.out_features), -1e4)
        logits[0, 0, actions[len(fed) - 1]] = 1e4
        return ModelOutput(logits, state)

    model.forward = replay
    agent = Agent(model, Preprocessing(reward_scale=reward_scale, target_return=2.0), OBS_SPACE, ACT_SPACE, keep_memory=True)
    reward = None
    for k, episode in enumerate(episodes):
        if k:
            agent.reset()
        # conditioned on the return it will get, the agent's R̂ is the hindsight R̂ the sampler computes
        agent.target_return = float(episode.rewards.sum())
        for t in range(len(episode.actions)):
            assert agent.act(episode.observations[t], reward) == episode.actions[t]
            reward = float(episode.rewards[t])
    return fed


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_sampler_windows_equal_what_the_agent_feeds(tmp_path, layout):
    episodes = _history(np.random.default_rng(0))
    write_episodes(tmp_path / "history.h5", episodes, OBS_SPACE, ACT_SPACE)
    config = _config(layout)
    preprocessing = Preprocessing(reward_scale=2.0, target_return=2.0)
    total = sum(LENGTHS)
    source = DataSource(TrajectoryDataset(tmp_path), context=total, windows="across_episodes", preprocessing=preprocessing)
    batch = TrajectorySampler(source, config, batch_size=1).load([Window(0, 0, 0)])[0]
    fed = _acting_inputs(config, episodes, reward_scale=2.0)
    assert len(fed) == total
    checked = []
    for field in dataclasses.fields(batch.inputs):
        trained = getattr(batch.inputs, field.name)
        acted = [getattr(steps, field.name) for steps in fed]
        assert (trained is None) == (acted[0] is None), field.name
        if trained is None:
            continue
        acted = torch.cat(acted, dim=1)
        assert acted.shape == trained.shape, field.name
        assert torch.allclose(acted.float(), trained.float(), atol=1e-6), f"{layout}: {field.name} differs"
        checked.append(field.name)
    assert sorted(checked) == sorted(config.input_fields)


BOX = gym.spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 1.0], np.float32))  # rescaled to [-1, 1]


@pytest.mark.parametrize("layout", ["transition", "ad"])  # the return-to-go is checked by the test above
def test_continuous_actions_are_fed_as_trained_across_episodes(tmp_path, layout):
    """Algorithm Distillation on continuous control: the (s_{t-1}, a_{t-1}, r_{t-1}, s_t) the agent feeds, across episode
    boundaries with memory kept, equal the sampler's, for a Box whose bounds are not [-1, 1]."""
    rng = np.random.default_rng(1)
    episodes = [dataclasses.replace(e, actions=rng.uniform(BOX.low, BOX.high, (len(e.actions), 2)).astype(np.float32))
                for e in _history(rng)]
    write_episodes(tmp_path / "history.h5", episodes, OBS_SPACE, BOX)
    config = dataclasses.replace(_config(layout), action_head="regression", max_action_dims=2)
    preprocessing = Preprocessing(reward_scale=1.0, target_return=2.0)
    total = sum(LENGTHS)
    source = DataSource(TrajectoryDataset(tmp_path), context=total, windows="across_episodes", preprocessing=preprocessing)
    batch = TrajectorySampler(source, config, batch_size=1).load([Window(0, 0, 0)])[0]
    model = LRAMModel(config).eval()
    recorded = [a for e in episodes for a in e.actions]
    fed = []

    def replay(steps, state=None, episode_start=None):  # outputs whose tanh is the recorded action, in head units
        fed.append(steps)
        head_units = 2 * (recorded[len(fed) - 1] - BOX.low) / (BOX.high - BOX.low) - 1
        return ModelOutput(torch.atanh(torch.as_tensor(head_units, dtype=torch.float64)).float().view(1, 1, 2), state)

    model.forward = replay
    agent = Agent(model, preprocessing, OBS_SPACE, BOX, keep_memory=True)
    reward = None
    for k, episode in enumerate(episodes):
        if k:
            agent.reset()
        for t in range(len(episode.actions)):
            np.testing.assert_allclose(agent.act(episode.observations[t], reward), episode.actions[t], atol=1e-5)
            reward = float(episode.rewards[t])
    for name in config.input_fields:
        trained, acted = getattr(batch.inputs, name), torch.cat([getattr(steps, name) for steps in fed], dim=1)
        assert acted.shape == trained.shape, name
        assert torch.allclose(acted.float(), trained.float(), atol=1e-5), f"{layout}: {name} differs"
