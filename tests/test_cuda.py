"""What must hold on the accelerator users train on: bf16 log-probs and self-certainty against an
fp64 brute force, a GRPO step against the same step in fp32 on the CPU, gradient checkpointing,
LoRA.

Marked `cuda`: `make test` leaves them out; `scripts/gpu_check.sh` runs them on the GPU
(`pytest -m cuda tests/test_cuda.py`). With SELFTAUGHT_TEST_DEVICE=cpu the same tests run on the
CPU under bf16 autocast: the check's dry run (CI) does that, so they cannot rot before a GPU
comes. On the device everything runs as the trainer runs it there: bf16 autocast over fp32
weights (accelerate's mixed precision), fused log-probs.
"""

from __future__ import annotations

import copy
import os

import pytest
import torch

from conftest import tiny_overrides
from multiprocess_worker import CannedSampler
from test_ops import ref_logprob_and_sc

from selftaught.config import build_config
from selftaught.fused_logprobs import fused_token_statistics
from selftaught.losses import policy_loss
from selftaught.ops import token_statistics
from selftaught.scoring import MicroBatch, completion_token_statistics
from selftaught.trainer import Trainer

pytestmark = pytest.mark.cuda

LORA = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}


@pytest.fixture(scope="module")
def device() -> torch.device:
    name = os.environ.get("SELFTAUGHT_TEST_DEVICE")
    if name is None and not torch.cuda.is_available():  # a plain `pytest -m cuda` on a machine without one
        pytest.skip("no CUDA device (SELFTAUGHT_TEST_DEVICE=cpu runs these tests on the CPU)")
    if name == "cuda" and not torch.cuda.is_available():  # asked for by name (the GPU check): missing is a failure
        pytest.fail("SELFTAUGHT_TEST_DEVICE=cuda but torch sees no CUDA device")
    return torch.device(name or "cuda")


def bf16(device):
    return torch.autocast(device.type, dtype=torch.bfloat16)


# ------------------------------------------------------------------ log-probs and self-certainty


def exact_case(B=3, T=9, H=32, V=300, seed=0):
    """Hidden states and head weights whose bf16 matmul is exact: entries ±1/2, 0 and ±1/4, 0, so
    every logit is a multiple of 1/8 with |z| ≤ 4, which bf16 holds exactly. On such inputs a bf16
    path differs from the fp64 truth only by the precision of its vocabulary-wide maths
    (logsumexp, mean, softmax): fp32 there means ~1e-6, bf16 would mean ~1e-2."""
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randint(-1, 2, (B, T, H), generator=g).float() / 2
    weight = torch.randint(-1, 2, (V, H), generator=g).float() / 4
    targets = torch.randint(0, V, (B, T), generator=g)
    mask = torch.rand(B, T, generator=g) > 0.3
    mask[0, 0], mask[1] = True, False  # a padding row
    return hidden, weight, targets, mask


@pytest.mark.parametrize("temperature", [1.0, 0.7])
@pytest.mark.parametrize("path", ["fused", "logits"])
def test_bf16_logprobs_and_self_certainty_match_fp64_brute_force(device, path, temperature):
    hidden, weight, targets, mask = exact_case()
    logits = (hidden.double() @ weight.double().t())
    assert torch.equal(logits, logits.bfloat16().double()), "the case must be exact in bf16"
    want_logp, want_sc = ref_logprob_and_sc(logits, targets, mask, temperature)
    h, w, y, m = (t.to(device) for t in (hidden, weight, targets, mask))
    with bf16(device):
        if path == "fused":  # several chunks of 5 rows; padded rows skipped
            stats = fused_token_statistics(h, w, y, m, temperature, chunk_size=5, entropy=True)
        else:
            z = h @ w.t()
            assert z.dtype == torch.bfloat16  # what a bf16 model's head hands the chunked op
            stats = token_statistics(z, y, m, temperature, chunk_size=5, entropy=True)
    assert stats.logprobs.dtype == torch.float32 and stats.logprobs.device.type == device.type
    torch.testing.assert_close(stats.logprobs.double().cpu(), want_logp, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(stats.self_certainty.double().cpu(), want_sc, atol=1e-5, rtol=1e-5)
    p = torch.softmax(logits / temperature, dim=-1)
    want_entropy = torch.where(mask, -(p * p.log()).sum(-1), 0.0)
    torch.testing.assert_close(stats.entropy.double().cpu(), want_entropy, atol=1e-5, rtol=1e-5)


def test_bf16_fused_gradients_are_the_fp64_gradients_within_bf16_rounding(device):
    """The backward's products run in bf16 (as the model's own head would under autocast): the
    gradients of Σ g_t log p_t carry bf16 rounding, a few parts in a thousand, never more."""
    hidden, weight, targets, mask = exact_case(seed=1)
    upstream = torch.randn(mask.shape, generator=torch.Generator().manual_seed(2))
    h64, w64 = hidden.double().requires_grad_(), weight.double().requires_grad_()
    logp64 = torch.log_softmax((h64 @ w64.t()) / 0.8, -1).gather(-1, targets[..., None]).squeeze(-1)
    (torch.where(mask, logp64, 0.0) * upstream).sum().backward()
    h = hidden.to(device).requires_grad_()
    w = weight.to(device).requires_grad_()
    with bf16(device):
        stats = fused_token_statistics(h, w, targets.to(device), mask.to(device), 0.8, chunk_size=5)
    (stats.logprobs * upstream.to(device)).sum().backward()
    for got, want in ((h.grad, h64.grad), (w.grad, w64.grad)):
        error = float((got.double().cpu() - want).norm() / want.norm())
        assert error < 1e-2, error


# ------------------------------------------------------------------ a training step on the device


def alternating_reward(prompts, completions, completion_ids, **columns):
    """A reward that does not depend on the device's numerics: the advantages are the same on
    both sides, so the gradients can be compared."""
    return [float(len(ids) % 3) for ids in completion_ids]


def one_step(tmp_path, **extra) -> dict:
    """One optimizer step of the trainer as it runs on this device (bf16 autocast when the device
    is a GPU or SELFTAUGHT_TEST_DEVICE=cpu asks for it) on canned completions, and the same step
    recomputed on the CPU in fp32 from a copy of the initial model: both gradients."""
    raw = tiny_overrides(tmp_path, method="grpo", max_steps=1, bf16=True, max_completion_length=12,
                         num_generations=2, per_device_train_batch_size=4, gradient_accumulation_steps=2,
                         learning_rate=1e-3, beta=0.0, max_grad_norm=1e9, **extra)  # no clipping: raw gradients
    trainer = Trainer(build_config(raw), rewards=[alternating_reward],
                      sampler=lambda t: CannedSampler(t.tokenizer, t.config.max_prompt_length,
                                                      t.config.max_completion_length))
    model = trainer.accelerator.unwrap_model(trainer.model)
    initial = copy.deepcopy(model).float().cpu()
    seen = {}
    collect, advantages = trainer.episodes.collect, trainer.episodes.advantages
    trainer.episodes.collect = lambda *a: seen.setdefault("rollout", collect(*a))
    trainer.episodes.advantages = lambda *a: seen.setdefault("advantages", advantages(*a))
    grads, step = {}, trainer.optimizer.step

    def record_then_step(*args, **kwargs):
        grads.update({n: p.grad.detach().float().cpu() for n, p in model.named_parameters() if p.grad is not None})
        return step(*args, **kwargs)

    trainer.optimizer.step = record_then_step
    row = trainer.train()[0]

    rollout, config = seen["rollout"], trainer.config
    rows = MicroBatch.of(rollout, slice(0, len(rollout)), "cpu")
    logp = completion_token_statistics(initial, *rows, temperature=config.temperature, chunk_size=None,
                                       fused=False).logprobs
    loss, _ = policy_loss(logp, logp.detach(), seen["advantages"], rows.completion_mask, loss_type=config.loss_type,
                          num_tokens=float(rows.completion_mask.sum()), num_rows=float(len(rollout)))
    loss.backward()
    want = {n: p.grad for n, p in initial.named_parameters() if p.grad is not None}
    return {"trainer": trainer, "grads": grads, "want": want, "row": row, "reference_loss": loss.item()}


def relative_error(got: dict, want: dict) -> float:
    """‖got − want‖ / ‖want‖ over every parameter's gradient."""
    diff = sum(float((got[n] - want[n]).pow(2).sum()) for n in want)
    return (diff / sum(float(want[n].pow(2).sum()) for n in want)) ** 0.5


def test_grpo_step_on_the_device_is_the_cpu_fp32_step_within_bf16_rounding(device, tmp_path):
    result = one_step(tmp_path)
    trainer = result["trainer"]
    assert trainer.accelerator.device.type == device.type
    assert trainer.accelerator.mixed_precision == "bf16"
    assert result["grads"].keys() == result["want"].keys() and result["grads"]
    assert abs(result["row"]["advantage/abs_mean"]) > 0, "the canned batch must carry a signal"
    error = relative_error(result["grads"], result["want"])
    print(f"GRPO step on {device}: relative gradient error vs fp32 CPU {error:.2e}")
    assert error < 1e-2
    assert result["row"]["loss"] == pytest.approx(result["reference_loss"], abs=1e-3)


def test_gradient_checkpointing_gives_the_same_gradients_on_the_device(device, tmp_path):
    plain = one_step(tmp_path / "plain")
    checkpointed = one_step(tmp_path / "checkpointed", gradient_checkpointing=True)
    error = relative_error(checkpointed["grads"], plain["grads"])
    print(f"gradient checkpointing on {device}: relative gradient difference {error:.2e}")
    assert error < 1e-3  # the same bf16 forward recomputed; only the order of sums may differ on a GPU


def test_lora_step_on_the_device_trains_the_adapter_like_the_cpu_fp32_step(device, tmp_path):
    pytest.importorskip("peft")
    result = one_step(tmp_path, lora=LORA)
    assert result["grads"] and all("lora_" in name for name in result["grads"])
    error = relative_error(result["grads"], result["want"])
    print(f"LoRA step on {device}: relative gradient error vs fp32 CPU {error:.2e}")
    assert error < 1e-2
