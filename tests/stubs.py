"""Test doubles: a backbone whose action reveals its step counter, and a tiny env that records actions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lram_agents.config import LRAMConfig
from lram_agents.model import LRAMModel


@dataclass
class CounterConfig:
    d_model: int = 18
    type: Literal["counter"] = "counter"


class CounterBackbone(nn.Module):
    """Outputs one-hot(steps its state has seen since it was last emptied) at every token.

    With the head wired as the identity on the 18 discrete classes (:func:`counter_model`), the
    agent's discrete action is that count: 0 at a fresh start, 1 at the next step, ...
    """

    def __init__(self, config: CounterConfig):
        super().__init__()
        self.config = config
        self.d_model = config.d_model
        self.reset_masks: list[torch.Tensor] = []  # every mask passed to reset_state

    def init_state(self, batch_size, device=None, dtype=None):
        return {"count": torch.zeros(batch_size, dtype=torch.long, device=device)}

    def reset_state(self, state, mask):
        self.reset_masks.append(mask.clone())
        return {"count": torch.where(mask.to(state["count"].device), 0, state["count"])}

    def forward(self, x, state=None):
        B, L, _ = x.shape
        count = state["count"] if state is not None else torch.zeros(B, dtype=torch.long, device=x.device)
        y = F.one_hot(count % self.d_model, self.d_model).to(x.dtype)[:, None].expand(B, L, -1)
        return y, {"count": count + 1}


def counter_model(**overrides) -> LRAMModel:
    """An LRAMModel on the counter backbone (register it first: the ``counter_backbone`` fixture)."""
    model = LRAMModel(LRAMConfig(backbone=CounterConfig(), max_state_dim=4, **overrides)).eval()
    with torch.no_grad():
        model.head.proj.weight.zero_()
        model.head.proj.bias.zero_()
        model.head.proj.weight[:18, :18] = torch.eye(18)
    return model


class CountingEnv(gym.Env):
    """Episodes of ``length`` steps; reward t + 1 at step t; records every action it receives.

    Observation: [t / length, env_id]. 18 discrete actions, so a counter agent's actions are visible.
    """

    def __init__(self, length: int, env_id: int = 0, continuous: bool = False):
        self.length, self.env_id = length, env_id
        self.observation_space = gym.spaces.Box(-2.0, 2.0, (2,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32) if continuous else gym.spaces.Discrete(18)
        self.episodes: list[list] = []  # actions of each episode, in order
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.episodes.append([])
        return self._obs(), {}

    def step(self, action):
        self.episodes[-1].append(action.tolist() if isinstance(action, np.ndarray) and action.ndim else int(action))
        self.t += 1
        return self._obs(), float(self.t), self.t >= self.length, False, {}

    def _obs(self):
        noise = self.np_random.uniform(-0.5, 0.5) if self.np_random is not None else 0.0
        return np.array([self.t / self.length + noise, self.env_id], dtype=np.float32)


def record_logits(model: LRAMModel) -> list[torch.Tensor]:
    """Make ``model`` append the logits of its last timestep, (B, n), at every call to the returned list.

    Comparing logits rather than argmax actions makes a check sensitive to small differences in what
    the model remembers (a random small model's argmax barely depends on its context).
    """
    seen, forward = [], model.forward

    def recording(steps, state=None, episode_start=None):
        out = forward(steps, state, episode_start)
        seen.append(out.logits[:, -1].clone())
        return out

    model.forward = recording
    return seen


@dataclass
class IdentityConfig:
    d_model: int = 8
    type: Literal["identity"] = "identity"


class IdentityBackbone(nn.Module):
    """Passes its tokens through unchanged (no memory): the head sees the last token of the timestep."""

    def __init__(self, config: IdentityConfig):
        super().__init__()
        self.config, self.d_model = config, config.d_model

    def init_state(self, batch_size, device=None, dtype=None):
        return {"unused": torch.zeros(batch_size, device=device)}

    def reset_state(self, state, mask):
        return state

    def forward(self, x, state=None):
        return x, state if state is not None else self.init_state(x.shape[0], x.device)


def return_following_model() -> LRAMModel:
    """A model that acts 0 when asked for a positive return-to-go and 1 when asked for a negative one.

    The identity backbone hands the head the normalised R̂ token; the return encoder writes R̂ into
    feature 0 (and a constant into feature 1), and the head compares feature 0 against the mean.
    """
    model = LRAMModel(LRAMConfig(backbone=IdentityConfig(), max_state_dim=4)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.embed_norm.weight.fill_(1.0)
        model.return_encoder.proj.weight[0, 0] = 1.0
        model.return_encoder.proj.bias[1] = 1.0
        model.head.proj.weight[0, 0], model.head.proj.weight[1, 0] = 1.0, -1.0
    return model
