"""Logs for humans and machines: a bar on a terminal, plain lines (never `\\r`) elsewhere."""

import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT
from selftaught import console
from selftaught.cli import _log_overrides, build_parser

LINE = re.compile(r"^train step (\d+)/(\d+)  reward -?\d+\.\d{4}  self-certainty -?\d+\.\d{4}  "
                  r"length \d+\.\d  \d+\.\d\d s/step$")


def _run(*args, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "selftaught", *args], cwd=ROOT, env=env, capture_output=True,
                          timeout=timeout)  # stdout and stderr are pipes, not terminals


def test_piped_training_prints_plain_lines_and_no_carriage_returns(tmp_path):
    done = _run("train", "--config", "configs/intuitor_tiny.yaml", "--set", "max_steps=3",
                "--set", f"output_dir={tmp_path / 'run'}", "--log-every", "2")
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    assert b"\r" not in done.stdout and b"\r" not in done.stderr
    lines = [line for line in done.stdout.decode().splitlines() if line.startswith("train step")]
    assert [LINE.match(line).groups() for line in lines] == [("2", "3"), ("3", "3")]  # every 2nd step + the last
    assert done.stdout.decode().splitlines()[-1].startswith("done: 3 steps")


def test_piped_eval_has_no_carriage_returns(tmp_path):
    done = _run("eval", "--model", "tiny", "--benchmark", "arith", "--limit", "4", "--batch-size", "2",
                "--max-new-tokens", "8", "--output-dir", str(tmp_path), "--log-every", "2")
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    assert b"\r" not in done.stdout and b"\r" not in done.stderr
    assert re.findall(r"arith: (\d)/4 prompts", done.stderr.decode()) == ["4"]  # 2 batches, one line per 2


def _rows(n):
    return [{"step": i, "reward/mean": 0.5, "self_certainty/mean": 1.25, "completion_length/mean": 12.0,
             "loss": 0.1, "time/step_s": float(i)} for i in range(1, n + 1)]


def test_plain_lines_average_the_step_time_since_the_last_line(monkeypatch, capsys):
    monkeypatch.setattr(console, "interactive", lambda: False)
    progress = console.TrainProgress(5, 0, log_every=2)
    for row in _rows(5):
        progress.update(row)
    progress.close()
    out = capsys.readouterr().out.splitlines()
    assert out == ["train step 2/5  reward 0.5000  self-certainty 1.2500  length 12.0  1.50 s/step",
                   "train step 4/5  reward 0.5000  self-certainty 1.2500  length 12.0  3.50 s/step",
                   "train step 5/5  reward 0.5000  self-certainty 1.2500  length 12.0  5.00 s/step"]


def test_quiet_and_disabled_print_nothing(monkeypatch, capsys):
    monkeypatch.setattr(console, "interactive", lambda: False)
    for progress in (console.TrainProgress(3, 0, log_every=0), console.TrainProgress(3, 0, enabled=False)):
        for row in _rows(3):
            progress.update(row)
        progress.close()
    assert capsys.readouterr() == ("", "")


def test_a_terminal_gets_the_bar_not_lines(monkeypatch, capsys):
    monkeypatch.setattr(console, "interactive", lambda: True)
    progress = console.TrainProgress(2, 0, log_every=1)
    for row in _rows(2):
        progress.update(row)
    progress.close()
    captured = capsys.readouterr()
    assert "train step" not in captured.out
    assert "2/2" in captured.err and "reward=0.500" in captured.err
    monkeypatch.setattr(console, "interactive", lambda: True)
    no_bar = console.TrainProgress(2, 0, bar=False)  # progress_bar: false on a terminal: silent
    no_bar.update(_rows(1)[0])
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("command", ["train", "eval", "demo"])
def test_quiet_and_log_every_flags_become_config_keys(command):
    required = {"train": ["--config", "x.yaml"], "eval": ["--model", "tiny", "--benchmark", "arith"], "demo": []}
    parser = build_parser()
    assert _log_overrides(parser.parse_args([command, *required[command], "--quiet"])) == \
        ["progress_bar=false", "log_every=0"]
    assert _log_overrides(parser.parse_args([command, *required[command], "--log-every", "5"])) == ["log_every=5"]
    assert _log_overrides(parser.parse_args([command, *required[command]])) == []


def test_quiet_demo_recipes_carry_the_keys(tmp_path, monkeypatch):
    """The demo's trainers get --quiet / --log-every through their recipes."""
    from selftaught import demo

    seen = []

    class Stop(Exception):
        pass

    def fake_trainer(config):
        seen.append((config.progress_bar, config.log_every))
        raise Stop

    monkeypatch.setattr(demo, "Trainer", fake_trainer)
    with pytest.raises(Stop):
        demo.run_demo(str(tmp_path), quick=True, logging={"progress_bar": False, "log_every": 0})
    assert seen == [(False, 0)]
