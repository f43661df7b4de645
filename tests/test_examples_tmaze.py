"""examples/tmaze end to end on a tiny scale: oracle data -> curriculum training -> evaluation -> zoo folder."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import lram_agents
from example_scripts import import_example_scripts
from lram_agents.registry import Zoo

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "tmaze"
common, make_data, train, evaluate, ship = import_example_scripts("tmaze", ("common", "make_data", "train", "evaluate", "ship"))


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py says why


@pytest.mark.parametrize("config", sorted(EXAMPLES.glob("configs/*.json")), ids=lambda p: p.stem)
def test_every_run_config_is_valid(config):
    run = common.RunConfig.load(config)
    assert run.backbone in config.stem or run.backbone == "transformer"
    assert run.curriculum_settings.max_segments >= run.curriculum_settings.min_segments


def test_corridor_lengths_cover_one_to_n_segments():
    lengths = make_data.corridor_lengths(5000, 30, 3, seed=0)
    assert lengths.min() == 1 and lengths.max() == 88  # the longest episode (L + 2 steps) fills 3 segments
    with pytest.raises(ValueError, match="segment_steps"):
        make_data.corridor_lengths(10, 2, 3, seed=0)


def test_a_bad_config_names_the_field(tmp_path):
    data = json.loads((EXAMPLES / "configs" / "xlstm.json").read_text())
    data["init"] = {"mlstm_forget_gate": [1, 2]}
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match="init"):
        common.RunConfig.load(tmp_path / "bad.json")


def test_data_train_evaluate_ship(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_data.make_dataset(tmp_path / "data", episodes=40, segment_steps=30, max_segments=2, seed=0, episodes_per_file=20)
    config = json.loads((EXAMPLES / "configs" / "xlstm.json").read_text())
    config["curriculum"].update(max_segments=2, batches_per_stage=2)
    config["trainer"].update(batch_size=4, warmup_steps=1, checkpoint_every=2, progress=False)
    config["model"]["backbone"].update(d_model=16, num_blocks=1, num_heads=2)
    (tmp_path / "tiny.json").write_text(json.dumps(config))
    summary = train.train(tmp_path / "tiny.json", tmp_path / "data", tmp_path / "runs" / "xlstm", resume=False)
    assert summary["steps"] == 4 and summary["wall_time_s"] > 0 and np.isfinite(summary["final_loss"])

    with evaluate.tqdm(total=3, disable=True) as bar:
        lengths = [("segments", 1), ("segments", 2), ("steps", 100)]
        results = evaluate.evaluate_run(tmp_path / "runs" / "xlstm", lengths, seeds=3, force=False, bar=bar)
    assert set(results["segments"]) == {"1", "2"} and len(results["segments"]["2"]["successes"]) == 3
    assert results["steps"]["100"]["corridor_length"] == 98 and len(results["steps"]["100"]["successes"]) == 3

    zoo = tmp_path / "zoo"
    zoo.mkdir()
    (zoo / "manifest.json").write_text(json.dumps({"format_version": 1, "models": []}, indent=2))
    shutil.copytree(tmp_path / "runs" / "xlstm", tmp_path / "runs" / "xlstm-seed1")  # a second training run's record
    folder = ship.ship(tmp_path / "runs" / "xlstm", [], zoo, archive=tmp_path / "archive")
    card = (folder / "README.md").read_text()
    assert (folder / ship.PLOT_FILE).is_file() and "| RATE-7 (RATE paper, Table 2) |" in card
    assert "(ours, 2 runs × 3 seeds)" in card
    agent = lram_agents.load("xlstm-tmaze", zoo=Zoo(zoo / "manifest.json"), device="cpu")
    assert agent.model.num_parameters() == summary["parameters"]

    # on a new machine the compared runs are gone: their rows come back from the archive ship.py kept
    assert sorted(p.name for p in (tmp_path / "archive").iterdir()) == ["xlstm-seed1.json", "xlstm.json"]
    shutil.rmtree(tmp_path / "runs" / "xlstm-seed1")
    entry = ship.run_info(tmp_path / "runs" / "xlstm-seed1", archive=tmp_path / "archive")
    assert entry["info"]["parameters"] == summary["parameters"] and len(entry["seed_results"]) == 2
    assert ship.rates(entry) == ship.rates(ship.run_info(tmp_path / "runs" / "xlstm", archive=tmp_path / "archive"))
    assert ship.run_info(tmp_path / "runs" / "absent", archive=tmp_path / "archive")["seed_results"] == [{"segments": {}}]


def test_the_card_gives_one_training_command_per_model_looping_over_its_seeds():
    cmd = "python examples/tmaze/train.py examples/tmaze/configs/rate-dropout.json --threads 1"
    entries = [{"info": {"command": cmd.replace(" --threads", " --seed 3 --threads")}, "seed_results": [{}] * 10},
               {"info": {"command": "python examples/tmaze/train.py examples/tmaze/configs/xlstm.json"}, "seed_results": [{}]},
               {"info": {}, "seed_results": [{}]}]  # a run without its run.json: no command
    lines = ship.training_commands(entries)
    assert lines == [f"{cmd}; for s in $(seq 1 9); do {cmd} --seed $s; done  # 10 training runs",
                     "python examples/tmaze/train.py examples/tmaze/configs/xlstm.json"]


def test_the_rate_card_rows_are_the_kept_runs_and_rate3_matches_the_paper(tmp_path):
    """The rate-tmaze card's table, rebuilt from the committed per-run records alone (no runs/ folder): every row
    agrees, and the shipped config's 10 training runs reach RATE-3's 0.895 at 5 segments (issue 19)."""
    card = (Path(__file__).resolve().parents[1] / "zoo" / "rate-tmaze" / "README.md").read_text()
    entries = [ship.run_info(tmp_path / run) for run in ("rate-dropout-noise-seed4", "rate", "rate-7", "rate-mrv")]
    for row in ship.table(entries)[2:len(entries) + 2]:
        assert row in card.splitlines(), row
    shipped = entries[0]
    assert len(shipped["seed_results"]) == 10 and ship.rates(shipped)[5] >= 0.89, ship.rates(shipped)
    assert all(rate == 1.0 for rate in ship.own_rates(shipped).values())  # the shipped run: 1.0 at every length
