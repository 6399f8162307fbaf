"""Truncated importance weights, the sampler mismatch, and what the vLLM backend does without vLLM.

Everything here runs in the main environment (no vLLM): the formulas against explicit loops,
the weight names the engine receives, and the one-line error when vLLM is missing.
"""

import math
import sys

import pytest
import torch

from selftaught.importance import importance_weights, logprob_mismatch, weight_stats
from selftaught.variants import MODES, resolve_correction
from selftaught.losses import k3_kl, policy_loss
from selftaught.rollout import Rollout


def _case(seed=0, N=4, T=6):
    g = torch.Generator().manual_seed(seed)
    old = -torch.rand(N, T, generator=g) * 3
    sampled = old + torch.randn(N, T, generator=g) * 0.8  # large gaps, so the cap bites
    mask = torch.ones(N, T, dtype=torch.bool)
    for row, length in enumerate([6, 3, 1, 0][:N]):
        mask[row, length:] = False  # padding (and one row without tokens)
    sampled = torch.where(mask, sampled, torch.tensor(float("nan")))  # pads must not leak
    return old, sampled, mask


def _reference_weights(old, sampled, mask, mode, clip_max, clip_min=None):
    """TRL's four modes by hand; selftaught's `token`/`sequence` are the truncate modes."""
    mode = {"token": "token_truncate", "sequence": "sequence_truncate"}.get(mode, mode)
    low = -math.inf if clip_min is None else clip_min
    high = math.inf if clip_max is None else clip_max
    N, T = old.shape
    out = torch.ones(N, T)
    for i in range(N):
        total = sum(float(old[i, t] - sampled[i, t]) for t in range(T) if mask[i, t])
        for t in range(T):
            if not mask[i, t]:
                continue
            ratio = math.exp(total if mode.startswith("sequence") else float(old[i, t] - sampled[i, t]))
            if mode.endswith("truncate"):
                out[i, t] = min(max(ratio, low), high)
            else:
                out[i, t] = 0.0 if (ratio < low or ratio > high) else ratio
    return out


@pytest.mark.parametrize("mode", ["token", "sequence"])
@pytest.mark.parametrize("cap", [1.0, 2.0, 50.0])
def test_truncated_weights_match_explicit_loops(mode, cap):
    old, sampled, mask = _case()
    weights = importance_weights(old, sampled, mask, mode, cap)
    torch.testing.assert_close(weights, _reference_weights(old, sampled, mask, mode, cap), rtol=1e-5, atol=1e-6)
    assert torch.isfinite(weights).all() and float(weights.max()) <= cap
    stats = weight_stats(weights, mask, resolve_correction(mode, None, None, None, cap))
    real = [float(weights[i, t]) for i in range(4) for t in range(6) if mask[i, t]]
    assert stats["mean"] == pytest.approx(sum(real) / len(real), rel=1e-5)
    assert stats["truncated_frac"] == pytest.approx(sum(w >= cap for w in real) / len(real))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("clip_min,clip_max", [(None, 3.0), (0.5, 3.0), (0.5, None), (0.8, 1.25)])
def test_trl_modes_match_explicit_loops(mode, clip_min, clip_max):
    old, sampled, mask = _case(seed=3)
    if mode.endswith("truncate") and clip_max is None and clip_min is None:
        return
    correction = resolve_correction(True, mode, clip_min, math.inf if clip_max is None else clip_max, 2.0)
    weights = importance_weights(old, sampled, mask, correction)
    want = _reference_weights(old, sampled, mask, mode, clip_max, clip_min)
    torch.testing.assert_close(weights, want, rtol=1e-5, atol=1e-6)
    real = [float(want[i, t]) for i in range(4) for t in range(6) if mask[i, t]]
    stats = weight_stats(weights, mask, correction)
    assert stats["mean"] == pytest.approx(sum(real) / len(real), rel=1e-5)
    key = "masked_frac" if mode.endswith("mask") else "truncated_frac"
    if mode.endswith("mask"):
        assert stats[key] == pytest.approx(sum(w == 0 for w in real) / len(real))
    if (clip_min, clip_max) == (0.8, 1.25):  # the bounds change tokens (per token: some, not all)
        assert stats[key] > 0 and (mode.startswith("sequence") or stats[key] < 1)


def test_unscored_tokens_weigh_one():
    old, sampled, mask = _case()
    sampled[0, 2] = float("nan")  # vLLM could not score it: no evidence, weight 1, no NaN anywhere
    weights = importance_weights(old, sampled, mask, "token", 2.0)
    assert weights[0, 2] == 1.0 and torch.isfinite(weights).all()
    assert math.isfinite(logprob_mismatch(old, sampled, mask)["mean"])


def test_no_correction_and_bad_mode():
    old, sampled, mask = _case()
    assert importance_weights(old, sampled, mask, "none", 2.0) is None
    with pytest.raises(ValueError, match="token"):
        importance_weights(old, sampled, mask, "tokens", 2.0)


def test_mismatch_is_mean_and_max_over_real_tokens():
    old, sampled, mask = _case()
    gaps = [abs(float(old[i, t] - sampled[i, t])) for i in range(4) for t in range(6) if mask[i, t]]
    found = logprob_mismatch(old, sampled, mask)
    assert found["mean"] == pytest.approx(sum(gaps) / len(gaps), rel=1e-5)
    assert found["max"] == pytest.approx(max(gaps), rel=1e-6)
    assert logprob_mismatch(old, sampled, torch.zeros_like(mask)) == {"mean": 0.0, "max": 0.0}


def test_policy_loss_weighs_the_surrogate_not_the_kl():
    """token_mean of w·L + β·kl, by hand, with the clip and the weights; gradient flows through π_θ only."""
    old, sampled, mask = _case(seed=1)
    g = torch.Generator().manual_seed(2)
    current = (old + torch.randn(old.shape, generator=g) * 0.3).requires_grad_(True)
    ref = old + torch.randn(old.shape, generator=g) * 0.2
    advantages = torch.tensor([1.0, -0.5, 2.0, 0.3])
    weights = importance_weights(old, sampled, mask, "token", 2.0)
    beta, eps = 0.05, 0.2
    loss, _ = policy_loss(current, old, advantages, mask, epsilon=eps, beta=beta, ref_logprobs=ref,
                          importance_weights=weights)
    total, count = 0.0, 0
    for i in range(4):
        for t in range(6):
            if not mask[i, t]:
                continue
            ratio = math.exp(float(current[i, t].detach() - old[i, t]))
            surrogate = -min(ratio * float(advantages[i]), min(max(ratio, 1 - eps), 1 + eps) * float(advantages[i]))
            d = float(ref[i, t] - current[i, t])
            total += float(weights[i, t]) * surrogate + beta * (math.exp(d) - d - 1)
            count += 1
    assert float(loss) == pytest.approx(total / count, rel=1e-5)
    loss.backward()
    assert current.grad is not None and torch.isfinite(current.grad).all()
    unweighted, _ = policy_loss(current.detach(), old, advantages, mask, epsilon=eps)
    assert float(unweighted) != pytest.approx(float(loss))  # the weights changed something
    assert float(k3_kl(current, ref).min()) >= 0


def test_concat_pads_reported_logprobs_and_drops_them_when_a_part_has_none():
    def part(T, logprobs):
        ids = torch.zeros(1, T, dtype=torch.long)
        return Rollout(prompt_ids=torch.zeros(1, 2, dtype=torch.long), prompt_mask=torch.ones(1, 2, dtype=torch.bool),
                       completion_ids=ids, completion_mask=torch.ones(1, T, dtype=torch.bool), prompts=["p"],
                       completions=["c"], sampler_logprobs=logprobs)

    both = Rollout.concat([part(2, torch.tensor([[-1.0, -2.0]])), part(3, torch.tensor([[-3.0, -4.0, -5.0]]))], 0)
    torch.testing.assert_close(both.sampler_logprobs, torch.tensor([[-1.0, -2.0, 0.0], [-3.0, -4.0, -5.0]]))
    assert Rollout.concat([part(2, None), part(3, torch.zeros(1, 3))], 0).sampler_logprobs is None


# ------------------------------------------------------------------ weight names for the engine


def test_policy_weights_give_tied_embeddings_under_both_names():
    from selftaught.models import load_model
    from selftaught.vllm_backend import policy_weights

    model, _ = load_model("tiny-random")
    assert model.config.tie_word_embeddings
    weights = dict(policy_weights(model))
    assert "lm_head.weight" in weights and "model.embed_tokens.weight" in weights
    assert weights["lm_head.weight"].data_ptr() == weights["model.embed_tokens.weight"].data_ptr()
    assert set(weights) == set(model.state_dict())  # exactly the checkpoint's names


def test_policy_weights_merge_lora_like_peft_without_touching_the_policy():
    pytest.importorskip("peft")
    from selftaught.config import LoraSettings
    from selftaught.lora import apply_lora
    from selftaught.models import load_model
    from selftaught.vllm_backend import policy_weights

    base, _ = load_model("tiny-random")
    reference_base = {k: v.clone() for k, v in base.state_dict().items()}
    model = apply_lora(base, LoraSettings(r=4, target_modules=["q_proj", "v_proj", "gate_proj"]), "tiny-random")
    with torch.no_grad():  # B starts at zero (ΔW = 0); make the adapter matter
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    merged = {k: v.clone() for k, v in policy_weights(model)}
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert set(merged) == set(reference_base)
    changed = [k for k in merged if not torch.equal(merged[k], reference_base[k])]
    assert changed and all(any(m in k for m in ("q_proj", "v_proj", "gate_proj")) for k in changed)
    expected = model.merge_and_unload().state_dict()  # PEFT's own merge (this modifies the model)
    for key in merged:
        torch.testing.assert_close(merged[key], expected[key], rtol=1e-5, atol=1e-6)
    assert all(torch.equal(before[k], v) for k, v in before.items())  # policy_weights did not merge in place


# ------------------------------------------------------------------ without vLLM


def test_missing_vllm_is_one_line_exit_2_naming_the_setup(tmp_path, monkeypatch, capsys):
    import yaml
    from conftest import tiny_overrides

    from selftaught.cli import main

    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` raises ImportError, installed or not
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(tiny_overrides(tmp_path / "run", rollout_backend="vllm")))
    assert main(["train", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "make setup-vllm" in err, err


def test_vllm_keys_are_validated():
    from selftaught.config import build_config
    from selftaught.errors import UserError

    for bad in ({"vllm_importance_sampling_correction": "tokens"}, {"vllm_importance_sampling_cap": 0.5},
                {"rollout_backend": "sglang"}, {"vllm_gpu_memory_utilization": 1.5}):
        with pytest.raises(UserError):
            build_config(bad)
    assert build_config({}).rollout_backend == "selftaught"
