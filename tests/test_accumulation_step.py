"""Gradient accumulation's call order, which DDP, FSDP and DeepSpeed rely on
(`distributed.accumulation_step`): gradients are synchronised at the last micro-batch only
(`no_sync` before it), and DeepSpeed's engine is told which backward is the boundary."""

from contextlib import contextmanager

import torch
from accelerate.utils import DistributedType
from conftest import tiny_overrides

from selftaught.config import build_config
from selftaught.distributed import accumulation_step
from selftaught.trainer import Trainer


class RecordingAccelerator:
    def __init__(self, kind):
        self.distributed_type, self.events = kind, []

    @property
    def sync_gradients(self):
        raise AssertionError("read only by accelerate itself")

    @sync_gradients.setter
    def sync_gradients(self, value):
        self.events.append(("boundary", value))

    @contextmanager
    def no_sync(self, model):
        self.events.append("no_sync")
        yield


def _accumulate(kind, micro_batches=3):
    accelerator = RecordingAccelerator(kind)
    for i in range(micro_batches):
        with accumulation_step(accelerator, model=None, last=i == micro_batches - 1):
            accelerator.events.append("backward")
    return accelerator.events


def test_ddp_and_fsdp_synchronise_at_the_last_micro_batch_only():
    for kind in (DistributedType.MULTI_GPU, DistributedType.FSDP, DistributedType.NO):
        assert _accumulate(kind) == ["no_sync", "backward", "no_sync", "backward", "backward"]


def test_deepspeed_is_told_its_boundary_at_every_micro_batch():
    assert _accumulate(DistributedType.DEEPSPEED) == [
        ("boundary", False), "no_sync", "backward", ("boundary", False), "no_sync", "backward",
        ("boundary", True), "backward"]


def test_the_update_skips_synchronisation_on_all_but_its_last_micro_batch(tmp_path, monkeypatch):
    trainer = Trainer(build_config(tiny_overrides(tmp_path, per_device_train_batch_size=2,
                                                  gradient_accumulation_steps=3)))
    entered = []
    no_sync = trainer.accelerator.no_sync

    def recording(model):
        entered.append(model)
        return no_sync(model)

    monkeypatch.setattr(trainer.accelerator, "no_sync", recording)
    rollout = trainer.episodes.collect(trainer.sampler, trainer.completions_per_step())
    scores = trainer.score(rollout)
    update = trainer._update(rollout, scores, torch.linspace(-1.0, 1.0, len(rollout)), rollout)
    assert len(rollout) == 6 and len(entered) == 2 and all(model is trainer.model for model in entered)
    assert torch.isfinite(torch.tensor(update["loss"]))
