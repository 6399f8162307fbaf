"""SIGTERM / SIGINT during training (selftaught.preemption): the step in progress finishes, a
checkpoint is written, the sandbox is closed, the exit code is 128 + the signal's number, and
`--resume` reaches the same parameters as an uninterrupted run; a second signal ends the run
at once and the newest intact checkpoint is a complete one. One process here, through the
command line; two processes in tests/test_multiprocess.py (the signal reaches one rank)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
import torch
import yaml
from safetensors.torch import load_file

from conftest import ROOT, azr_overrides, tiny_overrides

from selftaught import checkpoint
from selftaught.executor import proctree
from selftaught.executor.proctree import descendants
from selftaught.preemption import StopOnSignal, exit_code

INTUITOR_STEPS, AZR_STEPS = 8, 4


def intuitor_raw(output_dir):
    return tiny_overrides(output_dir, max_steps=INTUITOR_STEPS, save_steps=100, beta=0.01)


def azr_raw(output_dir):
    return azr_overrides(output_dir, max_steps=AZR_STEPS, save_steps=100, max_completion_length=24, **{
        "azr.tasks_per_type_role": 2, "azr.learnability_rollouts": 2, "azr.seed_proposals": 1,
        "azr.executor_workers": 1})


RECIPES = {"intuitor": (intuitor_raw, INTUITOR_STEPS), "azr": (azr_raw, AZR_STEPS)}


def command(config_path, *extra):
    return [sys.executable, "-m", "selftaught", "train", "--config", str(config_path), *extra]


def write_config(tmp_path, name, output_dir):
    path = tmp_path / f"{output_dir.name}.yaml"
    path.write_text(yaml.safe_dump(RECIPES[name][0](output_dir)))
    return path


def rows(output_dir):
    path = output_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def still_running(proc) -> bool:
    """The process (pid, start time) exists and is not a zombie."""
    stat = proctree._stat(proc[0])
    return stat is not None and stat[2] == proc[1] and stat[0] != "Z"


def final_weights(output_dir, steps):
    return load_file(output_dir / "checkpoints" / f"step-{steps}" / "model.safetensors")


def signalled_run(config_path, output_dir, signals, after_rows=1):
    """Start a run, send `signals` once `after_rows` metrics rows exist, each after the run has said
    it received the one before; (process, stderr, helpers) where helpers are the processes that were
    below it when the first signal went out."""
    process = subprocess.Popen(command(config_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.time() + 240
    while len(rows(output_dir)) < after_rows:
        assert process.poll() is None, process.stderr.read()
        assert time.time() < deadline, "the run did not reach its first steps"
        time.sleep(0.01)
    helpers = descendants(process.pid)
    said = []
    for k, sig in enumerate(signals):
        if k:  # the handler has run (it says so) before the next signal goes out
            while (line := process.stderr.readline()) and "received" not in line:
                said.append(line)
            said.append(line)
        process.send_signal(sig)
    _, err = process.communicate(timeout=240)
    return process, "".join(said) + err, helpers


@pytest.fixture(scope="module")
def straight_runs(tmp_path_factory):
    """The uninterrupted runs each interrupted one is compared with (one per recipe, made once)."""
    out = {}
    for name, (_, steps) in RECIPES.items():
        tmp = tmp_path_factory.mktemp(f"straight_{name}")
        result = subprocess.run(command(write_config(tmp, name, tmp / "run")), cwd=ROOT, capture_output=True,
                                text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        out[name] = tmp / "run"
    return out


@pytest.mark.parametrize("name,sig", [("intuitor", signal.SIGTERM), ("azr", signal.SIGTERM)])
def test_a_signal_finishes_the_step_checkpoints_closes_and_resume_matches(straight_runs, tmp_path, name, sig):
    steps = RECIPES[name][1]
    output_dir = tmp_path / "run"
    config = write_config(tmp_path, name, output_dir)
    process, err, helpers = signalled_run(config, output_dir, [sig])
    assert process.returncode == exit_code(sig) == 128 + sig, err[-3000:]
    stopped_at = len(rows(output_dir))
    assert 1 <= stopped_at < steps, "the signal came too late to test anything"
    # every step that started finished, and its checkpoint is the one there is (save_steps is 100)
    assert [p.name for p in checkpoint.list_checkpoints(output_dir / "checkpoints")] == [f"step-{stopped_at}"]
    assert checkpoint.damage(output_dir / "checkpoints" / f"step-{stopped_at}") is None
    assert err.strip().splitlines()[-1] == (f"selftaught: stopped by {signal.Signals(sig).name} after step {stopped_at}; "
                                            f"checkpoint {output_dir / 'checkpoints' / f'step-{stopped_at}'} is complete, "
                                            "`--resume` continues from it")
    assert "Traceback" not in err
    # The math-verify worker and the sandbox end with the run (the sandbox is closed by it). A
    # killed grandchild is left for init to reap, which may take a moment on a busy machine: a
    # zombie has ended, so only a process still running counts.
    deadline = time.time() + 10
    while (running := [p for p in helpers if still_running(p)]) and time.time() < deadline:
        time.sleep(0.1)
    assert not running, "helper processes outlived the run"

    resumed = subprocess.run(command(config, "--resume"), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a, b = final_weights(straight_runs[name], steps), final_weights(output_dir, steps)
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=0, rtol=0)
    assert [r["step"] for r in rows(output_dir)] == list(range(1, steps + 1))
    assert [r["loss"] for r in rows(output_dir)] == [r["loss"] for r in rows(straight_runs[name])]


def test_a_second_signal_stops_at_once_and_the_newest_intact_checkpoint_is_complete(straight_runs, tmp_path):
    output_dir = tmp_path / "run"
    raw = {**intuitor_raw(output_dir), "save_steps": 1}  # a checkpoint every step: the second signal often lands in one
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(raw))
    process, err, _ = signalled_run(config, output_dir, [signal.SIGTERM, signal.SIGTERM], after_rows=2)
    # Ended by the signal itself (the shell shows 143), unless the run had already finished its step,
    # written its checkpoint and stopped cleanly before the second signal came (a step here is ~50 ms).
    assert (process.returncode == -signal.SIGTERM and "stopped by" not in err) or \
        (process.returncode == 143 and "stopped by SIGTERM" in err), (process.returncode, err[-3000:])
    newest, skipped = checkpoint.latest_intact(output_dir / "checkpoints", lambda line: None)
    assert newest is not None and skipped == []  # a partial write is never a `step-N` directory
    resumed = subprocess.run(command(config, "--resume"), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0 and f"resumed from {newest}" in resumed.stdout, resumed.stderr[-3000:]
    a, b = final_weights(straight_runs["intuitor"], INTUITOR_STEPS), final_weights(output_dir, INTUITOR_STEPS)
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=0, rtol=0)


def test_the_second_signal_ends_the_process_at_once_by_its_default_action():
    """No step is left to finish: the second signal must not wait for one (here, a sleep of 60 s)."""
    script = textwrap.dedent("""
        import os, signal, time
        from selftaught.preemption import StopOnSignal
        with StopOnSignal():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.1)  # the first is noted: still running
            print("still running", flush=True)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(60)
        print("not reached", flush=True)
    """)
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == -signal.SIGTERM and result.stdout == "still running\n"
    assert result.stderr.count("SIGTERM received") == 1
    assert time.monotonic() - started < 60  # not the sleep: at once


@pytest.fixture
def sigint_handled():
    """Python's own SIGINT handler for the test: a shell that starts a job in the background
    (`make test &`, nohup) has it ignore SIGINT, and an inherited ignore is kept by StopOnSignal."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_sigint_in_process_is_the_same_stop_with_exit_code_130(tmp_path, sigint_handled):
    """Ctrl-C: the same path as SIGTERM (in this process: `Trainer.train()` raises Preempted)."""
    from multiprocess_worker import SignalDuringStep

    from selftaught.config import build_config
    from selftaught.errors import Preempted
    from selftaught.trainer import Trainer

    trainer = Trainer(build_config(intuitor_raw(tmp_path)))
    trainer.sampler = SignalDuringStep(trainer, step=2, signum=signal.SIGINT)
    with pytest.raises(Preempted) as stop:
        trainer.train()
    assert (stop.value.signum, stop.value.step, stop.value.exit_code) == (signal.SIGINT, 2, 130)
    assert stop.value.checkpoint == tmp_path / "checkpoints" / "step-2"
    assert checkpoint.damage(stop.value.checkpoint) is None and len(rows(tmp_path)) == 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # pytest's own, back in place


def test_outside_the_main_thread_signals_keep_their_handlers():
    before = signal.getsignal(signal.SIGTERM)
    seen = []

    def enter():
        with StopOnSignal() as stop:
            seen.append((signal.getsignal(signal.SIGTERM), stop.received))

    thread = threading.Thread(target=enter)
    thread.start()
    thread.join()
    assert seen == [(before, None)]


def test_in_the_main_thread_the_first_signal_is_noted_and_the_old_handlers_come_back(sigint_handled):
    before = signal.getsignal(signal.SIGINT)
    with StopOnSignal(announce=False) as stop:
        os.kill(os.getpid(), signal.SIGINT)  # no KeyboardInterrupt: a request to stop
        assert stop.received == signal.SIGINT
    assert signal.getsignal(signal.SIGINT) is before


def test_a_signal_the_caller_ignores_stays_ignored():
    """nohup, or `cmd &` in a script, start the run with SIGINT ignored: it must stay so."""
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with StopOnSignal(announce=False) as stop:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)
            assert stop.received is None
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)
