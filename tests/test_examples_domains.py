"""examples/domains: every config is valid, the data command records, shards, resumes and refuses mixed recipes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from example_scripts import import_example_scripts
from lram_agents.config_utils import from_dict
from lram_agents.envs import domains
from lram_agents.run_configs import load_config_file

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "domains"
(generate_data,) = import_example_scripts("domains", ("generate_data",))

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("config", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_config_is_valid(config):
    cfg = from_dict(generate_data.DomainDataConfig, load_config_file(config))
    assert cfg.domain == config.stem and cfg.task_list()


def run(monkeypatch, config: Path, *extra: str):
    monkeypatch.setattr(sys, "argv", ["generate_data.py", str(config), *extra])
    generate_data.main()


def write_config(tmp_path, **settings) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"output": str(tmp_path / "data"), **settings}))
    return path


def test_bad_settings_are_named():
    with pytest.raises(Exception, match="source"):
        from_dict(generate_data.DomainDataConfig, {"domain": "metaworld", "source": "dqn", "output": "x"})
    with pytest.raises(Exception, match="noise_levels"):
        from_dict(generate_data.DomainDataConfig, {"domain": "metaworld", "source": "expert", "output": "x", "noise_levels": [-1]})
    with pytest.raises(Exception, match="total_timesteps"):
        from_dict(generate_data.DomainDataConfig, {"domain": "dmcontrol", "source": "sac", "output": "x"})
    with pytest.raises(ValueError, match="'lift' is not a metaworld task"):
        from_dict(generate_data.DomainDataConfig, {"domain": "metaworld", "source": "expert", "output": "x", "tasks": ["lift"]}).task_list()


@pytest.mark.skipif(not domains.get("metaworld").available(), reason=domains.get("metaworld").missing())
def test_expert_data_with_noise_levels_shards_resumes_and_refuses(monkeypatch, tmp_path):
    config = write_config(tmp_path, domain="metaworld", source="expert", tasks=["reach", "push", "door-open"],
                          noise_levels=[0.0, "random"], episodes_per_level=2)
    run(monkeypatch, config, "--shard", "1/2")  # tasks 1 of 0..2: push only
    output = tmp_path / "data"
    assert sorted(p.name for p in output.iterdir()) == ["push"]
    files = sorted((output / "push").glob("*.h5"))
    assert [f.name for f in files] == ["noise0-0000000.h5", "random-0000000.h5"]
    returns = {}
    for path in files:
        with h5py.File(path, "r") as f:
            assert f.attrs["domain"] == "metaworld" and f.attrs["env_id"] == "lram_agents/MetaWorld-push-v0"
            assert list(f["episodes/length"][:]) == [200, 200] and f["episodes/task"][0].decode() == "push"
            returns[json.loads(f.attrs["metadata"])["noise_std"]] = f["episodes/return"][:].mean()
    assert returns[0.0] > returns["random"]  # the expert beats random actions
    before = files[0].stat().st_mtime_ns
    run(monkeypatch, config, "--shard", "1/2")
    assert files[0].stat().st_mtime_ns == before  # a finished task is not recorded again
    config.write_text(config.read_text().replace("episodes_per_level: 2", "episodes_per_level: 3"))
    with pytest.raises(SystemExit, match=r"push/recording.json was recorded with \{'episodes_per_level': 2\}"):
        run(monkeypatch, config, "--shard", "1/2")


@pytest.mark.skipif(not domains.get("dmcontrol").available(), reason=domains.get("dmcontrol").missing())
def test_learning_run_keeps_every_episode_and_its_final_policy(monkeypatch, tmp_path):
    config = write_config(tmp_path, domain="dmcontrol", source="sac", tasks=["pendulum-swingup"], total_timesteps=2000,
                          algorithm_kwargs={"learning_starts": 100, "policy_kwargs": {"net_arch": [16, 16]}})
    run(monkeypatch, config)
    folder = tmp_path / "data" / "pendulum-swingup"
    files = sorted(folder.glob("*.h5"))
    assert len(files) == 2 and (folder / "policy.zip").is_file()  # two 1000-step episodes, one per file
    with h5py.File(files[1], "r") as f:
        assert f["episodes/history_id"][0] == 0 and f["episodes/episode_index"][0] == 1
        assert f["steps/observations"].shape == (1000, 3) and np.all(np.abs(f["steps/actions"][:]) <= 1)
