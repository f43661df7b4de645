"""Shared fixtures: small configs of every backbone, and random model inputs."""

from __future__ import annotations

import pytest
import torch

from lram_agents.backbones import MambaConfig, TransformerConfig, XLSTMConfig
from lram_agents.config import LRAMConfig
from lram_agents.model import Timesteps

# Small versions of every backbone, keyed by a readable id. Tests parametrised over this dict
# cover a new backbone as soon as it is added here.
SMALL_BACKBONES = {
    "xlstm-7:1": XLSTMConfig(d_model=64, num_blocks=4, num_heads=4, slstm_at=[1], chunk_size=16, context_tokens=96),
    "xlstm-1:0": XLSTMConfig(d_model=64, num_blocks=3, num_heads=4, slstm_at=[], chunk_size=16, context_tokens=96),
    "transformer": TransformerConfig(d_model=64, num_layers=2, num_heads=4, max_positions=96),
    "mamba": MambaConfig(d_model=64, num_layers=3, d_state=16),
}


def small_config(backbone_id: str, **overrides) -> LRAMConfig:
    return LRAMConfig(backbone=SMALL_BACKBONES[backbone_id], max_state_dim=12, **overrides)


def random_timesteps(batch: int, steps: int, state_dim: int = 5, image_shape=None, actions: int | None = None, seed: int = 0) -> Timesteps:
    g = torch.Generator().manual_seed(seed)
    if image_shape is None:
        states = torch.randn(batch, steps, state_dim, generator=g)
    else:
        states = torch.randint(0, 256, (batch, steps, *image_shape), generator=g, dtype=torch.uint8)
    prev_actions = None if actions is None else torch.randint(0, actions, (batch, steps), generator=g)
    return Timesteps(states, torch.randn(batch, steps, generator=g), torch.randn(batch, steps, generator=g), prev_actions)


def slice_steps(steps: Timesteps, index) -> Timesteps:
    """Timesteps restricted to ``index`` along (B, T), e.g. ``(slice(None), slice(3, 4))``."""
    pick = lambda t: None if t is None else t[index]  # noqa: E731
    return Timesteps(pick(steps.states), pick(steps.returns_to_go), pick(steps.prev_rewards), pick(steps.prev_actions))


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
