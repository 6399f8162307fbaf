"""Two machines, for real: two `accelerate launch` commands as two nodes on localhost.

Each node is the command docs/scaling.md gives for a cluster (`--num_machines 2 --machine_rank R
--main_process_ip HOST --main_process_port PORT`, one process per node here), with the rendezvous
on 127.0.0.1. The nodes train (Intuitor on the random model, a checkpoint every step), node 1 is
killed (its whole process tree, SIGKILL) once the first checkpoint exists, node 0 must then stop
by itself, both are relaunched with `--resume` on the shared output directory, and the final
parameters must equal, bit for bit, those of the same training as one node with two processes.

Every wait is bounded: a launch that does not finish, or a surviving node that hangs on its dead
peer, fails the test within minutes and leaves no process behind. Marked `multinode` (`make
test-multinode`, run by .ci/run): about two minutes of launches.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
import torch
import yaml
from safetensors.torch import load_file

from conftest import ROOT, tiny_overrides
from test_multiprocess import ACCELERATE, free_port

pytestmark = pytest.mark.multinode

STEPS = 3
LAUNCH_TIMEOUT_S = 300  # a launch (start-up + 3 tiny steps) that takes longer is a hang
SURVIVOR_TIMEOUT_S = 90  # how long node 0 may take to notice that node 1 is gone


def node_command(machine_rank: int, port: int, config: Path, *extra: str) -> list[str]:
    """The multi-node launch of docs/scaling.md, for one of two machines with one process each."""
    return [str(ACCELERATE), "launch", "--multi_gpu", "--num_machines", "2", "--machine_rank", str(machine_rank),
            "--num_processes", "2", "--main_process_ip", "127.0.0.1", "--main_process_port", str(port),
            "--mixed_precision", "no", "--dynamo_backend", "no",
            "-m", "selftaught", "train", "--config", str(config), *extra]


def single_node_command(port: int, config: Path) -> list[str]:
    return [str(ACCELERATE), "launch", "--multi_gpu", "--num_machines", "1", "--num_processes", "2",
            "--main_process_port", str(port), "--mixed_precision", "no", "--dynamo_backend", "no",
            "-m", "selftaught", "train", "--config", str(config)]


def kill_tree(process: subprocess.Popen) -> None:
    """SIGKILL the launcher and everything below it (torchrun starts its workers in their own sessions,
    so a process-group kill would miss them)."""
    try:
        root = psutil.Process(process.pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        tree = []
    for p in tree:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(tree, timeout=30)
    process.wait(timeout=30)


class Nodes:
    """Launched processes, each killed with its whole tree when the test ends, however it ends."""

    def __init__(self, logs: Path):
        self.logs, self.running = logs, []

    def start(self, name: str, command: list[str]) -> subprocess.Popen:
        log = (self.logs / f"{name}.log").open("w")
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        self.running.append(process)
        return process

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text()[-4000:]

    def finish(self, name: str, process: subprocess.Popen, timeout: float = LAUNCH_TIMEOUT_S) -> int:
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.close()
            pytest.fail(f"{name} did not finish within {timeout:.0f} s:\n{self.log(name)}")

    def close(self) -> None:
        for process in self.running:
            if process.poll() is None:
                kill_tree(process)


@pytest.fixture
def nodes(tmp_path):
    launched = Nodes(tmp_path)
    yield launched
    launched.close()


def write_config(path: Path, output_dir: Path) -> Path:
    raw = tiny_overrides(output_dir, max_steps=STEPS, save_steps=1, save_total_limit=STEPS, beta=0.01,
                         max_completion_length=16)
    path.write_text(yaml.safe_dump(raw))
    return path


def losses(output_dir: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (output_dir / "metrics.jsonl").read_text().splitlines()]


def test_two_nodes_killed_and_resumed_equal_one_node_with_two_processes(tmp_path, nodes):
    single = tmp_path / "single"
    run = nodes.start("single", single_node_command(free_port(), write_config(tmp_path / "single.yaml", single)))
    assert nodes.finish("single", run) == 0, nodes.log("single")

    shared = tmp_path / "two-nodes"  # the shared file system both nodes see
    config = write_config(tmp_path / "two-nodes.yaml", shared)
    port = free_port()
    node0 = nodes.start("node0", node_command(0, port, config))
    node1 = nodes.start("node1", node_command(1, port, config))
    first = shared / "checkpoints" / "step-1"
    deadline = time.time() + LAUNCH_TIMEOUT_S
    while not first.exists():
        if node0.poll() is not None or node1.poll() is not None:
            pytest.fail(f"a node ended before the first checkpoint:\n{nodes.log('node0')}\n{nodes.log('node1')}")
        if time.time() > deadline:
            pytest.fail(f"no checkpoint within {LAUNCH_TIMEOUT_S} s:\n{nodes.log('node0')}\n{nodes.log('node1')}")
        time.sleep(0.01)
    kill_tree(node1)
    killed_before_end = not (shared / "checkpoints" / f"step-{STEPS}").exists()
    survivor = nodes.finish("node0 after its peer was killed", node0, timeout=SURVIVOR_TIMEOUT_S)
    assert killed_before_end, "the kill came after the last step: nothing was interrupted"
    assert survivor != 0, "node 0 reported success although its peer died mid-run"

    port = free_port()
    resumed = [nodes.start(f"resume{rank}", node_command(rank, port, config, "--resume")) for rank in (0, 1)]
    for rank, process in enumerate(resumed):
        assert nodes.finish(f"resume{rank}", process) == 0, nodes.log(f"resume{rank}")
    assert "resumed from" in nodes.log("resume0")

    want = load_file(single / "checkpoints" / f"step-{STEPS}" / "model.safetensors")
    got = load_file(shared / "checkpoints" / f"step-{STEPS}" / "model.safetensors")
    assert want.keys() == got.keys()
    for key in want:
        torch.testing.assert_close(got[key], want[key], atol=0, rtol=0)
    assert losses(shared) == losses(single)
    state = torch.load(shared / "checkpoints" / f"step-{STEPS}" / "trainer_state.pt", weights_only=False)
    assert state["num_processes"] == 2 and state["step"] == STEPS
