"""Online fine-tuning killed inside a rollout (SIGKILL) resumes without losing a collected episode."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from online_driver import episode_key
from test_resume_after_kill import wait_for

from lram_agents.data import TrajectoryDataset
from lram_agents.training.checkpoint import list_checkpoints, verify_checkpoint

DRIVER = Path(__file__).with_name("online_driver.py")


def start(run: Path, total: int, log: Path, *extra: str, delay: str = "0") -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "STEP_DELAY": delay, "EPISODE_LOG": str(log),
           "PYTHONPATH": os.pathsep.join([str(DRIVER.parent), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, str(DRIVER), str(run), str(total), *extra], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def buffer_keys(run: Path) -> list[str]:
    data = TrajectoryDataset(sorted((run / "episodes").glob("rollout-*.h5")))
    return [episode_key(data.episode(i)) for i in range(data.num_episodes)]


def test_killed_online_run_resumes_with_every_collected_episode(tmp_path):
    run, log = tmp_path / "run", tmp_path / "episodes.log"
    pending = run / "episodes" / "pending"
    proc = start(run, 1_000_000, log, delay="0.03")
    # kill inside a rollout that already finished episodes after the last checkpoint
    wait_for(lambda: list_checkpoints(run / "checkpoints") and len(list(pending.glob("rollout-*.h5"))) >= 2, proc, "episodes after a checkpoint")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    collected = log.read_text().splitlines()
    assert len(list(pending.glob("rollout-*.h5"))) >= 2  # the kill came inside the rollout: these exist only as pending files

    proc = start(run, 120, log, "--resume")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    in_buffer = buffer_keys(run)
    assert set(collected) <= set(in_buffer)  # nothing collected before the kill was lost
    assert sorted(in_buffer) == sorted(log.read_text().splitlines())  # ... nor counted twice
    assert not list(pending.iterdir())
    result = json.loads((run / "result.json").read_text())
    assert result["episodes"] == len(in_buffer) and result["env_steps"] >= 120
    for path in list_checkpoints(run / "checkpoints"):
        verify_checkpoint(path)
