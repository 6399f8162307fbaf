"""The trainer's fused path (default) against its logits path: same log-probs,
self-certainty and parameter gradients on the built-in model, with left-padded
prompts, early-ending completions and a temperature; and the config switch back."""

import pytest
import torch

from selftaught.config import build_config
from selftaught.scoring import completion_token_statistics
from selftaught.trainer import Trainer

from conftest import tiny_overrides


def test_fused_and_logits_paths_agree_on_values_and_parameter_gradients(tmp_path):
    trainer = Trainer(build_config(tiny_overrides(tmp_path)))
    rollout = trainer.sampler.sample(["Q: What is 3 + 4?\nA:", "Q: Hi\nA:"], num_generations=2)
    rollout.completion_mask[0, 3:] = False
    rollout.completion_ids[0, 3:] = trainer.tokenizer.pad_token_id
    model = trainer.accelerator.unwrap_model(trainer.model).train()
    rows = (rollout.prompt_ids, rollout.prompt_mask, rollout.completion_ids, rollout.completion_mask)
    upstream = torch.randn(rollout.completion_ids.shape, generator=torch.Generator().manual_seed(0))
    results = []
    for fused in (True, False):
        model.zero_grad(set_to_none=True)
        logp, sc, _ = completion_token_statistics(model, *rows, temperature=0.7, chunk_size=3, fused=fused)
        (logp * upstream).sum().backward()
        results.append((logp.detach(), sc, {n: p.grad.clone() for n, p in model.named_parameters()}))
    (logp_f, sc_f, grad_f), (logp_l, sc_l, grad_l) = results
    torch.testing.assert_close(logp_f, logp_l, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sc_f, sc_l, atol=1e-5, rtol=1e-5)
    assert (logp_f[0, 3:] == 0).all() and (sc_f[0, 3:] == 0).all()
    assert grad_f.keys() == grad_l.keys()
    for name in grad_f:
        torch.testing.assert_close(grad_f[name], grad_l[name], atol=1e-5, rtol=1e-4, msg=name)


def test_config_switch_back_to_the_logits_path_trains(tmp_path):
    config = build_config(tiny_overrides(tmp_path, fused_logprobs=False, max_steps=1))
    assert config.fused_logprobs is False
    assert build_config(tiny_overrides(tmp_path)).fused_logprobs is True
    history = Trainer(config).train()
    assert len(history) == 1 and history[0]["self_certainty/mean"] > 0


def first_tiny_step(path, **settings) -> tuple[dict, dict[str, torch.Tensor]]:
    """The first step of a tiny run, by default in two micro-batches (so the update runs its own
    forwards): (its metrics row, name → the gradient the optimizer was given)."""
    from fixed_rollout import first_step

    torch.manual_seed(0)
    settings = {"gradient_accumulation_steps": 2, "per_device_train_batch_size": 2, **settings}
    return first_step(Trainer(build_config(tiny_overrides(path, max_steps=1, temperature=0.7, logits_chunk_size=3,
                                                          **settings))))


def assert_same_step(a, b, keys=("loss", "ratio/mean", "clip_fraction", "kl/mean", "entropy/mean")):
    (row_a, grad_a), (row_b, grad_b) = a, b
    assert any(bool(g.abs().sum() > 0) for g in grad_b.values()), "a step that moves something"
    for key in keys:
        assert (key in row_a) == (key in row_b), key
        if key in row_b:
            assert row_a[key] == pytest.approx(row_b[key], rel=1e-4, abs=1e-6), key
    assert grad_a.keys() == grad_b.keys()
    for name in grad_b:
        torch.testing.assert_close(grad_a[name], grad_b[name], atol=1e-6, rtol=1e-4, msg=name)


def test_the_update_takes_the_heads_gradients_in_the_forward_and_gets_the_logits_paths_step(tmp_path, monkeypatch):
    """Two micro-batches (so the update runs its own forwards): with the fused path the update's loss
    comes from `completion_token_loss` (head gradients in the forward); its gradient and statistics
    equal those of the logits path's autograd."""
    from selftaught import trainer as trainer_module

    calls = []
    real = trainer_module.completion_token_loss
    monkeypatch.setattr(trainer_module, "completion_token_loss", lambda *a, **k: calls.append(1) or real(*a, **k))
    results = [first_tiny_step(tmp_path / str(fused), fused_logprobs=fused, beta=0.02) for fused in (True, False)]
    assert len(calls) == 2, "the fused run's two micro-batches, and none in the logits run"
    assert_same_step(*results)


@pytest.mark.parametrize("settings", [
    {"loss_type": "cispo", "epsilon_high": 1.5, "beta": 0.02, "use_bias_correction_kl": True},
    {"loss_type": "sapo", "sapo_temperature_neg": 1.5},
    {"loss_type": "bnpo", "delta": 1.3, "epsilon_high": 0.28},
], ids=["cispo-kl", "sapo", "bnpo-delta"])
def test_the_fast_update_is_the_general_one_for_per_token_losses(tmp_path, monkeypatch, settings):
    """A loss that is a sum of per-token terms takes the fast path (`completion_token_loss`: the head's
    gradients in the forward); with that path switched off the same step goes through the general one
    (`fused_token_statistics` and a backward), and loss, statistics and gradients agree."""
    from selftaught import trainer as trainer_module

    calls = []
    real = trainer_module.completion_token_loss
    results = []
    for fast in (True, False):
        monkeypatch.setattr(trainer_module, "completion_token_loss",
                            (lambda *a, **k: calls.append(1) or real(*a, **k)) if fast else (lambda *a, **k: None))
        results.append(first_tiny_step(tmp_path / str(fast), **settings))
    assert len(calls) == 2, "the fast run's two micro-batches"
    assert_same_step(*results)


@pytest.mark.parametrize("settings", [
    {"entropy_coef": 0.05, "top_entropy_quantile": 0.5},
    {"loss_type": "grpo", "importance_sampling_level": "sequence", "use_adaptive_entropy": True},
    {"loss_type": "dapo", "beta": 0.02},
], ids=["entropy-bonus-top-entropy", "gspo-adaptive-entropy", "dapo-kl"])
def test_one_forward_for_scoring_and_update_is_the_two_pass_step(tmp_path, monkeypatch, settings):
    """One micro-batch with μ = 1: the scoring forward is the update's (`_score_step`), its entropy
    included when the loss reads it (bonus, top-entropy mask); the same step with two passes agrees."""
    one = {"gradient_accumulation_steps": 1, "per_device_train_batch_size": 4, **settings}
    taken = []
    real = Trainer._one_forward
    monkeypatch.setattr(Trainer, "_one_forward", lambda self, rollout: taken.append(real(self, rollout)) or taken[-1])
    results = [first_tiny_step(tmp_path / "one", **one)]
    assert taken == [True]
    monkeypatch.setattr(Trainer, "_one_forward", lambda self, rollout: False)
    results.append(first_tiny_step(tmp_path / "two", **one))
    assert_same_step(*results)
