"""lram_agents.data.task_histories: learning histories on every task of a family, sharded, resumable, one recipe."""

import json

import h5py
import numpy as np
import pytest
import yaml

from lram_agents.data.task_histories import SourceRLConfig, main, record_histories, task_prefix
from lram_agents.envs import task_family

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py says why

REACHER = "lram_agents/ReacherGoal-v0"


@pytest.fixture
def tiny_sac(tmp_path):
    """SAC on Reacher-Goal for 120 steps (gradient steps from step 60): a history of 2 episodes of 50, kept every 2nd."""
    return SourceRLConfig(output=str(tmp_path / "data"), env=REACHER, algorithm="SAC", total_timesteps=120, keep_every=2,
                          algorithm_kwargs={"learning_starts": 60, "batch_size": 16, "policy_kwargs": {"net_arch": [8]}},
                          domain="reachergoal")


def test_task_prefixes_name_grid_goals_by_cell_and_other_tasks_by_index():
    assert task_prefix((3, 7), 12) == "goal-3-7"
    assert task_prefix((0.1, -0.05), 4) == "task-004"
    assert task_prefix(1.5, 11) == "task-011"


def test_a_continuous_family_is_recorded_per_task_with_every_return_and_its_time(tiny_sac, tmp_path):
    recorded = record_histories(tiny_sac, tasks=3, shard=(0, 2), progress=False)
    assert sorted(recorded) == [0, 2]  # shard 0 of 2 takes tasks 0 and 2
    output = tmp_path / "data"
    assert sorted(p.name for p in output.glob("*.h5")) == ["task-000-0000000.h5", "task-002-0000000.h5"]
    tasks = task_family(REACHER).train_tasks()
    facts = json.loads((output / "task-002.json").read_text())
    assert facts["task"] == str(tasks[2]) and facts["index"] == 2
    assert facts["returns"] == recorded[2] and len(facts["returns"]) == 2  # 120 steps: two whole episodes of 50
    assert facts["seconds"] > 0 and facts["cpu_seconds"] > 0
    with h5py.File(output / "task-002-0000000.h5", "r") as f:
        assert f["episodes/episode_index"][:].tolist() == [0]  # every 2nd episode kept
        assert f["episodes/history_id"][:].tolist() == [2]
        np.testing.assert_allclose(f["episodes/return"][0], facts["returns"][0], rtol=1e-5)
        assert json.loads(f.attrs["metadata"])["keep_every"] == 2


def test_a_rerun_skips_done_tasks_and_refuses_another_recipe_by_name(tiny_sac, tmp_path):
    record_histories(tiny_sac, tasks=1, progress=False)
    assert record_histories(tiny_sac, tasks=1, progress=False) == {}  # done: not recorded again
    tiny_sac.total_timesteps = 200
    with pytest.raises(SystemExit, match=r"task-000-0000000\.h5 was recorded with \{'total_timesteps': 120\}"):
        record_histories(tiny_sac, tasks=1, progress=False)


def test_the_command_line_takes_a_yaml_and_overrides(tiny_sac, tmp_path):
    config = tmp_path / "sac.yaml"
    config.write_text(yaml.safe_dump({k: v for k, v in vars(tiny_sac).items()}))
    main([str(config), "--split", "holdout", "--tasks", "1", "--output", str(tmp_path / "holdout")])
    (path,) = (tmp_path / "holdout").glob("*.h5")
    with h5py.File(path, "r") as f:
        assert f["episodes/task"][0].decode() == str(task_family(REACHER).holdout_tasks()[0])


def test_the_configs_task_count_limits_the_training_split_only(tiny_sac, tmp_path):
    tiny_sac.tasks = 1
    assert sorted(record_histories(tiny_sac, progress=False)) == [0]
    tiny_sac.output = str(tmp_path / "holdout")
    assert sorted(record_histories(tiny_sac, split="holdout", tasks=2, progress=False)) == [0, 1]


@pytest.mark.parametrize("field, value", [("total_timesteps", 0), ("keep_every", 0), ("tasks", 0)])
def test_bad_settings_are_named(field, value):
    with pytest.raises(ValueError, match=field):
        SourceRLConfig(output="x", **{field: value})


def test_a_bad_split_is_named(tiny_sac):
    with pytest.raises(ValueError, match="split"):
        record_histories(tiny_sac, split="test", progress=False)


def test_every_kth_episode_downsamples_each_history_in_order_at_load_time(tmp_path):
    from lram_agents.data import TrajectoryDataset
    from lram_agents.data.selection import every_kth_episode

    cfg = SourceRLConfig(output=str(tmp_path / "data"), env=REACHER, algorithm="SAC", total_timesteps=350, keep_every=1,
                         algorithm_kwargs={"learning_starts": 400, "policy_kwargs": {"net_arch": [8]}})  # no gradient step
    record_histories(cfg, tasks=2, progress=False)
    dataset = TrajectoryDataset(tmp_path / "data")
    kept = every_kth_episode(dataset, 3)
    by_history = {int(h): sorted(kept.table.episode_index[kept.table.history_id == h].tolist()) for h in (0, 1)}
    assert by_history == {0: [0, 3, 6], 1: [0, 3, 6]}  # 7 episodes of 50 per history: the 1st, 4th and 7th
    assert every_kth_episode(dataset, 1) is dataset
    phases = every_kth_episode(dataset, 3, every_phase=True)
    by_history = {int(h): phases.table.episode_index[rows].tolist() for h, rows in
                  ((phases.table.history_id[rows[0]], rows) for rows in phases.histories())}
    assert by_history == {0: [0, 3, 6], 1: [1, 4], 2: [2, 5], 3: [0, 3, 6], 4: [1, 4], 5: [2, 5]}
    assert sorted(set(dataset.table.history_id.tolist())) == [0, 1]  # the view relabels, the source keeps its ids
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        every_kth_episode(dataset, 0)
