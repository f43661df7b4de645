"""The benchmark's plumbing (timings themselves are printed by benchmarks/latency.py, not asserted)."""

import dataclasses

import torch

from lram_agents import benchmark as bench
from lram_agents.model import LRAMModel
from lram_agents.presets import preset


def _tiny(backbone: str) -> LRAMModel:
    config = preset(backbone, "16m", image_shape=None)
    small = {"xlstm": dict(d_model=64, num_blocks=2, slstm_at=[]), "transformer": dict(d_model=64, num_layers=2, num_heads=4,
             position_embedding="sinusoidal"), "mamba": dict(d_model=64, num_layers=2)}[backbone]
    return LRAMModel(dataclasses.replace(config, backbone=dataclasses.replace(config.backbone, **small))).eval()


def test_synthetic_fill_has_the_shapes_of_a_real_rollout():
    for backbone in ("xlstm", "mamba", "transformer"):
        model = bench.with_capacity(_tiny(backbone), context=6, steps=4)
        synthetic, rolled = bench.filled_state(model, 2, 6), bench.filled_state(model, 2, 6, fill="rollout")
        assert {k: v.shape for k, v in synthetic.items()} == {k: v.shape for k, v in rolled.items()}
        assert bench.state_bytes(synthetic, 6) == bench.state_bytes(rolled, 6)


def test_kv_cache_memory_grows_with_context_and_recurrent_state_does_not():
    tf, xl = _tiny("transformer"), _tiny("xlstm")
    sizes = {c: (bench.state_bytes(bench.filled_state(bench.with_capacity(tf, c, 1), 1, c), c),
                 bench.state_bytes(bench.filled_state(xl, 1, c), c)) for c in (10, 40)}
    assert sizes[40][0] > 3 * sizes[10][0] and sizes[40][1] == sizes[10][1]


def test_a_cell_is_measured_and_reported(tmp_path):
    results = [bench.measure(name, _tiny(name.split("-")[0]), "latency", 1, 10, 4, "synthetic", 2**30, None)
               for name in ("xlstm-1:0", "transformer")]
    results.append(bench.measure("transformer", _tiny("transformer"), "latency", 16, 50, 4, "synthetic", 1.0, None))
    assert all(r.median_ms > 0 and r.floor_ms > 0 and r.state_mb > 0 for r in results[:2])
    assert results[2].note.startswith("skipped") and results[2].median_ms != results[2].median_ms  # NaN
    bench.write_csv(results, tmp_path / "r.csv")
    table = bench.markdown_tables(results)
    bench.plot(results, tmp_path / "p.png")
    assert "xlstm-1:0" in table and (tmp_path / "p.png").stat().st_size > 10_000
    assert len((tmp_path / "r.csv").read_text().splitlines()) == 4


def test_xlstm_package_step_reference_runs():
    config = dataclasses.replace(preset("xlstm", "16m", "1:0", image_shape=None))
    config = dataclasses.replace(config, backbone=dataclasses.replace(config.backbone, d_model=64, num_blocks=2))
    assert bench.xlstm_package_step_ms(config, steps=2) > 0
    assert torch.get_num_threads() >= 1


def test_env_loop_times_the_agent_and_the_simulator():
    config = _tiny("xlstm").config
    result = bench.env_loop("xlstm", config, "lram_agents/TMaze-v0", episodes=2, env_kwargs={"corridor_length": 8})
    assert result.steps == 10 and result.agent_ms > 0 and result.env_ms > 0
    assert "xlstm" in bench.loop_table([result], "lram_agents/TMaze-v0")


def test_floor_is_the_bytes_a_step_reads_over_the_measured_bandwidth():
    xl, tf = _tiny("xlstm"), bench.with_capacity(_tiny("transformer"), context=30, steps=10)
    weights = {m: sum(p.numel() * p.element_size() for p in m.parameters()) for m in (xl, tf)}  # no image encoder
    state = bench.filled_state(xl, 2, 10)
    assert bench.step_bytes(xl, state, 10) == weights[xl] + sum(t.numel() * 4 for t in state.values() if t.is_floating_point())
    # a KV cache counts only as far as it is filled: 10 timesteps more = 30 tokens x layers x (k, v) x d_model x 4 bytes
    cache = bench.filled_state(tf, 1, 30)
    grown = bench.step_bytes(tf, cache, 30) - bench.step_bytes(tf, cache, 20)
    assert grown == 30 * tf.config.backbone.num_layers * 2 * tf.config.backbone.d_model * 4
    bandwidth = bench.read_bandwidth(torch.ones(2**20), None)
    assert 1e8 < bandwidth < 1e13  # bytes/s of a plain read: between 0.1 GB/s and 10 TB/s
    wall, cpu, floor = bench.time_step_and_floor(xl, xl, state, 2, 10, steps=4, flush=None, rounds=2, warmup=1)
    assert len(wall) == len(cpu) == 4 and len(floor) == 4
    assert all(0 < f < 1 for f in floor) and all(c > 0 for c in cpu)


def test_training_speed_script_times_every_backbone_against_the_transformer(tmp_path, monkeypatch):
    from lram_agents.backbones.mamba import MambaConfig
    from lram_agents.backbones.transformer import TransformerConfig
    from lram_agents.bench import training_speed as script

    tiny = {"transformer": TransformerConfig(d_model=16, num_layers=1, num_heads=2, max_positions=24),
            "mamba": MambaConfig(d_model=16, num_layers=1, d_state=4)}
    monkeypatch.setitem(script.SCALES, "tiny", (lambda: tiny, 2, 24))
    rows = script.main(["--scales", "tiny", "--rounds", "2", "--warmup", "1", "--out", str(tmp_path)])
    assert [r.backbone for r in rows] == ["transformer", "mamba"]
    assert rows[0].ratio_cpu == 1.0 and rows[1].cpu_ms > 0 and rows[1].ratio_cpu == rows[1].cpu_ms / rows[0].cpu_ms
    assert "| tiny | mamba |" in (tmp_path / "training_speed.md").read_text()
    assert len((tmp_path / "training_speed.csv").read_text().splitlines()) == 3


def test_floor_counts_flops_where_they_bound_the_step():
    xl = _tiny("xlstm")
    state = bench.filled_state(xl, 4, 10)
    matrices = sum(p.numel() for p in xl.parameters() if p.dim() >= 2)
    per_env_state = sum(t.numel() for t in state.values() if t.is_floating_point()) // 4
    assert bench.step_flops(xl, state, 10, 4) == 2 * 12 * (matrices + per_env_state)
    assert 1e8 < bench.matmul_peak(128, 2) < 1e14


def test_transformer_rows_time_a_window_slide():
    tf = _tiny("transformer")
    r = bench.measure("transformer", tf, "latency", 1, 10, 4, "synthetic", 2**30, None)
    assert r.slide_ms > 0 and r.amortized_ms == r.median_ms + r.slide_ms / 5
    assert "window slides" in bench.markdown_tables([r])
    ms, note = bench.slide_step_ms(tf, tf, 1, 10, memory_budget=100.0)  # 15 tokens' scores need 3,600 bytes
    assert ms != ms and "not timed" in note  # NaN, and says why


def test_soak_records_windows_and_counts_non_finite_logits(tmp_path):
    from types import SimpleNamespace

    from lram_agents.bench import soak

    rows = soak.main(["--model", "xlstm-tmaze", "--env", "lram_agents/TMaze-v0", "--steps", "300", "--window", "100",
                      "--out", str(tmp_path), "--no-progress"])
    assert [r.steps for r in rows] == [100, 200, 300] and rows[-1].episodes > 0
    assert all(r.nonfinite_logits == 0 and r.state_finite and r.median_ms > 0 and r.rss_mb > 0 for r in rows)
    assert (tmp_path / "xlstm-tmaze" / "soak.png").is_file() and "non-finite logits: 0 steps" in (tmp_path / "xlstm-tmaze" / "summary.txt").read_text()
    checked = soak.FiniteLogits(lambda: SimpleNamespace(logits=torch.tensor([0.0, float("nan")])))
    checked()
    checked.step_fn = lambda: SimpleNamespace(logits=torch.zeros(2))
    checked()
    assert checked.bad == 1
