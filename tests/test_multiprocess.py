"""Two processes on the CPU (gloo) through `accelerate launch`: one optimizer step on 2
processes equals one on 1 process with the same global batch; Intuitor, GRPO and AZR
run end to end; AZR keeps one global task buffer; `--resume` continues a 2-process run
exactly; a checkpoint refuses another process count."""

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from conftest import ROOT, tiny_overrides
from multiprocess_worker import SCENARIOS, equivalence_step

from selftaught.azr.tasks import TASK_TYPES
from selftaught.config import build_config
from selftaught.distributed import Processes, check_launch
from selftaught.errors import UserError

ACCELERATE = Path(sys.executable).parent / "accelerate"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(*args, timeout=300) -> subprocess.CompletedProcess:
    """`accelerate launch` with two CPU processes. `--multi_gpu` is accelerate's torchrun launcher; on
    a machine without GPUs its processes run on the CPU (gloo). Its CPU launcher needs mpirun."""
    command = [str(ACCELERATE), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
               "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(free_port()), *args]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


def train(config_path, *extra):
    return launch("-m", "selftaught", "train", "--config", str(config_path), *extra)


def write(path, raw):
    path.write_text(yaml.safe_dump(raw))
    return path


def rows(output_dir):
    return [json.loads(line) for line in (output_dir / "metrics.jsonl").read_text().splitlines()]


# ------------------------------------------------------------------ equivalence


@pytest.fixture(scope="module")
def two_process_results(tmp_path_factory):
    """One launch runs every equivalence scenario and the AZR step (start-up is the slow part)."""
    out = tmp_path_factory.mktemp("two_processes")
    launch(str(ROOT / "tests" / "multiprocess_worker.py"), str(out))
    return out


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_two_processes_take_the_same_step_as_one(two_process_results, scenario, tmp_path):
    """8 completions: 2 processes × 2 micro-batches of 2, or 1 process × 2 micro-batches of 4."""
    two = torch.load(two_process_results / f"{scenario}.pt")
    one = equivalence_step(tmp_path, scenario, processes=1)
    assert one["grads"].keys() == two["grads"].keys() and one["grads"]
    grad_diff = max(float((one["grads"][k] - two["grads"][k]).abs().max()) for k in one["grads"])
    grad_scale = max(float(g.abs().max()) for g in one["grads"].values())
    param_diff = max(float((one["params"][k] - two["params"][k]).abs().max()) for k in one["params"])
    print(f"{scenario}: max |Δgrad| {grad_diff:.2e} (max |grad| {grad_scale:.2e}), max |Δparam| {param_diff:.2e}")
    assert grad_diff <= 1e-6 * max(grad_scale, 1.0)
    assert param_diff <= 1e-6
    assert one["loss"] == pytest.approx(two["loss"], rel=1e-5, abs=1e-7)
    assert one["reward/mean"] == pytest.approx(two["reward/mean"], rel=1e-6)
    if scenario == "lora":  # only the adapter trains, on both sides
        assert all("lora_" in name for name in one["grads"])


def test_azr_two_processes_share_one_global_buffer(two_process_results):
    out = two_process_results / "azr"
    ranks = [json.loads((out / f"azr_rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["buffers"] == ranks[1]["buffers"], "every rank must hold the same buffers"
    held = {json.dumps(task) for tasks in ranks[0]["buffers"].values() for task in tasks}
    for rank in ranks:  # what either rank validated is in everyone's buffers
        assert rank["proposed"] and all(json.dumps(task) in held for task in rank["proposed"])
    assert ranks[0]["rng"] != ranks[1]["rng"], "ranks must sample from different random streams"
    row = ranks[0]["rows"][0]
    for task_type in TASK_TYPES:  # B = 2 over all ranks, 1 per rank
        assert row[f"azr/{task_type}/propose/count"] == 2 and row[f"azr/{task_type}/solve/count"] == 2
        assert row[f"azr/seed/{task_type}/proposals"] == 2
    state = torch.load(out / "checkpoints" / "step-1" / "trainer_state.pt", weights_only=False)
    assert state["num_processes"] == 2 and len(state["rng_per_rank"]) == 2
    assert not torch.equal(state["rng_per_rank"][0]["torch"], state["rng_per_rank"][1]["torch"])
    exported = (out / "buffers" / "induction.jsonl").read_text().splitlines()
    assert len(exported) == len(ranks[0]["buffers"]["induction"])


# ------------------------------------------------------------------ end to end


def test_intuitor_two_processes_end_to_end_then_resume_matches(tmp_path):
    straight = tmp_path / "straight"
    config = write(tmp_path / "intuitor.yaml", tiny_overrides(straight, beta=0.01))
    result = train(config)
    assert result.stdout.count("done: 2 steps") == 1, "only rank 0 reports"
    history = rows(straight)
    assert [r["step"] for r in history] == [1, 2], "rank 0 alone writes metrics"
    assert history[0]["rewards/self_certainty/mean"] > 0 and history[0]["self_certainty/mean"] > 0
    state = torch.load(straight / "checkpoints" / "step-2" / "trainer_state.pt", weights_only=False)
    assert state["num_processes"] == 2
    assert not torch.equal(state["rng_per_rank"][0]["torch"], state["rng_per_rank"][1]["torch"])

    # Resume from step 1 with the same number of processes: the same step 2.
    resumed = tmp_path / "resumed"
    shutil.copytree(straight, resumed)
    shutil.rmtree(resumed / "checkpoints" / "step-2")
    result = train(write(tmp_path / "resumed.yaml", tiny_overrides(resumed, beta=0.01)), "--resume")
    assert "resumed from" in result.stdout
    a = load_file(straight / "checkpoints" / "step-2" / "model.safetensors")
    b = load_file(resumed / "checkpoints" / "step-2" / "model.safetensors")
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=0, rtol=0)
    assert [r["loss"] for r in rows(resumed)] == [r["loss"] for r in history]

    # Another process count is refused with one line.
    with pytest.raises(UserError, match="written by 2 process"):
        from selftaught.trainer import Trainer

        Trainer(build_config(tiny_overrides(resumed, beta=0.01)), resume=True)


def test_grpo_two_processes_end_to_end(tmp_path):
    out = tmp_path / "grpo"
    train(write(tmp_path / "grpo.yaml", tiny_overrides(out, method="grpo", max_steps=1)))
    (row,) = rows(out)
    assert "rewards/math_answer/mean" in row and row["step"] == 1
    # 4 completions per process, 8 per step: the metrics cover the whole batch
    completions = [json.loads(line) for line in (out / "completions.jsonl").read_text().splitlines()]
    assert len(completions) == 2 and (out / "checkpoints" / "step-1" / "model.safetensors").is_file()


def test_azr_two_processes_end_to_end_on_the_random_model(tmp_path):
    raw = yaml.safe_load((ROOT / "configs" / "azr_tiny.yaml").read_text())
    raw.update(output_dir=str(tmp_path / "azr"), max_steps=1, progress_bar=False, max_completion_length=24)
    raw["model"] = {"name_or_path": "tiny-random"}
    raw["azr"].update(tasks_per_type_role=2, learnability_rollouts=2, seed_proposals=1, seed_rounds=1,
                      executor_workers=1)
    train(write(tmp_path / "azr.yaml", raw))
    (row,) = rows(tmp_path / "azr")
    for task_type in raw["azr"].get("task_types", TASK_TYPES):
        assert row[f"azr/{task_type}/propose/count"] == 2 and row[f"azr/{task_type}/solve/count"] == 2
    assert (tmp_path / "azr" / "buffers" / "deduction.jsonl").is_file()


# ------------------------------------------------------------------ units


def test_share_splits_whole_items_and_refuses_uneven_batches():
    assert [Processes(r, 2).share(8) for r in (0, 1)] == [slice(0, 4), slice(4, 8)]
    assert Processes.single().share(3) == slice(0, 3)
    with pytest.raises(UserError, match="split evenly over 2 processes"):
        Processes(1, 2).share(3, "azr.tasks_per_type_role")


def test_a_launch_that_started_one_of_several_processes_is_refused(monkeypatch):
    class OneProcess:
        num_processes = 1

    for key in ("WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    check_launch(OneProcess())  # a plain `selftaught train`
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "no")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    with pytest.raises(UserError, match="--multi_gpu"):
        check_launch(OneProcess())


def test_fsdp2_is_accepted_and_the_sharded_setups_without_gathered_sampling_are_refused():
    from types import SimpleNamespace

    from accelerate.utils import DistributedType

    from selftaught.trainer import _check_parallelism

    def accelerator(kind, stage=None, fsdp_version=None):
        plugin = None if stage is None else SimpleNamespace(zero_stage=stage)
        fsdp = None if fsdp_version is None else SimpleNamespace(fsdp_version=fsdp_version)
        return SimpleNamespace(distributed_type=kind, state=SimpleNamespace(deepspeed_plugin=plugin, fsdp_plugin=fsdp))

    _check_parallelism(accelerator(DistributedType.MULTI_GPU))
    _check_parallelism(accelerator(DistributedType.DEEPSPEED, stage=2))
    _check_parallelism(accelerator(DistributedType.FSDP, fsdp_version=2))
    with pytest.raises(UserError, match="fsdp_version: 2"):
        _check_parallelism(accelerator(DistributedType.FSDP, fsdp_version=1))
    with pytest.raises(UserError, match="ZeRO-3"):
        _check_parallelism(accelerator(DistributedType.DEEPSPEED, stage=3))


# ------------------------------------------------------------------ preemption


@pytest.mark.parametrize("name", ["intuitor", "azr"])
def test_sigterm_on_one_rank_stops_every_rank_after_the_step_and_resume_matches(two_process_results, name):
    """multiprocess_worker.preempted_then_resumed: SIGTERM reaches rank 0 alone while step 2 is collected."""
    import signal

    from selftaught import checkpoint

    out = two_process_results / f"preempt_{name}"
    for rank in (0, 1):
        record = json.loads((out / f"stop_rank{rank}.json").read_text())
        assert record["stop"] == {"signum": signal.SIGTERM, "step": 2, "exit_code": 143,
                                  "checkpoint": str(out / "stopped" / "checkpoints" / "step-2"),
                                  "executor_closed": True}, (rank, record)
        assert record["resumed_from"] == 2
    assert checkpoint.damage(out / "stopped" / "checkpoints" / "step-2") is None
    parameters = torch.load(out / "parameters.pt")
    straight, resumed = parameters["straight"], parameters["resumed"]
    assert straight.keys() == resumed.keys() and straight
    for key in straight:
        torch.testing.assert_close(straight[key], resumed[key], atol=0, rtol=0)
