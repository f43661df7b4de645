"""DroQ: SAC whose critics use dropout + layer norm and many updates per step (Ant-Dir's source algorithm)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from lram_agents.envs.droq import DroQ, DroQCritic
from lram_agents.envs.source_rl import ALGORITHMS, make_source_algorithm, record_learning_history

TINY = {"learning_starts": 50, "batch_size": 32, "policy_kwargs": {"net_arch": [16, 16]}}


def layer_types(q_net: nn.Module) -> list[type]:
    return [type(m) for m in q_net]


def test_critics_have_dropout_and_layer_norm_after_each_hidden_layer():
    model = DroQ("MlpPolicy", gym.make("Pendulum-v1"), policy_kwargs={"net_arch": [16, 8], "dropout_rate": 0.2}, seed=0)
    assert model.gradient_steps == 20  # the paper's update-to-data ratio by default
    for critic in (model.critic, model.critic_target):
        assert isinstance(critic, DroQCritic) and len(critic.q_networks) == 2
        for q_net in critic.q_networks:
            names = [t.__name__ for t in layer_types(q_net)]
            assert names == ["Linear", "_FeatureDropout", "LayerNorm", "ReLU",
                             "Linear", "_FeatureDropout", "LayerNorm", "ReLU", "Linear"]
            assert q_net[1].p == 0.2 and q_net[2].normalized_shape == (16,) and q_net[6].normalized_shape == (8,)
    # the critics' registered modules are the new networks (the optimizer trains what forward uses)
    assert {id(p) for p in model.critic.parameters()} >= {id(p) for q in model.critic.q_networks for p in q.parameters()}
    # the actor stays SAC's plain MLP
    assert not any(isinstance(m, (nn.Dropout, nn.LayerNorm)) for m in model.actor.modules())


def test_dropout_is_active_in_training_and_in_the_target_and_off_when_acting():
    model = DroQ("MlpPolicy", gym.make("Pendulum-v1"), policy_kwargs={"net_arch": [64], "dropout_rate": 0.5}, seed=0)
    obs, actions = torch.zeros(64, 3) + 0.3, torch.zeros(64, 1) + 0.1
    model.policy.set_training_mode(True)
    first, second = model.critic(obs, actions)[0], model.critic(obs, actions)[0]
    assert not torch.allclose(first, second)  # identical rows differ: dropout draws per row
    target = model.critic_target(obs, actions)[0]
    assert target.std() > 0  # targets drawn with dropout too (the paper's Q_dr)
    model.policy.set_training_mode(False)
    assert torch.equal(model.critic(obs, actions)[0], model.critic(obs, actions)[0])


def test_droq_learns_and_records_a_history_on_ant_dir():
    assert ALGORITHMS["DroQ"] is DroQ
    history = record_learning_history("lram_agents/AntDir-v0", 0.5, total_timesteps=120, algorithm="DroQ", seed=0,
                                      algorithm_kwargs={**TINY, "gradient_steps": 2})
    assert history.algorithm == "DroQ" and len(history) == 120
    assert np.isfinite(history.rewards).all()


def test_gradient_steps_and_dropout_rate_are_checked_and_saved(tmp_path):
    with pytest.raises(ValueError, match="dropout_rate must be in"):
        DroQ("MlpPolicy", gym.make("Pendulum-v1"), policy_kwargs={"dropout_rate": 1.5})
    model = make_source_algorithm("lram_agents/HalfCheetahVel-v0", 1.0, algorithm="DroQ", seed=0,
                                  algorithm_kwargs={**TINY, "gradient_steps": 3,
                                                    "policy_kwargs": {"net_arch": [16], "dropout_rate": 0.05}})
    model.learn(60)
    model.save(tmp_path / "droq")
    loaded = DroQ.load(tmp_path / "droq")
    assert loaded.gradient_steps == 3 and loaded.critic.dropout_rate == 0.05
    obs = np.zeros((1, 17), dtype=np.float32)
    assert np.allclose(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
