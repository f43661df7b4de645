"""RATE's curriculum as a sampler (data.curriculum) and segment-wise training in the Trainer."""

import copy

import pytest
import torch

from lram_agents.data import DataSource, TrajectoryDataset, TrajectorySampler
from lram_agents.data.curriculum import CurriculumSampler, curriculum_sampler, stage_dataset
from lram_agents.data.format import DatasetError
from lram_agents.model import LRAMModel
from lram_agents.segments import curriculum, detach_state, segment_forward
from lram_agents.training import Trainer, TrainerConfig
from lram_agents.training.trainer import _Objective, build_optimizer
from trajectory_helpers import tiny_config, write_dataset

K = 4  # timesteps per segment
LENGTHS = [3, 4, 6, 8, 11, 12, 2, 7]  # 1, 1, 2, 2, 3, 3, 1, 2 segments of K


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py says why


@pytest.fixture
def dataset(tmp_path):
    write_dataset(tmp_path / "data", LENGTHS, seed=1)
    return TrajectoryDataset(tmp_path / "data")


def test_stage_n_holds_the_episodes_of_at_most_n_segments(dataset):
    for stage in curriculum(3):
        lengths = sorted(stage_dataset(dataset, stage, K).table.length.tolist())
        assert lengths == sorted(n for n in LENGTHS if n <= stage.num_segments * K)
    with pytest.raises(DatasetError, match="at most 1 steps"):
        stage_dataset(dataset, curriculum(1)[0], 1)


def test_batches_come_from_their_stage_and_are_reproducible(dataset):
    sampler = curriculum_sampler(dataset, tiny_config(), batch_size=4, segment_steps=K, max_segments=3, batches_per_stage=2)
    assert sampler.total_batches == 6 and [sampler.stage_index(i) for i in range(8)] == [0, 0, 1, 1, 2, 2, 2, 2]
    for i in range(6):
        (batch,) = sampler.batch(i)
        stage = sampler.stage_index(i) + 1
        assert batch.mask.shape[1] == stage * K  # windows of the stage's n·K steps from the episode's start
        assert int(batch.mask.sum(1).max()) <= stage * K
    again = curriculum_sampler(dataset, tiny_config(), batch_size=4, segment_steps=K, max_segments=3, batches_per_stage=2)
    assert torch.equal(sampler.batch(3)[0].actions, again.batch(3)[0].actions)
    assert sampler.state_dict() == again.state_dict()
    with pytest.raises(ValueError, match="batches_per_stage"):
        CurriculumSampler(sampler.stages, 0)
    with pytest.raises(ValueError, match="at least one stage"):
        CurriculumSampler([], 1)


def test_segment_wise_objective_is_segment_forward(dataset):
    torch.manual_seed(0)
    model = LRAMModel(tiny_config())
    (batch,) = TrajectorySampler(DataSource(dataset, context=12, windows="from_start"), model.config, 4, seed=0).batch(0)
    logits = segment_forward(model, batch.inputs, K).logits
    expected = model.head.loss(logits, batch.actions, batch.spec, batch.mask) * batch.mask.sum()
    assert _Objective(model, K)([batch]).item() == pytest.approx(expected.item(), rel=1e-6)
    whole = _Objective(model)([batch])
    assert whole.item() == pytest.approx(expected.item(), rel=1e-4)  # same values, only the gradients differ
    model.zero_grad()
    _Objective(model, K)([batch]).backward()
    segmented = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad()
    whole.backward()
    full = [p.grad for p in model.parameters() if p.grad is not None]
    assert any(not torch.allclose(a, b, atol=1e-7) for a, b in zip(segmented, full))  # detached between segments


def test_the_trainer_runs_a_curriculum_segment_wise_and_resumes(tmp_path, dataset):
    def run(steps, resume):
        torch.manual_seed(0)
        model = LRAMModel(tiny_config())
        sampler = curriculum_sampler(dataset, model.config, batch_size=4, segment_steps=K, max_segments=3, batches_per_stage=2)
        config = TrainerConfig(batch_size=4, warmup_steps=1, learning_rate=3e-3, log_every=1, checkpoint_every=3,
                               progress=False, segment_steps=K)
        return Trainer(model, config, output_dir=tmp_path / "run", device="cpu").fit(sampler, steps=steps, resume=resume)

    first = run(3, resume=False)
    assert first.step == 3
    resumed = run(6, resume=True)
    assert resumed.step == 6 and resumed.loss == resumed.loss  # not NaN
    with pytest.raises(ValueError, match="segment_steps"):
        TrainerConfig(segment_steps=0)


def test_update_per_segment_steps_the_optimizer_after_every_segment(tmp_path, dataset):
    torch.manual_seed(0)
    model = LRAMModel(tiny_config()).train()
    reference = copy.deepcopy(model)
    sampler = TrajectorySampler(DataSource(dataset, context=2 * K, windows="from_start"), model.config, 4, seed=0)
    config = TrainerConfig(batch_size=4, warmup_steps=0, learning_rate=1e-2, min_learning_rate=1e-2, grad_clip=0.5, log_every=1,
                           progress=False, segment_steps=K, update_per_segment=True)
    trainer = Trainer(model, config, output_dir=tmp_path / "run", device="cpu")
    trainer.fit(sampler, steps=1)
    # by hand, as RATE's authors train: AdamW stepped after each of the window's two segments, the second
    # segment starting from the (detached) state the first one left before its update
    (batch,) = sampler.batch(0)
    assert batch.mask[:, K:].any()  # both segments have targets
    optimizer, state = build_optimizer(reference, config), None
    for seg in (slice(0, K), slice(K, 2 * K)):
        optimizer.zero_grad()
        out = reference(batch.inputs.map(lambda t: t[:, seg]), state)
        state = detach_state(out.state)
        reference.head.loss(out.logits, batch.actions[:, seg], batch.spec, batch.mask[:, seg]).backward()
        torch.nn.utils.clip_grad_norm_(reference.parameters(), 0.5)
        optimizer.step()
    for trained, expected in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(trained, expected, atol=1e-6, rtol=1e-5)
    assert {int(s["step"]) for s in trainer.optimizer.state.values()} == {2}  # two updates in one trainer step
    # one update per window (the default) ends elsewhere
    torch.manual_seed(0)
    once = LRAMModel(tiny_config())
    Trainer(once, TrainerConfig(**{**config.to_dict(), "update_per_segment": False}), output_dir=tmp_path / "once",
            device="cpu").fit(sampler, steps=1)
    assert any(not torch.allclose(a, b, atol=1e-6) for a, b in zip(once.parameters(), model.parameters()))


def test_update_per_segment_needs_segments_and_no_accumulation():
    with pytest.raises(ValueError, match="update_per_segment.*needs segment_steps"):
        TrainerConfig(update_per_segment=True)
    with pytest.raises(ValueError, match="grad_accum_steps=2"):
        TrainerConfig(update_per_segment=True, segment_steps=K, grad_accum_steps=2)
