"""The trainer: schedule, pickle-free optimizer state, accumulation, callbacks, outputs, checkpoint safety."""

import copy
import math

import pytest
import torch
from safetensors.torch import load_file, save_file

from lram_agents.data import DataSource, TrajectoryDataset, TrajectorySampler
from lram_agents.data.sampler import merge_compatible
from lram_agents.model import LRAMModel
from lram_agents.serialization import CheckpointError
from lram_agents.training import Callback, Trainer, TrainerConfig
from lram_agents.training import checkpoint as ckpt
from lram_agents.training.distributed import DistInfo
from lram_agents.training.schedule import WarmupCosine, warmup_cosine
from lram_agents.training.trainer import _Objective, build_optimizer
from trajectory_helpers import CONTINUOUS, VECTOR_SPACE, tiny_config, write_dataset


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py says why


@pytest.fixture
def dataset(tmp_path):
    write_dataset(tmp_path / "data", [14, 9, 20, 11, 16, 8], seed=3)
    return TrajectoryDataset(tmp_path / "data")


def quick_config(**changes) -> TrainerConfig:
    base = dict(batch_size=4, context=8, warmup_steps=2, learning_rate=3e-3, log_every=1, checkpoint_every=4, progress=False)
    return TrainerConfig(**{**base, **changes})


def test_lram_schedule_warms_up_linearly_then_decays_to_the_floor():
    schedule = WarmupCosine(4000, 200_000, 1e-6 / 1e-4)
    assert schedule(0) == pytest.approx(1 / 4000) and schedule(1999) == pytest.approx(0.5) and schedule(3999) == 1.0
    assert schedule(102_000) == pytest.approx(0.5 * (1 + 0.01))  # half-way through the cosine
    assert schedule(200_000) == pytest.approx(0.01) and schedule(250_000) == pytest.approx(0.01)
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-4)
    scheduler = warmup_cosine(optimizer, 4000, 200_000, 1e-4, 1e-6)
    for _ in range(4000):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)


def test_optimizer_state_round_trips_through_safetensors_and_json(tmp_path):
    model = LRAMModel(tiny_config())
    optimizer = build_optimizer(model, TrainerConfig())
    for _ in range(2):
        optimizer.zero_grad()
        model.head.proj.weight.square().sum().backward()
        optimizer.step()
    tensors, meta = ckpt.flatten_optimizer_state(optimizer.state_dict())
    save_file(tensors, tmp_path / "opt.safetensors")
    restored_model = copy.deepcopy(model)
    restored = build_optimizer(restored_model, TrainerConfig())
    restored.load_state_dict(ckpt.unflatten_optimizer_state(load_file(tmp_path / "opt.safetensors"), meta))
    for m, opt in ((model, optimizer), (restored_model, restored)):
        opt.zero_grad()
        m.head.proj.weight.square().sum().backward()
        opt.step()
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), restored_model.parameters()))


def test_gradient_accumulation_equals_one_large_batch(dataset):
    sampler = TrajectorySampler(DataSource(dataset, context=8), tiny_config(), batch_size=3, seed=0)
    first, second = sampler.batch(0)[0], sampler.batch(1)[0]
    models = []
    for micro in ([[first], [second]], [merge_compatible([first, second])]):
        torch.manual_seed(0)
        trainer = Trainer(LRAMModel(tiny_config()), quick_config())
        trainer.dist = DistInfo(0, 1, 0, torch.device("cpu"))
        trainer.optimizer = build_optimizer(trainer.model, trainer.config)
        trainer.scheduler = warmup_cosine(trainer.optimizer, 2, 10, 3e-3, 1e-6)
        loss, _ = trainer._train_step(_Objective(trainer.model), micro)
        models.append((loss, trainer.model))
    (loss_a, a), (loss_b, b) = models
    assert loss_a == pytest.approx(loss_b, rel=1e-6)
    assert all(torch.allclose(p, q, atol=1e-6) for p, q in zip(a.parameters(), b.parameters()))


class Recorder(Callback):
    def __init__(self, stop_at=None):
        super().__init__()
        self.events, self.stop_at = [], stop_at

    def on_training_start(self):
        self.events.append(("start", self.trainer.step))

    def on_step(self):
        self.events.append(("step", self.trainer.step, round(self.trainer.metrics["loss"], 6)))
        return self.trainer.step != self.stop_at

    def on_training_end(self):
        self.events.append(("end", self.trainer.step))


def test_fit_writes_metrics_plot_checkpoints_and_model(tmp_path, dataset):
    callback = Recorder()
    config = quick_config(validation_fraction=0.3, validation_every=3, validation_batches=2, grad_accum_steps=2)
    result = Trainer(LRAMModel(tiny_config()), config, tmp_path / "run", callbacks=[callback]).fit(dataset, 6)
    assert result.step == 6 and not result.stopped_early and math.isfinite(result.loss)
    assert [e[0] for e in callback.events] == ["start"] + ["step"] * 6 + ["end"]
    run = tmp_path / "run"
    lines = (run / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith("step,") and len(lines) == 7
    val = [line.split(",") for line in lines[1:] if line.split(",")[-1]]
    assert [int(v[0]) for v in val] == [3, 6] and all(float(v[-1]) == pytest.approx(math.exp(float(v[-2]))) for v in val)
    assert (run / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in ckpt.list_checkpoints(run / "checkpoints")] == ["step-00000004", "step-00000006"]
    loaded = LRAMModel.from_pretrained(run / "model")
    assert (run / "model" / "preprocessing.json").exists() and loaded.config == tiny_config()


def test_a_callback_stops_training_and_the_state_is_saved(tmp_path, dataset):
    result = Trainer(LRAMModel(tiny_config()), quick_config(), tmp_path, callbacks=[Recorder(stop_at=3)]).fit(dataset, 10)
    assert result.stopped_early and result.step == 3 and result.checkpoint.name == "step-00000003"


def test_resume_refuses_changed_data_and_fresh_runs_refuse_old_checkpoints(tmp_path, dataset):
    Trainer(LRAMModel(tiny_config()), quick_config(), tmp_path).fit(dataset, 4)
    with pytest.raises(CheckpointError, match="already holds checkpoints"):
        Trainer(LRAMModel(tiny_config()), quick_config(), tmp_path).fit(dataset, 4)
    with pytest.raises(CheckpointError, match="sampler differs"):
        Trainer(LRAMModel(tiny_config()), quick_config(seed=5), tmp_path).fit(dataset, 8, resume=True)
    with pytest.raises(CheckpointError, match="nothing to resume"):
        Trainer(LRAMModel(tiny_config()), quick_config(), tmp_path / "empty").fit(dataset, 8, resume=True)
    result = Trainer(LRAMModel(tiny_config()), quick_config(), tmp_path).fit(dataset, 6, resume=True)
    assert result.step == 6


def test_a_damaged_checkpoint_is_detected_and_skipped(tmp_path, dataset):
    Trainer(LRAMModel(tiny_config()), quick_config(checkpoint_every=2), tmp_path).fit(dataset, 4)
    newest = tmp_path / "checkpoints" / "step-00000004"
    raw = bytearray((newest / "optimizer.safetensors").read_bytes())
    raw[-5] ^= 0xFF
    (newest / "optimizer.safetensors").write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="optimizer.safetensors.*corrupted"):
        ckpt.verify_checkpoint(newest)
    assert ckpt.latest_valid_checkpoint(tmp_path / "checkpoints").name == "step-00000002"


def test_worker_processes_load_the_same_batches(tmp_path, dataset):
    curves = []
    for workers in (0, 2):
        torch.manual_seed(0)
        Trainer(LRAMModel(tiny_config()), quick_config(num_workers=workers), tmp_path / f"w{workers}").fit(dataset, 3)
        curves.append((tmp_path / f"w{workers}" / "metrics.csv").read_text().splitlines())
    column = lambda lines: [line.split(",")[3] for line in lines]  # noqa: E731  (the loss)
    assert column(curves[0]) == column(curves[1])


def test_bf16_autocast_trains_on_cpu_when_asked(tmp_path, dataset):
    losses = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        losses[precision] = Trainer(LRAMModel(tiny_config()), quick_config(precision=precision), tmp_path / precision).fit(dataset, 2).loss
    assert losses["bf16"] != losses["fp32"] and losses["bf16"] == pytest.approx(losses["fp32"], rel=0.05)


def test_mixed_domains_train_together(tmp_path):
    write_dataset(tmp_path / "a", [10, 12], VECTOR_SPACE, seed=1)
    write_dataset(tmp_path / "b", [9, 15], VECTOR_SPACE, CONTINUOUS, seed=2)
    sources = [TrajectoryDataset(tmp_path / "a"), TrajectoryDataset(tmp_path / "b")]
    result = Trainer(LRAMModel(tiny_config(include_actions=True)), quick_config(), tmp_path / "run").fit(sources, 2)
    assert math.isfinite(result.loss)
    assert not (tmp_path / "run" / "model" / "preprocessing.json").exists()  # no single domain to describe


def test_a_warm_up_longer_than_the_run_is_reported(tmp_path, dataset):
    # the README's fine-tuning snippet once ran 300 steps under the default 4,000 warm-up steps: lr <= 7.5e-6
    config = quick_config(warmup_steps=4000, learning_rate=1e-4)
    with pytest.warns(UserWarning, match=r"warmup_steps=4000 is longer than the run's 2 steps: the learning rate stays below 5e-08"):
        Trainer(LRAMModel(tiny_config()), config, tmp_path / "run").fit(dataset, 2)
