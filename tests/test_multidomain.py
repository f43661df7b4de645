"""Multi-domain training: domain-balanced batches, one forward for action spaces of different sizes,
per-task preprocessing that a generalist agent picks from the env it is bound to."""

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch

from lram_agents import Agent
from lram_agents.action_head import ActionSpec
from lram_agents.data import DatasetError, DataSource, TrajectoryDataset, TrajectorySampler
from lram_agents.data.domain_sources import domain_sources
from lram_agents.data.format import write_episodes
from lram_agents.data.sampler import merge_compatible
from lram_agents.encoders import ImpalaCNN, NatureCNN
from lram_agents.model import LRAMModel
from lram_agents.preprocessing import Preprocessing, multi_task_preprocessing
from lram_agents.run_configs import TrainConfig, build_sources
from trajectory_helpers import make_episode, tiny_config, write_dataset

BOX = lambda n: gym.spaces.Box(-1.0, 1.0, (n,), np.float32)  # noqa: E731


def _sources(tmp_path, specs):
    """One source per (name, obs_dim, action_space)."""
    sources = []
    for i, (name, obs_dim, action_space) in enumerate(specs):
        obs = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
        (tmp_path / name).mkdir()
        write_dataset(tmp_path / name, [12, 9, 15], obs, action_space, seed=i)
        sources.append(DataSource(TrajectoryDataset(tmp_path / name, name=name), context=6))
    return sources


def test_rows_of_different_action_sizes_share_a_forward_with_each_rows_own_loss(tmp_path):
    specs = [("c2", 3, BOX(2)), ("c3", 5, BOX(3)), ("d3", 4, gym.spaces.Discrete(3)), ("d5", 2, gym.spaces.Discrete(5))]
    sources = _sources(tmp_path, specs)
    torch.manual_seed(0)
    model = LRAMModel(tiny_config())
    sampler = TrajectorySampler(sources, model.config, batch_size=8, seed=1)
    windows = sampler.plan(0)
    separate = [p for i in range(len(sources)) for p in sampler.load([w for w in windows if w.source == i])]
    merged = merge_compatible(separate)
    assert sorted(p.source for p in merged) == ["c2+c3", "d3+d5"]  # two forwards instead of four
    for part in merged:
        assert part.action_sizes is not None and part.spec.size == max(part.action_sizes.tolist())

    def summed(parts):
        total = 0.0
        for p in parts:
            logits = model(p.inputs).logits
            total = total + model.head.loss(logits, p.actions, p.spec, p.mask, p.action_sizes) * p.mask.sum()
        return total

    model.zero_grad()
    reference = summed(separate)
    reference.backward()
    grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad()
    candidate = summed(merged)
    candidate.backward()
    assert candidate.item() == pytest.approx(reference.item(), rel=1e-5)
    for a, b in zip(grads, [p.grad for p in model.parameters() if p.grad is not None]):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)


def test_discrete_rows_never_put_probability_on_classes_beyond_their_space():
    head_logits = torch.zeros(2, 1, 18)
    head_logits[0, 0, 4] = 50.0  # row 0 (3 actions) would pick class 4 if it were not masked
    from lram_agents.action_head import ActionHead

    head = ActionHead(4, num_discrete=18, max_dims=1, num_bins=4)
    logits = torch.cat([head_logits, torch.zeros(2, 1, 4)], dim=-1)
    actions = torch.tensor([[0], [4]])
    masked = head.loss(logits, actions, ActionSpec("discrete", 5), sizes=torch.tensor([3, 5]))
    row0 = head.loss(logits[:1], actions[:1], ActionSpec("discrete", 3))
    row1 = head.loss(logits[1:], actions[1:], ActionSpec("discrete", 5))
    assert masked.item() == pytest.approx((row0.item() + row1.item()) / 2)


def test_every_domain_gets_its_share_of_every_batch_whatever_its_number_of_tasks(tmp_path):
    # domain A: 5 tasks of weight 1/5, domain B: 1 task; batch 6 -> 3 rows each, every step
    specs = [(f"a{i}", 3, BOX(2)) for i in range(5)] + [("b", 3, BOX(2))]
    sources = _sources(tmp_path, specs)
    for s in sources[:5]:
        s.weight = 1 / 5
    sampler = TrajectorySampler(sources, tiny_config(), batch_size=6, seed=0)
    per_task = np.zeros(5)
    for step in range(200):
        counts = sampler._counts(step)
        assert sum(counts[:5]) == 3 and counts[5] == 3
        assert all(c in (0, 1) for c in counts[:5])
        per_task += counts[:5]
    assert per_task.min() > 0.8 * 200 * 3 / 5  # tasks of a domain share its rows evenly


def _domain_folder(root, domain, task, env_id, obs_dim, action_space, returns_seed):
    folder = root / domain / task
    folder.mkdir(parents=True)
    rng = np.random.default_rng(returns_seed)
    obs = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
    episodes = [make_episode(n, rng, obs, action_space) for n in (10, 12)]
    write_episodes(folder / "part-0000.h5", episodes, obs, action_space, domain=domain, env_id=env_id)
    return max(float(e.rewards.sum()) for e in episodes)


def test_domain_sources_read_each_task_folder_with_its_domains_numbers(tmp_path):
    best = {}
    for task in ("reach", "push"):
        best[task] = _domain_folder(tmp_path, "metaworld", task, f"lram_agents/MetaWorld-{task}-v0", 39, BOX(4), len(task))
    _domain_folder(tmp_path, "dmcontrol", "walker-run", "lram_agents/DMControl-walker-run-v0", 24, BOX(6), 7)
    sources = domain_sources(tmp_path, ["metaworld", "dmcontrol"], tasks={"metaworld": ["reach", "push"], "dmcontrol": ["walker-run"]})
    assert [s.name for s in sources] == ["metaworld/reach", "metaworld/push", "dmcontrol/walker-run"]
    assert [s.weight for s in sources] == [0.5, 0.5, 1.0]
    assert [s.preprocessing.reward_scale for s in sources] == [200.0, 200.0, 100.0]
    assert sources[0].preprocessing.target_return == pytest.approx(best["reach"])
    with pytest.raises(DatasetError, match=r"walker-stand.*generate_data.py examples/domains/dmcontrol.yaml"):
        domain_sources(tmp_path, ["dmcontrol"])  # all 11 training tasks asked for, one recorded
    with pytest.raises(ValueError, match="bin-picking.*not train tasks"):
        domain_sources(tmp_path, ["metaworld"], tasks={"metaworld": ["bin-picking"]})


def test_a_top_fraction_keeps_each_tasks_best_episodes_and_its_target(tmp_path):
    best = _domain_folder(tmp_path, "metaworld", "reach", "lram_agents/MetaWorld-reach-v0", 39, BOX(4), 3)
    (full,) = domain_sources(tmp_path, ["metaworld"], tasks={"metaworld": ["reach"]})
    (top,) = domain_sources(tmp_path, ["metaworld"], tasks={"metaworld": ["reach"]}, top_fraction=0.5)
    assert len(full.dataset.table) == 2 and len(top.dataset.table) == 1
    assert top.dataset.table.total_return.tolist() == [pytest.approx(best)]
    assert top.preprocessing.target_return == full.preprocessing.target_return == pytest.approx(best)
    with pytest.raises(Exception, match="top_fraction"):
        TrainConfig.from_dict({"output_dir": "x", "steps": 1, "model": {"preset": {}}, "data": [{"domains": ["atari"], "top_fraction": 0}]})


def test_train_config_expands_a_domains_entry(tmp_path):
    _domain_folder(tmp_path, "metaworld", "reach", "lram_agents/MetaWorld-reach-v0", 39, BOX(4), 0)
    cfg = TrainConfig.from_dict({"output_dir": str(tmp_path / "run"), "steps": 1, "model": {"preset": {"backbone": "xlstm"}},
                                 "data": [{"domains": ["metaworld"], "root": str(tmp_path), "tasks": {"metaworld": ["reach"]}}]})
    (source,) = build_sources(cfg.data, cfg.trainer)
    assert source.name == "metaworld/reach" and source.context == cfg.trainer.context
    with pytest.raises(Exception, match="exactly one of path and domains"):
        TrainConfig.from_dict({"output_dir": "x", "steps": 1, "model": {"preset": {}}, "data": [{"path": "a", "domains": ["atari"]}]})


def test_a_generalist_agent_takes_the_numbers_of_the_task_it_is_bound_to():
    pre = multi_task_preprocessing([
        ("lram_agents/MetaWorld-reach-v0", "metaworld", Preprocessing(reward_scale=200.0, target_return=1800.0)),
        ("lram_agents/MetaWorld-push-v0", "metaworld", Preprocessing(reward_scale=200.0, target_return=1600.0)),
        ("CartPole-v1", "", Preprocessing(reward_scale=1.0, target_return=500.0)),
    ])
    assert pre.for_env("lram_agents/MetaWorld-push-v0").target_return == 1600.0
    assert pre.for_env("lram_agents/MetaWorld-hand-insert-v0").target_return == 1700.0  # hold-out: the domain's median
    assert pre.for_env("lram_agents/DMControl-walker-run-v0") is None and pre.for_env("Pendulum-v1") is None
    assert Preprocessing(**dataclasses.asdict(pre)) == pre  # the table survives the JSON form

    config = dataclasses.replace(tiny_config(), max_state_dim=8)
    agent = Agent(LRAMModel(config), pre)
    agent.bind(gym.make("CartPole-v1"))
    assert (agent.reward_scale, agent.target_return) == (1.0, 500.0)
    with pytest.raises(ValueError, match="Acrobot-v1"):
        agent.bind(gym.make("Acrobot-v1"))
    fixed = Agent(LRAMModel(config), pre, target_return=123.0).bind(gym.make("CartPole-v1"))
    assert fixed.target_return == 123.0  # a target the user gave wins


def test_nature_cnn_is_the_cheap_image_encoder_option():
    config = dataclasses.replace(tiny_config(), image_shape=(1, 64, 64), image_encoder="nature")
    model = LRAMModel(config)
    assert isinstance(model.image_encoder, NatureCNN)
    assert isinstance(LRAMModel(dataclasses.replace(config, image_encoder="impala")).image_encoder, ImpalaCNN)
    out = model.image_encoder(torch.randint(0, 256, (2, 3, 1, 64, 64), dtype=torch.uint8))
    assert out.shape == (2, 3, config.d_model)
    assert "image_encoder" not in dataclasses.replace(config, image_encoder="impala").to_dict()  # old config.json files unchanged
    assert type(config).from_dict(config.to_dict()) == config
    with pytest.raises(Exception, match="image_encoder"):
        dataclasses.replace(config, image_encoder="resnet")
