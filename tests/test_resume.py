"""A run killed with SIGKILL resumes from its last checkpoint and reaches the same
parameters as an uninterrupted run with the same seed."""

import json
import os
import signal
import subprocess
import sys
import time

import torch
import yaml
from safetensors.torch import load_file

from conftest import tiny_overrides

STEPS = 6


def write_config(path, output_dir):
    raw = tiny_overrides(output_dir, max_steps=STEPS, save_steps=2, beta=0.01)
    path.write_text(yaml.safe_dump(raw))
    return path


def train_command(config, *extra):
    return [sys.executable, "-m", "selftaught", "train", "--config", str(config), *extra]


def final_weights(output_dir):
    return load_file(output_dir / "checkpoints" / f"step-{STEPS}" / "model.safetensors")


def test_kill_minus_nine_then_resume_matches_uninterrupted(tmp_path):
    straight = tmp_path / "straight"
    subprocess.run(train_command(write_config(tmp_path / "a.yaml", straight)), check=True, capture_output=True)

    killed = tmp_path / "killed"
    config = write_config(tmp_path / "b.yaml", killed)
    # Slow each step down a little only in the killed run, so the kill lands mid-run.
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(train_command(config), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (killed / "checkpoints" / "step-2").exists():
        assert process.poll() is None, "the run ended before its first checkpoint"
        assert time.time() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_before_end = not (killed / "checkpoints" / f"step-{STEPS}").exists()

    resumed = subprocess.run(train_command(config, "--resume"), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout

    a, b = final_weights(straight), final_weights(killed)
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=0, rtol=0)
    rows = [json.loads(line) for line in (killed / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, STEPS + 1)), "metrics rows must not repeat or skip"
    straight_rows = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in rows] == [r["loss"] for r in straight_rows]
    assert killed_before_end, "the kill came too late to test anything"


def test_resume_without_checkpoint_is_a_clear_error(tmp_path):
    config = write_config(tmp_path / "c.yaml", tmp_path / "none")
    result = subprocess.run(train_command(config, "--resume"), capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "no checkpoint" in result.stderr
