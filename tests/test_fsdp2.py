"""FSDP2 (sharded weights) on the CPU: gathered sampling, training and optimizer
checkpoints against an unsharded model (tests/fsdp2_worker.py under torchrun)."""

import json
import subprocess
import sys

from conftest import ROOT
from test_multiprocess import free_port

from selftaught.distributed import Processes
from selftaught.fsdp2 import padded_micro_batches


def test_sharded_model_samples_trains_and_checkpoints_like_the_whole_model(tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(free_port()), str(ROOT / "tests" / "fsdp2_worker.py"), str(tmp_path)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    figures = json.loads((tmp_path / "result.json").read_text())
    for round_ in (0, 1):
        assert figures[f"sampling_equal_{round_}"] is True
        (prompts0, width0), (prompts1, width1) = figures[f"rollout_shapes_{round_}"]
        assert prompts0 != prompts1 and width0 != width1  # different numbers of forwards per rank
        assert figures[f"resharded_{round_}"] is True
        assert figures[f"step_max_param_diff_{round_}"] < 1e-5
    assert figures["update_logprobs_max_diff"] < 1e-6
    assert figures["optimizer_state_entries"] > 0
    assert figures["optimizer_state_max_diff"] < 1e-8
    assert figures["optimizer_round_trip_max_diff"] == 0.0


class _Gathering(Processes):
    """A rank whose gather returns given per-rank values."""

    def __init__(self, counts):
        super().__init__(0, len(counts))
        object.__setattr__(self, "counts", counts)

    def gather(self, item):
        return [item, *self.counts[1:]]


def test_every_rank_runs_the_most_micro_batches_any_rank_has():
    assert len(padded_micro_batches(["a", "b", "c"], Processes.single())) == 3
    assert padded_micro_batches(["a", "b"], _Gathering([2, 5])) == ["a", "b", "a", "a", "a"]  # repeats of the first
    assert len(padded_micro_batches(["a", "b", "c", "d"], _Gathering([4, 1, 3]))) == 4


def _one_update(tmp_path, monkeypatch, extra_micro_batches):
    import torch

    from conftest import tiny_overrides
    from selftaught import fsdp2
    from selftaught.config import build_config
    from selftaught.trainer import Trainer

    if extra_micro_batches:  # as if another rank had more micro-batches under FSDP2
        monkeypatch.setattr(fsdp2, "is_sharded", lambda model: True)
        monkeypatch.setattr(fsdp2, "padded_micro_batches",
                            lambda batches, processes: batches + [batches[0]] * extra_micro_batches)
    # The logits path in both runs (a sharded model never uses the fused one).
    trainer = Trainer(build_config(tiny_overrides(tmp_path, per_device_train_batch_size=2,
                                                  gradient_accumulation_steps=2, fused_logprobs=False)))
    torch.manual_seed(1)
    rollout = trainer.episodes.collect(trainer.sampler, trainer.completions_per_step())
    scores = trainer.score(rollout)
    advantages = torch.linspace(-1.0, 1.0, len(rollout))
    update = trainer._update(rollout, scores, advantages, rollout)  # one process: the whole batch
    return update, [p.detach().clone() for p in trainer.model.parameters()]


def test_padding_micro_batches_change_nothing(tmp_path, monkeypatch):
    plain, plain_params = _one_update(tmp_path / "plain", monkeypatch, 0)
    padded, padded_params = _one_update(tmp_path / "padded", monkeypatch, 2)
    assert padded["loss"] == plain["loss"] and padded["grad_norm"] == plain["grad_norm"]
    assert all(torch_equal(a, b) for a, b in zip(plain_params, padded_params))


def torch_equal(a, b) -> bool:
    import torch

    return torch.equal(a, b)
