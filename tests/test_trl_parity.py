"""Peer test: selftaught's loss and gradients equal TRL 1.16.0's GRPOTrainer's, knob by knob.

Both trainers start from the same saved model and get the same rollout (tests/fixed_rollout.py:
left-padded prompts, completions that end in EOS, at the limit or not at all, rewards with None,
sampler log-probs as vLLM reports them): TRL through its public `rollout_func`, selftaught through
a `RolloutSampler`. Each takes two optimizer steps on it (`num_iterations: 2`), so the second
step sees ratios away from 1 and every clip, gate and mask has something to do. TRL runs its own
`training_step` (its rewards, advantages, old log-probs, importance weights, loss, accumulation
over two micro-batches and backward); for its second step it is given the weights selftaught's
optimizer produced, so that both compute the second loss at the same point. Per step, the summed
micro-batch losses and the gradient must agree to 1e-5 relative, for every loss_type and each
knob on and off.

Two things in TRL are bypassed, both outside the loss: it shuffles a generation batch before
splitting it into micro-batches (turned off, so both trainers' micro-batches hold the same rows),
and `use_vllm` is switched on after construction (no engine is built; the sampler log-probs come
from the rollout), so that its vLLM importance-sampling code runs on our log-probs.

Runs where TRL is installed: `make test-trl` (.venv-trl, SELFTAUGHT_REQUIRE_TRL=1: missing TRL
fails there instead of skipping).
"""

from __future__ import annotations

import importlib.util
import math
import os

import pytest
import torch

from conftest import tiny_overrides
from fixed_rollout import REWARD_COLUMNS, FixedSampler, make_case, record_optimizer_steps, reward_function

REQUIRE_TRL = os.environ.get("SELFTAUGHT_REQUIRE_TRL") == "1"
"""Set by `make test-trl` (.venv-trl, which installs TRL): a missing TRL fails there."""
pytestmark = pytest.mark.skipif(importlib.util.find_spec("trl") is None and not REQUIRE_TRL,
                                reason="TRL is not installed here (`make test-trl` runs this test in .venv-trl)")

G, PER_DEVICE, ACCUMULATION, MAX_COMPLETION, TEMPERATURE = 2, 4, 2, 6, 0.7
LEARNING_RATE = 3e-4
TOLERANCE = 1e-5
LOSS_ABS_TOLERANCE = 1e-6
"""For a loss that is a small difference of O(1) terms (±A weights), float32's rounding of the terms."""
BASE = {"loss_type": "dapo", "use_bias_correction_kl": False, "multi_objective_aggregation": "sum_then_normalize"}
"""Set in every case, in both trainers: TRL's defaults that are not selftaught's."""
VLLM = {"vllm_importance_sampling_correction": True, "vllm_importance_sampling_clip_min": 0.8,
        "vllm_importance_sampling_clip_max": 1.25}
"""Bounds that a token's weight leaves now and then (the reported log-probs carry noise of std 0.25)."""
VLLM_SEQUENCE = {**VLLM, "vllm_importance_sampling_clip_min": 0.5, "vllm_importance_sampling_clip_max": 2.0}
"""... and a sequence's, whose log-ratio is a sum over its tokens."""
CASES = {
    **{loss: {"loss_type": loss} for loss in ("grpo", "bnpo", "dapo", "dr_grpo", "sapo")},
    "cispo": {"loss_type": "cispo", "epsilon_high": 1.05},
    "luspo": {"loss_type": "luspo", "importance_sampling_level": "sequence"},
    "vespo": {"loss_type": "vespo"},
    "gspo": {"loss_type": "grpo", "importance_sampling_level": "sequence", "epsilon": 0.12, "epsilon_high": 0.16},
    "gspo-dapo": {"loss_type": "dapo", "importance_sampling_level": "sequence"},
    "luspo-clipped": {"loss_type": "luspo", "importance_sampling_level": "sequence", "epsilon": 0.12},
    "clip-higher": {"epsilon": 0.02, "epsilon_high": 0.28},
    # The step-1 update lowers every negative-advantage token's probability; the entropy bonus raises
    # some, so that δ has ratios above it to bound.
    "delta": {"delta": 1.05, "entropy_coef": 0.5},
    "sapo-temperatures": {"loss_type": "sapo", "sapo_temperature_pos": 0.5, "sapo_temperature_neg": 2.0},
    "vespo-params": {"loss_type": "vespo", "vespo_k_pos": 1.0, "vespo_lambda_pos": 1.5, "vespo_k_neg": 4.0,
                     "vespo_lambda_neg": 3.0},
    "mask-truncated": {"mask_truncated_completions": True},
    "mask-truncated-grpo": {"loss_type": "grpo", "mask_truncated_completions": True},
    "top-entropy": {"top_entropy_quantile": 0.2},
    "top-entropy-bnpo-truncated": {"loss_type": "bnpo", "top_entropy_quantile": 0.5,
                                   "mask_truncated_completions": True},
    "entropy-bonus": {"entropy_coef": 0.05},
    "entropy-bonus-top-entropy": {"loss_type": "grpo", "entropy_coef": 0.1, "top_entropy_quantile": 0.4},
    "adaptive-entropy": {"use_adaptive_entropy": True, "entropy_coef": 0.02, "entropy_coef_delta": 0.03,
                         "entropy_target": 100.0},
    "normalize-then-sum": {"multi_objective_aggregation": "normalize_then_sum"},
    "scale-batch": {"scale_rewards": "batch"},
    "scale-none": {"scale_rewards": "none", "loss_type": "dr_grpo"},
    "beta": {"beta": 0.05},
    "beta-bias-corrected": {"beta": 0.05, "use_bias_correction_kl": True},
    "beta-bias-corrected-gspo": {"beta": 0.05, "use_bias_correction_kl": True, "loss_type": "grpo",
                                 "importance_sampling_level": "sequence"},
    "off-policy-mask": {"off_policy_mask_threshold": 0.002},
    **{f"vllm-{mode}": {**(VLLM if mode.startswith("token") else VLLM_SEQUENCE), "vllm_importance_sampling_mode": mode}
       for mode in ("token_truncate", "token_mask", "sequence_truncate", "sequence_mask")},
    "vllm-off-policy-mask": {**VLLM, "vllm_importance_sampling_mode": "token_truncate",
                             "off_policy_mask_threshold": 0.05},
    # A masked token's weight enters VESPO's sequence ratio as 1e-8, so token_mask sends φ(w) to ~0 for
    # every row with one (its loss is below the absolute floor, its gradient tiny but compared);
    # token_truncate leaves φ(w) of order one.
    "vllm-vespo": {**VLLM, "loss_type": "vespo", "vllm_importance_sampling_mode": "token_mask"},
    "vllm-vespo-truncate": {**VLLM, "loss_type": "vespo", "vllm_importance_sampling_mode": "token_truncate"},
    "vllm-cispo": {**VLLM_SEQUENCE, "loss_type": "cispo", "epsilon_high": 1.05,
                   "vllm_importance_sampling_mode": "sequence_mask"},
}
"""Case → GRPOConfig settings (both trainers read the same names)."""


@pytest.fixture(scope="module")
def initial(tmp_path_factory):
    """The built-in tiny-random model and tokenizer saved once: both trainers load these weights."""
    from selftaught.models import load_model

    path = tmp_path_factory.mktemp("initial")
    torch.manual_seed(0)
    model, tokenizer = load_model("tiny-random")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def sampler_logprobs(case, model_path, vllm: bool):
    """What vLLM would report: the model's own log-probs plus noise (none without vLLM)."""
    if not vllm:
        return None
    from selftaught.models import load_model
    from selftaught.scoring import completion_token_statistics

    model, tokenizer = load_model(str(model_path))
    rollout = FixedSampler(tokenizer, case).sample([""] * len(case.prompts), G)
    with torch.no_grad():
        logp = completion_token_statistics(model, rollout.prompt_ids, rollout.prompt_mask, rollout.completion_ids,
                                           rollout.completion_mask, temperature=TEMPERATURE, chunk_size=None).logprobs
    noise = torch.randn(logp.shape, generator=torch.Generator().manual_seed(7)) * 0.25
    return [(logp[i, :len(row)] + noise[i, :len(row)]).tolist() for i, row in enumerate(case.completions)]


def selftaught_steps(settings: dict, case, model_path, output_dir) -> list[tuple[float, dict, dict]]:
    """(loss, gradient, weights it was taken at) of each of selftaught's two optimizer steps."""
    from selftaught.config import build_config
    from selftaught.trainer import Trainer

    raw = tiny_overrides(output_dir, max_steps=2, num_iterations=2, num_generations=G,
                         per_device_train_batch_size=PER_DEVICE, gradient_accumulation_steps=ACCUMULATION,
                         max_completion_length=MAX_COMPLETION, temperature=TEMPERATURE, learning_rate=LEARNING_RATE,
                         lr_scheduler_type="constant", max_grad_norm=1e9, save_steps=100,
                         **{"model.name_or_path": str(model_path)}, **settings)
    trainer = Trainer(build_config(raw), sampler=lambda t: FixedSampler(t.tokenizer, case),
                      rewards=[reward_function(c) for c in REWARD_COLUMNS])
    seen = record_optimizer_steps(trainer)
    rows = trainer.train_step()
    return [(row["loss"], grads, weights) for row, (grads, weights) in zip(rows, seen)]


def trl_steps(settings: dict, case, model_path, output_dir, weights: list[dict]) -> list[tuple[float, dict]]:
    """(loss, gradient) of TRL's two optimizer steps on the same rollout, each taken at `weights` (the
    ones selftaught took its steps at; module docstring)."""
    import trl.trainer.grpo_trainer as grpo_module
    from datasets import Dataset
    from transformers import AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    vllm = settings.get("vllm_importance_sampling_correction", False)
    args = GRPOConfig(output_dir=str(output_dir), use_cpu=True, bf16=False, gradient_checkpointing=False,
                      report_to=[], num_generations=G, per_device_train_batch_size=PER_DEVICE,
                      gradient_accumulation_steps=ACCUMULATION, max_completion_length=MAX_COMPLETION,
                      temperature=TEMPERATURE, num_iterations=2, learning_rate=LEARNING_RATE, logging_steps=1,
                      **{key: value for key, value in settings.items()
                         if key != "vllm_importance_sampling_correction"},
                      vllm_importance_sampling_correction=bool(vllm))
    rows = [{"prompt": f"p{i // G}", **{c: case.rewards[c][i] for c in REWARD_COLUMNS}}
            for i in range(len(case.completions))]

    def rollout(prompts, trainer):
        assert len(prompts) == len(case.completions)
        return {"prompt_ids": [case.prompts[i // G] for i in range(len(prompts))],
                "completion_ids": [list(r) for r in case.completions],
                "logprobs": case.sampler_logprobs}

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    trainer = GRPOTrainer(model=str(model_path), reward_funcs=[reward_function(c) for c in REWARD_COLUMNS],
                          args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                          rollout_func=rollout)
    if vllm:  # its importance sampling without an engine: the rollout brings the log-probs
        trainer.use_vllm, trainer._last_loaded_step = True, trainer.state.global_step
    original_shuffle = grpo_module.shuffle_sequence_dict
    grpo_module.shuffle_sequence_dict = lambda batch: batch
    try:
        model = trainer.model
        trainer.current_gradient_accumulation_steps = ACCUMULATION
        steps = []
        for at in weights:
            with torch.no_grad():
                for name, parameter in model.named_parameters():
                    parameter.copy_(at[name])
                    parameter.grad = None
            loss = 0.0
            for micro in range(ACCUMULATION):
                trainer.accelerator.gradient_state._set_sync_gradients(micro == ACCUMULATION - 1)
                loss += float(trainer.training_step(model, rows, None))
            steps.append((loss, {n: p.grad.detach().clone() for n, p in model.named_parameters()
                                 if p.grad is not None}))
        return steps
    finally:
        grpo_module.shuffle_sequence_dict = original_shuffle


def relative_difference(ours: dict, theirs: dict) -> float:
    """‖ours − theirs‖ / ‖theirs‖ over every parameter's gradient."""
    assert ours.keys() == theirs.keys(), set(ours) ^ set(theirs)
    num = sum(float((ours[n] - theirs[n]).double().square().sum()) for n in ours)
    den = sum(float(theirs[n].double().square().sum()) for n in ours)
    assert den > 0, "TRL's gradient is zero: the case tests nothing"
    return math.sqrt(num / den)


def without_knobs(settings: dict) -> dict:
    """The case's loss_type with nothing else turned on (its required partners kept, the vLLM
    correction off); dapo for a plain loss_type case, so that every case differs from its baseline."""
    loss = settings["loss_type"]
    plain = {**BASE, "loss_type": loss, "vllm_importance_sampling_correction": False}
    if loss == "luspo":
        plain["importance_sampling_level"] = "sequence"
    if loss == "cispo":
        plain["epsilon_high"] = settings["epsilon_high"]
    return plain if plain != {**settings, "vllm_importance_sampling_correction": False} else \
        {**BASE, "vllm_importance_sampling_correction": False}


@pytest.mark.parametrize("name", list(CASES))
def test_loss_and_gradients_equal_trl(name, initial, tmp_path):
    settings = {**BASE, **CASES[name]}
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(initial)
    case = make_case(tokenizer.eos_token_id, len(tokenizer), num_prompts=PER_DEVICE * ACCUMULATION // G,
                     num_generations=G, max_completion_length=MAX_COMPLETION)
    case.sampler_logprobs = sampler_logprobs(case, initial, bool(settings.get("vllm_importance_sampling_correction")))
    ours = selftaught_steps(settings, case, initial, tmp_path / "selftaught")
    theirs = trl_steps(settings, case, initial, tmp_path / "trl", [weights for _, _, weights in ours])
    assert len(ours) == len(theirs) == 2
    for step, ((loss, grads, _), (trl_loss, trl_grads)) in enumerate(zip(ours, theirs), 1):
        difference = relative_difference(grads, trl_grads)
        print(f"{name} step {step}: loss {loss:.8f} vs TRL {trl_loss:.8f}; gradient relative difference "
              f"{difference:.2e}")
        assert loss == pytest.approx(trl_loss, rel=TOLERANCE, abs=LOSS_ABS_TOLERANCE), (step, loss, trl_loss)
        assert difference <= TOLERANCE, (step, difference)
    if name == "dapo":
        return  # the baseline itself
    # The case exercises its knob: without it, selftaught's steps differ (else equality proves nothing about it).
    plain = selftaught_steps(without_knobs(settings), case, initial, tmp_path / "plain")
    assert max(relative_difference(grads, plain_grads) for (_, grads, _), (_, plain_grads, _) in zip(ours, plain)) \
        > 100 * TOLERANCE, f"{name}: the same steps as {without_knobs(settings)}"
