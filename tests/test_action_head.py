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


def test_mean_decoding_is_the_expected_bin_centre():
    """Two equal peaks: argmax picks one of them, the mean lies between them (a noisy demonstrator's average)."""
    head = ActionHead(d_model=8)
    spec = ActionSpec("continuous", 2)
    logits = torch.full((1, head.proj.out_features), -1e4)
    lo, hi = head.tokenizer.encode_continuous(torch.tensor([-0.5, 0.5])).tolist()
    start = head.num_discrete  # the continuous bins follow the discrete classes
    for dim in range(2):
        logits[0, start + dim * head.num_bins + lo] = 0.0
        logits[0, start + dim * head.num_bins + hi] = 0.0
    argmax = head.decode(logits, spec)
    mean = head.decode(logits, spec, continuous="mean")
    midpoint = head.tokenizer.decode_continuous(torch.tensor([lo, hi])).mean()
    assert torch.allclose(mean, midpoint.expand(1, 2), atol=1e-6) and argmax.abs().min() > 0.4
    sampled = head.decode(logits, spec, deterministic=False, continuous="mean", generator=torch.Generator().manual_seed(0))
    assert sampled.abs().min() > 0.4  # sampling still samples bins
    with pytest.raises(ValueError, match="argmax"):
        head.decode(logits, spec, continuous="median")
