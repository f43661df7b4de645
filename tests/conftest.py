"""Shared fixtures: small configs of every backbone, and random model inputs."""

from __future__ import annotations

import pytest
import torch

from lram_agents.backbones import MambaConfig, RATEConfig, TransformerConfig, XLSTMConfig
from lram_agents.config import LRAMConfig
from lram_agents.model import Timesteps

# Small versions of every backbone, keyed by a readable id. Tests parametrised over this dict
# cover a new backbone as soon as it is added here.
SMALL_BACKBONES = {
    "xlstm-7:1": XLSTMConfig(d_model=64, num_blocks=4, num_heads=4, slstm_at=[1], chunk_size=16, context_tokens=96),
    "xlstm-1:0": XLSTMConfig(d_model=64, num_blocks=3, num_heads=4, slstm_at=[], chunk_size=16, context_tokens=96),
    "transformer": TransformerConfig(d_model=64, num_layers=2, num_heads=4, max_positions=96),
    "transformer-alibi": TransformerConfig(d_model=64, num_layers=2, num_heads=4, max_positions=96, position_embedding="alibi"),
    "transformer-rope": TransformerConfig(d_model=64, num_layers=2, num_heads=4, max_positions=96, position_embedding="rope"),
    "mamba": MambaConfig(d_model=64, num_layers=3, d_state=16),
    # 12 tokens: segments of 4 timesteps of 3 tokens or 3 of 4, so the tests cross segment boundaries
    "rate": RATEConfig(d_model=64, num_layers=2, num_heads=4, segment_tokens=12, num_memory_tokens=3, cache_tokens=12),
    # the authors' T-Maze setup: no cache, the memory retention valve
    "rate-mrv": RATEConfig(d_model=64, num_layers=2, num_heads=4, segment_tokens=12, num_memory_tokens=3, cache_tokens=0, mrv_heads=2),
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
    return steps.map(lambda t: t[index])


def assert_backbones_agree(reference, candidate, x, loss_of, tol: float, grad_rtol: float, grad_atol: float) -> None:
    """Two backbones with the same weights on ``x``: outputs, every state tensor and every parameter's gradient
    of ``loss_of(y, state)`` agree (outputs and states to ``tol``, relative and absolute)."""
    candidate.load_state_dict(reference.state_dict())
    results = []
    for model in (reference, candidate):
        y, state = model(x)
        loss_of(y, state).backward()
        grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
        results.append((y.detach(), {k: v.detach() for k, v in state.items()}, grads))
    (y0, s0, g0), (y1, s1, g1) = results
    torch.testing.assert_close(y1, y0, rtol=tol, atol=tol)
    assert set(s1) == set(s0)
    for name in s0:
        torch.testing.assert_close(s1[name], s0[name], rtol=tol, atol=tol, msg=lambda m: f"state {name}: {m}")
    assert set(g1) == set(g0) and g0
    for name in g0:
        torch.testing.assert_close(g1[name], g0[name], rtol=grad_rtol, atol=grad_atol, msg=lambda m: f"{name}: {m}")


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)


@pytest.fixture
def counter_backbone(monkeypatch):
    """Registers the test-only counter backbone (see stubs.py) for the duration of a test."""
    from lram_agents.backbones import BACKBONES
    from stubs import CounterBackbone, CounterConfig

    monkeypatch.setitem(BACKBONES, "counter", (CounterConfig, CounterBackbone))


@pytest.fixture
def one_thread():
    """Training tests run single-threaded: with tiny models on a loaded 2-core machine, a second torch
    thread made a training step ~20x slower (measured: 0.11 s vs 2.5 s per step)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
