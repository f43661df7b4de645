"""A run killed mid-way (inside a checkpoint write, and between steps) resumes to the same losses and weights."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import yaml
from safetensors.torch import load_file

from lram_agents.data import record
from lram_agents.training.checkpoint import list_checkpoints, verify_checkpoint

DRIVER = Path(__file__).with_name("train_driver.py")
STEPS = 12


def write_config(tmp_path: Path, data: Path) -> Path:
    config = {
        "output_dir": str(tmp_path / "unused"),
        "steps": STEPS,
        "model": {"inline": {"backbone": {"type": "xlstm", "d_model": 32, "num_blocks": 2, "num_heads": 4, "slstm_at": [1],
                                          "chunk_size": 8, "context_tokens": 48}, "max_state_dim": 8, "include_actions": True}},
        "data": [{"path": str(data)}],
        "trainer": {"batch_size": 6, "context": 12, "warmup_steps": 3, "learning_rate": 3e-3, "log_every": 1, "checkpoint_every": 3,
                    "keep_checkpoints": 3, "validation_fraction": 0.2, "validation_every": 4, "validation_batches": 1,
                    "seed": 11, "deterministic": True, "progress": False},
    }
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def start(config: Path, out: Path, *extra: str, **env: str) -> subprocess.Popen:
    cmd = [sys.executable, str(DRIVER), "train", str(config), "--output-dir", str(out), "--threads", "1", *extra]
    return subprocess.Popen(cmd, env={**os.environ, "OMP_NUM_THREADS": "1", **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen) -> None:
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out


def wait_for(condition, proc: subprocess.Popen, what: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the run ended before {what}: {proc.communicate()[0]}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def losses(out: Path) -> dict[int, tuple[str, str]]:
    rows = csv.DictReader((out / "metrics.csv").open())
    return {int(r["step"]): (r["loss"], r["val_loss"]) for r in rows}


def logged_steps(out: Path) -> int:
    path = out / "metrics.csv"
    return max(losses(out), default=0) if path.exists() else 0


def assert_no_half_checkpoint(out: Path) -> list[Path]:
    committed = list_checkpoints(out / "checkpoints")
    for path in committed:
        verify_checkpoint(path)  # raises if any file is missing or differs from the manifest
    return committed


def test_killed_runs_resume_to_the_uninterrupted_result(tmp_path):
    data = tmp_path / "data"
    record(gym.make("CartPole-v1"), "random", data, episodes=25, seed=0, progress=False)
    config = write_config(tmp_path, data)
    finish(start(config, tmp_path / "reference"))

    run, marker = tmp_path / "run", tmp_path / "paused"
    proc = start(config, run, PAUSE_CHECKPOINT_STEP="6", PAUSE_MARKER=str(marker))
    wait_for(marker.exists, proc, "the pause inside checkpoint 6")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert [p.name for p in assert_no_half_checkpoint(run)] == ["step-00000003"]
    (leftover,) = (run / "checkpoints").glob(".tmp-step-00000006-*")
    assert (leftover / "model.safetensors").exists()  # the killed write really was half-way

    proc = start(config, run, "--resume", STEP_DELAY="0.3")
    wait_for(lambda: logged_steps(run) >= 8, proc, "step 8 of the first resume")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert [p.name for p in assert_no_half_checkpoint(run)][-1] in ("step-00000006", "step-00000009")

    finish(start(config, run, "--resume"))
    reference, resumed = losses(tmp_path / "reference"), losses(run)
    assert sorted(resumed) == list(range(1, STEPS + 1))
    assert resumed == reference  # the same floats, printed exactly, at every step (training and validation)
    want, got = load_file(tmp_path / "reference/model/model.safetensors"), load_file(run / "model/model.safetensors")
    assert all((want[k] == got[k]).all() for k in want)
    assert not list((run / "checkpoints").glob(".tmp-*"))  # the next save cleaned the leftover
