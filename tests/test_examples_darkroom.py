"""examples/darkroom: the configs are valid, the data generator records, shards and refuses mixed recipes,
and ship.py combines the greedy and per-seed sampled evaluations the way its card says."""

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from example_scripts import import_example_scripts
from lram_agents.data.jobs import parse_shard
from lram_agents.envs import task_family
from lram_agents.run_configs import TrainConfig, build_model_config, load_config_file

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "darkroom"
evaluate, generate_data, ship, variants = import_example_scripts("darkroom", ("evaluate", "generate_data", "ship", "variants"))

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py says why


@pytest.mark.parametrize("config", sorted(EXAMPLES.glob("train_*.yaml")), ids=lambda p: p.stem)
def test_every_training_config_builds_its_model(config):
    run = TrainConfig.from_dict(load_config_file(config))
    model = build_model_config(run.model)
    assert run.data[0].context in (200, 400) and run.data[0].windows == "across_episodes"  # 2 or 4 whole episodes
    assert model.backbone.type in config.stem or (model.backbone.type == "xlstm" and "xlstm" in config.stem)


def test_the_four_compared_backbones_share_their_training_budget():
    budgets = set()
    for run in evaluate.BACKBONES:
        config = load_config_file(EXAMPLES / f"train_{run.replace('xlstm-', 'xlstm_')}.yaml")
        budgets.add((config["steps"], json.dumps(config["trainer"], sort_keys=True), json.dumps(config["data"], sort_keys=True)))
    assert len(budgets) == 1


def _run_generator(monkeypatch, config: Path, *extra: str):
    monkeypatch.setattr(sys, "argv", ["generate_data.py", str(config), *extra])
    generate_data.main()


@pytest.fixture
def tiny_source_rl(tmp_path):
    """PPO with 64-step rollouts for 128 steps: one goal's history in about a second."""
    config = {"env": "lram_agents/DarkRoom-v0", "output": str(tmp_path / "data"), "total_timesteps": 128,
              "keep_every": 1, "seed": 0, "algorithm_kwargs": {"n_steps": 64, "batch_size": 32, "n_epochs": 1}}
    path = tmp_path / "source_rl.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, tmp_path / "data"


def test_a_shard_records_only_its_goals_and_a_rerun_skips_them(monkeypatch, tiny_source_rl):
    config, output = tiny_source_rl
    _run_generator(monkeypatch, config, "--goals", "3", "--shard", "1/2")
    goals = task_family("lram_agents/DarkRoom-v0").train_tasks()
    assert [p.name for p in output.glob("*.h5")] == [f"goal-{goals[1][0]}-{goals[1][1]}-0000000.h5"]
    before = next(output.glob("*.h5")).stat().st_mtime_ns
    _run_generator(monkeypatch, config, "--goals", "3", "--shard", "1/2")
    assert next(output.glob("*.h5")).stat().st_mtime_ns == before  # done goals are not recorded again


def test_a_goal_recorded_with_other_settings_is_refused_by_name(monkeypatch, tiny_source_rl):
    config, output = tiny_source_rl
    _run_generator(monkeypatch, config, "--goals", "1")
    with pytest.raises(SystemExit, match=r"goal-.*\.h5 was recorded with \{'keep_every': 1\}"):
        _run_generator(monkeypatch, config, "--goals", "1", "--keep-every", "10")


@pytest.mark.parametrize("text", ["2/2", "1", "a/b", "-1/3"])
def test_a_bad_shard_is_named(text):
    with pytest.raises(SystemExit, match="--shard"):
        parse_shard(text)


def _report(returns_by_run: dict, seed: int | None) -> dict:
    return {"goals": [[0, 6], [1, 3]], "trials": 12, "seed": seed, "sampled_actions": seed is not None,
            "expert_mean": 90.0, "results": {run: {"returns": r, "parameters": 1000} for run, r in returns_by_run.items()}}


def test_ship_ranks_backbones_on_seed_averaged_sampled_returns(tmp_path):
    flat, rising = np.full((2, 12), 5.0), np.tile(np.linspace(0, 30, 12), (2, 1))
    greedy = _report({"mamba": flat.tolist(), "xlstm-1-0": flat.tolist()}, None)
    seeds = {0: _report({"mamba": flat.tolist(), "xlstm-1-0": rising.tolist()}, 0),
             1: _report({"mamba": (flat + 2).tolist(), "xlstm-1-0": (rising + 2).tolist()}, 1)}
    for name, report in [("evaluation", greedy), *((f"evaluation-sampled-seed{s}", r) for s, r in seeds.items())]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "evaluation.json").write_text(json.dumps(report))
    loaded_greedy, sampled = ship.load_evaluations(tmp_path / "evaluation", sorted(tmp_path.glob("evaluation-sampled-*")))
    averaged = ship.seed_averaged(loaded_greedy, sampled)
    np.testing.assert_allclose(averaged["xlstm-1-0"]["returns"], rising + 1)
    assert ship.best_backbone(averaged) == "xlstm-1-0"
    assert ship.gain(np.asarray(averaged["mamba"]["returns"])) == (0.0, 0.0)
    assert "In-context learning" in ship.verdict(np.asarray(averaged["xlstm-1-0"]["returns"]))
    assert "No in-context improvement" in ship.verdict(np.asarray(averaged["mamba"]["returns"]))


def test_ship_refuses_a_sampled_evaluation_of_other_goals(tmp_path):
    flat = np.zeros((2, 12)).tolist()
    other = _report({"mamba": flat}, 0) | {"goals": [[0, 6], [9, 9]]}
    for name, report in [("evaluation", _report({"mamba": flat}, None)), ("evaluation-sampled-seed0", other)]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "evaluation.json").write_text(json.dumps(report))
    with pytest.raises(SystemExit, match="evaluation-sampled-seed0"):
        ship.load_evaluations(tmp_path / "evaluation", [tmp_path / "evaluation-sampled-seed0"])


def test_variants_rows_say_whether_a_model_learns_in_context_and_the_card_keeps_them(tmp_path):
    flat, rising = np.full((4, 12), 5.0), np.tile(np.linspace(0, 30, 12), (4, 1)) + np.arange(4)[:, None]
    reports = [_report({"alibi": rising.tolist()}, s) for s in (0, 1)] + [_report({"learned": flat.tolist()}, s) for s in (1, 0)]
    averaged = variants.seed_averaged(variants.merge_by_seed(reports))  # separate evaluations of one seed join
    assert sorted(averaged) == ["alibi", "learned"]
    lines = variants.table_lines(averaged, {"mamba": flat}, {}, {"alibi": [1.2, 0.8]}, expert=90.0, trials=12)
    alibi, learned = next(l for l in lines if l.startswith("| alibi")), next(l for l in lines if l.startswith("| learned"))
    assert "+17.7 ± 0.0 (yes; 4 / 0)" in alibi and "1.200 → 0.800" in alibi
    assert "+0.0 ± 0.0 (no; 0 / 0)" in learned and lines[2].startswith("| mamba |")

    zoo = Path(__file__).resolve().parents[1] / "zoo"
    card = tmp_path / "zoo" / "mamba-darkroom"
    shutil.copytree(zoo / "mamba-darkroom", card)
    shutil.copy(zoo / "manifest.json", card.parent / "manifest.json")
    variants.write_into_card(card, "### Variants\nfirst")
    variants.write_into_card(card, "### Variants\nsecond")  # replaced, not added twice
    text = (card / "README.md").read_text()
    assert text.count(variants.BEGIN) == 1 and "second" in text and "first" not in text
    assert text.index(variants.BEGIN) < text.index("### Training")
    import lram_agents
    from lram_agents.registry import Zoo

    assert lram_agents.load("mamba-darkroom", zoo=Zoo(card.parent / "manifest.json")).model  # checksums refreshed


def test_ship_finds_every_runs_config_and_names_the_backbones_without_results():
    for run in [*evaluate.LABELS]:
        path, config = ship.config_of(run)
        assert config["output_dir"] == f"runs/darkroom/{run}" and path.name.startswith("train_")
    with pytest.raises(SystemExit, match="runs/darkroom/nothing"):
        ship.config_of("nothing")
    assert ship.missing_backbones({run: {} for run in evaluate.BACKBONES}) == []
    assert ship.missing_backbones({"mamba": {}})[-1] == "Not trained with this recipe yet: xLSTM [7:1], xLSTM [1:0], Transformer (RoPE)."
    assert "each of the 10 offsets" in ship.episode_selection({"keep_every": 10, "every_phase": True})
    assert ship.episode_selection({"keep_every": 1}) == "every episode of each learning history"
    assert ship.kept_episodes({"keep_every": 20, "every_phase": True}) == "1 in 20, every phase"
    assert ship.kept_episodes({"keep_every": 1, "every_phase": True}) == "1 in 1"
