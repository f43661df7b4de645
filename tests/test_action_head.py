import gymnasium as gym
import numpy as np
import pytest
import torch

from lram_agents.action_head import ActionHead, ActionSpec


def test_spec_from_spaces():
    assert ActionSpec.from_space(gym.spaces.Discrete(5)) == ActionSpec("discrete", 5)
    assert ActionSpec.from_space(gym.spaces.Box(-1, 1, (6,))) == ActionSpec("continuous", 6)
    with pytest.raises(TypeError):
        ActionSpec.from_space(gym.spaces.Box(-np.inf, np.inf, (2,)))


def test_head_has_the_papers_2066_classes():
    head = ActionHead(32)
    assert head.proj.out_features == 18 + 8 * 256 == 2066


def test_padded_continuous_dims_do_not_affect_the_loss():
    head = ActionHead(8, max_dims=8, num_bins=16)
    logits = torch.randn(2, 3, 18 + 8 * 16, requires_grad=True)
    spec = ActionSpec("continuous", 3)
    head.loss(logits, torch.rand(2, 3, 3) * 2 - 1, spec).backward()
    grad = logits.grad[..., 18:].unflatten(-1, (8, 16))
    assert grad[..., :3, :].abs().sum() > 0
    assert grad[..., 3:, :].abs().sum() == 0 and logits.grad[..., :18].abs().sum() == 0


def test_discrete_loss_uses_only_the_envs_actions_and_the_mask():
    head = ActionHead(8)
    logits = torch.randn(2, 4, 2066, requires_grad=True)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    head.loss(logits, torch.randint(0, 4, (2, 4)), ActionSpec("discrete", 4), mask).backward()
    assert logits.grad[..., 4:].abs().sum() == 0
    assert logits.grad[0, 2:].abs().sum() == 0 and logits.grad[0, :2].abs().sum() > 0


def test_decode_picks_bin_centres_and_samples():
    head = ActionHead(8, num_bins=4, max_dims=2)
    logits = torch.full((1, 18 + 8), -10.0)
    logits[0, 18 + 3] = 10.0  # dim 0 -> bin 3
    logits[0, 18 + 4 + 0] = 10.0  # dim 1 -> bin 0
    action = head.decode(logits, ActionSpec("continuous", 2))
    assert torch.allclose(action, torch.tensor([[0.75, -0.75]]))
    g = torch.Generator().manual_seed(0)
    sampled = head.decode(torch.zeros(1000, 2066), ActionSpec("discrete", 3), deterministic=False, generator=g)
    assert set(sampled.tolist()) == {0, 1, 2}
    with pytest.raises(ValueError, match="temperature"):
        head.decode(logits, ActionSpec("discrete", 3), deterministic=False, temperature=0.0)
    with pytest.raises(ValueError, match="size 20"):
        head.decode(logits, ActionSpec("discrete", 20))
