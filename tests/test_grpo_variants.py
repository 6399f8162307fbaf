"""Every GRPO knob of TRL 1.16 (docs/reference.md §2.2–2.9) against a brute-force reference.

`reference_loss` below builds the documented loss one token and one sequence at a time with
Python loops (scalar tensor ops, so autograd gives the reference gradient), over several
micro-batches, with padding, rows without tokens, and the importance weights, entropies and
behaviour log-probs the trainer passes. `policy_loss`, called per micro-batch as the trainer
calls it, must give the same loss and the same gradient for every loss_type and each knob on
and off. (Equality with TRL's own GRPOTrainer is tests/test_trl_parity.py, in .venv-trl.)
"""

import math

import pytest
import torch

from selftaught.config import build_config
from selftaught.errors import UserError
from selftaught.losses import EntropyBonus, entropy_threshold, high_entropy_mask, policy_loss
from selftaught.variants import LOSS_TYPES

B, T = 6, 5
MICRO = [range(0, 2), range(2, 4), range(4, 6)]  # the trainer's micro-batches are of equal size
LENGTHS = [5, 3, 0, 4, 1, 5]  # padding, and one row without tokens


def make_inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(B, T, dtype=torch.bool)
    for b, n in enumerate(LENGTHS):
        mask[b, :n] = True
    old = -torch.rand(B, T, generator=g, dtype=torch.float64) * 2 - 0.1
    lp = old + torch.randn(B, T, generator=g, dtype=torch.float64) * 0.35  # ratios on both sides of every clip
    ref = old + torch.randn(B, T, generator=g, dtype=torch.float64) * 0.2
    sampler = old + torch.randn(B, T, generator=g, dtype=torch.float64) * 0.5
    weights = torch.exp(old - sampler).clamp(max=2.0)  # vLLM importance weights (token_truncate)
    ent = torch.rand(B, T, generator=g, dtype=torch.float64) * 3
    adv = torch.tensor([1.2, -0.7, 0.4, -1.5, 0.9, -0.3], dtype=torch.float64)
    # padding positions hold values that would change every result if they leaked
    for t in (lp, old, ref, sampler, ent):
        t[~mask] = 7.0
    weights[~mask] = 1.0
    return dict(lp=lp, old=old, ref=ref, sampler=sampler, weights=weights, ent=ent, adv=adv, mask=mask)


def quantile(sorted_values, q):
    """Linear interpolation between the order statistics, as numpy's default."""
    position = q * (len(sorted_values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def reference_loss(x, s, micro=MICRO):
    """The loss of settings `s` summed over the micro-batches `micro` (ranges of rows), one token at a
    time (docs/reference.md §2.2–2.9)."""
    lp, old, ref, adv, mask, ent = x["lp"], x["old"], x["ref"], x["adv"], x["mask"], x["ent"]
    B, T = lp.shape
    loss_type = s.get("loss_type", "token_mean")
    level = s.get("importance_sampling_level", "token")
    eps_low = s.get("epsilon", 0.2)
    eps_high = s.get("epsilon_high") if s.get("epsilon_high") is not None else eps_low
    delta, beta = s.get("delta"), s.get("beta", 0.0)
    weights = x["weights"] if s.get("weights") else None
    coef, q = s.get("entropy_coef", 0.0), s.get("top_entropy_quantile", 1.0)
    all_tokens = int(mask.sum())
    total = torch.zeros((), dtype=torch.float64)
    for rows in micro:
        keep_token = {}
        if q < 1.0:
            pool = sorted(float(ent[b, t]) for b in rows for t in range(T) if mask[b, t])
            threshold = quantile(pool, 1 - q)
            keep_token = {(b, t): float(ent[b, t]) >= threshold for b in rows for t in range(T) if mask[b, t]}
        per_token = {}
        for b in rows:
            real = [t for t in range(T) if mask[b, t]]
            a = float(adv[b])
            seq_log_ratio = sum(lp[b, t] - float(old[b, t]) for t in real) / len(real) if real else 0.0
            keep_row = 1.0
            if s.get("off_policy_mask_threshold") is not None and real:
                behaviour = x["sampler"] if s.get("weights") else old
                drift = sum(float(behaviour[b, t]) - float(lp[b, t]) for t in real) / len(real)
                keep_row = 1.0 if (a >= 0 or drift <= s["off_policy_mask_threshold"]) else 0.0
            phi = None
            if loss_type == "vespo":
                k, lam = (s.get("vespo_k_pos", 2.0), s.get("vespo_lambda_pos", 3.0)) if a >= 0 else \
                    (s.get("vespo_k_neg", 3.0), s.get("vespo_lambda_neg", 2.0))
                log_w = sum(min(max(float(lp[b, t] - old[b, t]), -20), 20) for t in real)
                if weights is not None:
                    log_w += sum(min(max(math.log(float(weights[b, t])), math.log(1e-8)), 20) for t in range(T))
                log_w = min(max(log_w, math.log(1e-8)), 20)
                phi = math.exp(lam + k * log_w - lam * math.exp(log_w))
            for t in real:
                rho = torch.exp(lp[b, t] - float(old[b, t])) if level == "token" else torch.exp(seq_log_ratio)
                if loss_type == "cispo":
                    value = -min(float(rho), eps_high) * a * lp[b, t]
                elif loss_type == "sapo":
                    tau = s.get("sapo_temperature_pos", 1.0) if a > 0 else s.get("sapo_temperature_neg", 1.05)
                    value = -torch.sigmoid(tau * (rho - 1)) * 4 / tau * a
                elif loss_type == "vespo":
                    value = -phi * a * lp[b, t]
                else:
                    unclipped = rho if delta is None else torch.clamp(rho, max=delta)
                    clipped = torch.clamp(rho, 1 - eps_low, 1 + eps_high)
                    value = -torch.minimum(unclipped * a, clipped * a)
                value = value * keep_row
                if keep_token:
                    value = value * float(keep_token[(b, t)])
                if weights is not None and loss_type != "vespo":
                    value = value * float(weights[b, t])
                if beta:
                    d = float(ref[b, t]) - lp[b, t]
                    kl = torch.exp(d) - d - 1
                    value = value + beta * (kl * rho if s.get("use_bias_correction_kl") else kl)
                per_token[(b, t)] = value
        aggregation = {"dapo": "token_mean", "cispo": "token_mean", "vespo": "token_mean", "grpo": "seq_mean",
                       "sapo": "seq_mean", "bnpo": "bnpo", "luspo": "seq_sum"}.get(loss_type, loss_type)
        if aggregation == "token_mean":
            total = total + sum(per_token.values()) / all_tokens
        elif aggregation == "bnpo":
            count = sum(1 for b in rows for t in range(T) if mask[b, t])
            total = total + sum(per_token.values()) / max(count, 1) / len(micro)
        elif aggregation == "seq_mean":
            for b in rows:
                values = [per_token[(b, t)] for t in range(T) if mask[b, t]]
                total = total + (sum(values) / len(values) if values else 0.0) / B
        elif aggregation == "seq_sum":
            total = total + sum(per_token.values()) / B
        else:  # dr_grpo
            total = total + sum(per_token.values()) / (B * s["max_completion_length"])
        if coef:
            tokens = [(b, t) for b in rows for t in range(T) if mask[b, t] and keep_token.get((b, t), True)]
            total = total - coef * (sum(ent[b, t] for b, t in tokens) / max(len(tokens), 1)) / len(micro)
    return total


def selftaught_loss(x, s):
    """`policy_loss` per micro-batch, as the trainer calls it (global counts), summed."""
    settings = {k: v for k, v in s.items() if k not in ("weights", "top_entropy_quantile")}
    total = 0.0
    for rows in MICRO:
        index = slice(rows.start, rows.stop)
        mask = x["mask"][index]
        entropy_mask = None
        if s.get("top_entropy_quantile", 1.0) < 1.0:
            pooled = x["ent"][index][mask].detach()
            entropy_mask = high_entropy_mask(x["ent"][index].detach(), mask,
                                             entropy_threshold(pooled, s["top_entropy_quantile"]))
        loss, stats = policy_loss(
            x["lp"][index], x["old"][index], x["adv"][index], mask, ref_logprobs=x["ref"][index],
            importance_weights=x["weights"][index] if s.get("weights") else None,
            behaviour_logprobs=x["sampler"][index] if s.get("weights") else None,
            entropy=x["ent"][index], entropy_mask=entropy_mask,
            num_tokens=float(sum(LENGTHS)), num_rows=float(B), num_micro_batches=len(MICRO), **settings)
        assert all(math.isfinite(v) for v in stats.values())
        total = total + loss
    return total


LOSS_TYPE_CASES = [{"loss_type": t, **({"importance_sampling_level": "sequence"} if t == "luspo" else {}),
                    **({"epsilon_high": 1.1} if t == "cispo" else {})} for t in LOSS_TYPES]
KNOB_CASES = [
    {"loss_type": "grpo", "importance_sampling_level": "sequence"},  # GSPO
    {"loss_type": "dapo", "importance_sampling_level": "sequence"},
    {"loss_type": "bnpo", "importance_sampling_level": "sequence"},
    {"loss_type": "cispo", "importance_sampling_level": "sequence", "epsilon_high": 1.05},
    {"loss_type": "sapo", "importance_sampling_level": "sequence", "sapo_temperature_pos": 0.8,
     "sapo_temperature_neg": 1.6},
    {"loss_type": "dapo", "epsilon_high": 0.28},  # clip-higher
    {"loss_type": "dapo", "delta": 1.15},  # two-sided clipping
    {"loss_type": "grpo", "delta": 1.01, "importance_sampling_level": "sequence"},
    {"loss_type": "luspo", "importance_sampling_level": "sequence", "delta": 1.01},
    {"loss_type": "dapo", "weights": True},  # vLLM importance weights
    {"loss_type": "cispo", "weights": True, "epsilon_high": 1.1},
    {"loss_type": "sapo", "weights": True},
    {"loss_type": "vespo", "weights": True, "vespo_k_pos": 1.5, "vespo_lambda_neg": 2.5},
    {"loss_type": "dapo", "off_policy_mask_threshold": 0.05},
    {"loss_type": "grpo", "off_policy_mask_threshold": 0.0, "weights": True},
    {"loss_type": "dapo", "top_entropy_quantile": 0.2},
    {"loss_type": "grpo", "top_entropy_quantile": 0.5},
    {"loss_type": "bnpo", "top_entropy_quantile": 0.0},  # only the highest-entropy token of each micro-batch
    {"loss_type": "dapo", "entropy_coef": 0.1},
    {"loss_type": "grpo", "entropy_coef": 0.3, "top_entropy_quantile": 0.4},
    {"loss_type": "dapo", "beta": 0.05},
    {"loss_type": "dapo", "beta": 0.05, "use_bias_correction_kl": True},
    {"loss_type": "grpo", "beta": 0.04, "use_bias_correction_kl": True, "importance_sampling_level": "sequence"},
    {"loss_type": "dr_grpo", "beta": 0.02, "top_entropy_quantile": 0.6, "off_policy_mask_threshold": 0.02},
    {"loss_type": "seq_mean", "delta": 1.2, "epsilon_high": 0.3, "weights": True, "entropy_coef": 0.05},
]


def case_id(settings: dict) -> str:
    return "-".join(f"{k}={v}" for k, v in settings.items())


@pytest.mark.parametrize("settings", LOSS_TYPE_CASES + KNOB_CASES, ids=case_id)
def test_loss_and_gradient_match_the_brute_force_reference(settings):
    settings = {"max_completion_length": T, **settings}
    x = make_inputs()
    mine = {k: v.clone().requires_grad_(k in ("lp", "ent")) if torch.is_tensor(v) and v.is_floating_point() else v
            for k, v in x.items()}
    theirs = {k: v.clone().requires_grad_(k in ("lp", "ent")) if torch.is_tensor(v) and v.is_floating_point() else v
              for k, v in x.items()}
    got, want = selftaught_loss(mine, settings), reference_loss(theirs, settings)
    assert float(got.detach()) == pytest.approx(float(want.detach()), rel=1e-10, abs=1e-12)
    got.backward()
    want.backward()
    torch.testing.assert_close(mine["lp"].grad, theirs["lp"].grad, rtol=1e-9, atol=1e-12)
    assert torch.all(mine["lp"].grad[~x["mask"]] == 0)  # padding gets no gradient
    if settings.get("entropy_coef"):
        torch.testing.assert_close(mine["ent"].grad, theirs["ent"].grad, rtol=1e-9, atol=1e-12)
    else:
        assert mine["ent"].grad is None or torch.all(mine["ent"].grad == 0)


def test_each_knob_changes_the_loss_and_the_selftaught_names_are_trl_aggregations():
    """Every knob case differs from its knob-free loss_type (the tests above would pass for a no-op
    otherwise), and token_mean / seq_mean are TRL's dapo / grpo exactly."""
    x = make_inputs()
    base = {"max_completion_length": T}
    for case in KNOB_CASES:
        plain = {**base, "loss_type": case["loss_type"],
                 **({"importance_sampling_level": "sequence"} if case["loss_type"] == "luspo" else {}),
                 **({"epsilon_high": case["epsilon_high"]} if case["loss_type"] == "cispo" else {})}
        assert float(selftaught_loss(x, {**base, **case})) != pytest.approx(float(selftaught_loss(x, plain))), case
    for ours, trl in (("token_mean", "dapo"), ("seq_mean", "grpo")):
        assert float(selftaught_loss(x, {**base, "loss_type": ours})) == \
            float(selftaught_loss(x, {**base, "loss_type": trl}))


def test_gspo_ratio_is_the_geometric_mean_of_the_token_ratios():
    x = make_inputs(2)
    _, stats = policy_loss(x["lp"], x["old"], x["adv"], x["mask"], importance_sampling_level="sequence")
    ratios, counts = 0.0, 0
    for b in range(B):
        real = [t for t in range(T) if x["mask"][b, t]]
        if real:
            geometric = math.prod(math.exp(float(x["lp"][b, t] - x["old"][b, t])) for t in real) ** (1 / len(real))
            ratios += geometric * len(real)
            counts += len(real)
    assert stats["ratio/mean"] == pytest.approx(ratios / counts, rel=1e-10)


def test_on_policy_gspo_gradient_is_grpo_seq_mean_gradient():
    """At ρ ≡ 1 (μ = 1) GSPO's gradient is the sequence-mean one: its difference lives off-policy."""
    x = make_inputs(3)
    grads = []
    for level in ("token", "sequence"):
        lp = x["old"].clone().requires_grad_(True)
        loss, _ = policy_loss(lp, x["old"], x["adv"], x["mask"], loss_type="grpo", importance_sampling_level=level)
        loss.backward()
        grads.append(lp.grad)
    torch.testing.assert_close(grads[0], grads[1])


def test_entropy_threshold_matches_the_sorted_reference_and_its_large_path(monkeypatch):
    from selftaught import losses

    g = torch.Generator().manual_seed(4)
    values = torch.rand(37, generator=g, dtype=torch.float64)
    ordered = sorted(values.tolist())
    for limit in (losses.QUANTILE_INPUT_LIMIT, 10):  # torch.quantile, then the path for inputs above its limit
        monkeypatch.setattr(losses, "QUANTILE_INPUT_LIMIT", limit)
        for q in (0.0, 0.2, 0.5, 0.99, 1.0):
            assert float(entropy_threshold(values, q)) == pytest.approx(quantile(ordered, 1 - q), rel=1e-12)


def test_adaptive_entropy_bonus_follows_skywork_or1():
    bonus = EntropyBonus(coef=0.01, adaptive=True, target=0.5, step=0.02, low=0.0, high=0.04)
    assert bonus.enabled and bonus.applied() == 0.0  # nothing measured yet: no bonus
    trace = []
    for entropy in (0.3, 0.2, 0.1, 0.9, 0.9, 0.9, 0.4):
        bonus.update(entropy)
        trace.append((round(bonus.coef, 6), bonus.applied() > 0))
    assert trace == [(0.03, True), (0.04, True), (0.04, True), (0.02, False), (0.0, False), (0.0, False),
                     (0.02, True)]
    restored = EntropyBonus(adaptive=True)
    restored.load_state_dict(bonus.state_dict())
    assert (restored.coef, restored.last_entropy) == (bonus.coef, bonus.last_entropy)
    static = EntropyBonus(coef=0.1)
    static.update(0.0)
    assert static.applied() == 0.1 and not EntropyBonus().enabled


@pytest.mark.parametrize("raw,keys", [
    ({"loss_type": "luspo"}, ("luspo", "importance_sampling_level")),
    ({"loss_type": "vespo", "importance_sampling_level": "sequence"}, ("vespo", "importance_sampling_level")),
    ({"loss_type": "sapo", "delta": 2.0}, ("delta", "sapo")),
    ({"loss_type": "cispo"}, ("cispo", "epsilon_high")),
    ({"multi_objective_aggregation": "normalize_then_sum", "scale_rewards": "none"},
     ("normalize_then_sum", "scale_rewards")),
    ({"method": "azr", "multi_objective_aggregation": "sum_then_normalize"}, ("multi_objective_aggregation", "azr")),
    ({"vllm_importance_sampling_correction": "sequence", "vllm_importance_sampling_mode": "token_mask"},
     ("vllm_importance_sampling_correction", "vllm_importance_sampling_mode")),
    ({"vllm_importance_sampling_correction": "none", "vllm_importance_sampling_mode": "token_mask"},
     ("vllm_importance_sampling_correction", "vllm_importance_sampling_mode")),
    ({"vllm_importance_sampling_correction": True, "vllm_importance_sampling_mode": "token_truncate",
      "vllm_importance_sampling_clip_max": float("inf")}, ("clip_min", "clip_max")),
    ({"vllm_importance_sampling_clip_min": 3.0}, ("clip_min", "clip_max")),
    ({"loss_type": "vespo", "rollout_backend": "vllm", "vllm_importance_sampling_correction": "sequence"},
     ("vespo", "vllm_importance_sampling_mode")),
    ({"entropy_coef_min": 0.5, "entropy_coef_max": 0.1}, ("entropy_coef_min", "entropy_coef_max")),
])
def test_combinations_that_make_no_sense_are_one_line_naming_both(raw, keys):
    with pytest.raises(UserError) as error:
        build_config(raw)
    message = str(error.value)
    assert "\n" not in message and all(key in message for key in keys), message


def test_trl_spellings_and_selftaught_names_are_both_accepted():
    config = build_config({"loss_type": "dapo", "importance_sampling_level": "sequence", "delta": 1.5,
                           "mask_truncated_completions": True, "top_entropy_quantile": 0.2, "entropy_coef": 0.01,
                           "use_adaptive_entropy": True, "multi_objective_aggregation": "normalize_then_sum",
                           "vllm_importance_sampling_correction": True,
                           "vllm_importance_sampling_mode": "sequence_mask",
                           "vllm_importance_sampling_clip_min": 0.5, "vllm_importance_sampling_clip_max": 3.0,
                           "off_policy_mask_threshold": 0.5, "use_bias_correction_kl": True})
    correction = config.importance_correction()
    assert (correction.mode, correction.clip_min, correction.clip_max) == ("sequence_mask", 0.5, 3.0)
    old = build_config({"vllm_importance_sampling_correction": "sequence", "vllm_importance_sampling_cap": 4.0})
    assert old.importance_correction().mode == "sequence_truncate" and old.importance_correction().clip_max == 4.0
    assert build_config({"vllm_importance_sampling_correction": False}).importance_correction() is None


# --------------------------------------------------------------- the trainer applies them as documented

TRAINER_CASES = [
    {"loss_type": "dapo", "mask_truncated_completions": True},
    {"loss_type": "grpo", "importance_sampling_level": "sequence", "top_entropy_quantile": 0.3},
    {"loss_type": "bnpo", "entropy_coef": 0.05, "mask_truncated_completions": True},
    {"loss_type": "cispo", "epsilon_high": 1.5, "sampler": "token_truncate", "off_policy_mask_threshold": 0.02},
    {"loss_type": "dapo", "sampler": "sequence_mask", "delta": 1.3},
    {"loss_type": "vespo", "sampler": "token_truncate"},
    {"loss_type": "sapo", "multi_objective_aggregation": "normalize_then_sum", "entropy_coef": 0.02,
     "top_entropy_quantile": 0.5},
    {"loss_type": "luspo", "importance_sampling_level": "sequence", "multi_objective_aggregation": "sum_then_normalize",
     "scale_rewards": "batch", "sampler": "token_mask"},
    {"loss_type": "token_mean", "beta": 0.05, "use_bias_correction_kl": True},
]
TEMPERATURE = 0.7


def brute_force_statistics(model, case, temperature):
    """log p and H of every completion token: each row alone (no padding), float64 softmax, with grad."""
    G = case.num_generations
    T = max(len(r) for r in case.completions)
    logps, entropies = [], []
    for i, row in enumerate(case.completions):
        prompt = case.prompts[i // G]
        logits = model(input_ids=torch.tensor([prompt + row])).logits[0].double() / temperature
        lp, h = [], []
        for t, token in enumerate(row):
            log_p = torch.log_softmax(logits[len(prompt) - 1 + t], dim=-1)
            lp.append(log_p[token])
            h.append(-(log_p.exp() * log_p).sum())
        zeros = [torch.zeros((), dtype=torch.float64)] * (T - len(row))
        logps.append(torch.stack(lp + zeros))
        entropies.append(torch.stack(h + zeros))
    return torch.stack(logps), torch.stack(entropies)


# The cases whose loss is a sum of per-token terms of log p_t: the update hands it to the fused head
# whole (`completion_token_loss`); the others (sequence ratio, VESPO, off-policy and top-entropy
# masks, entropy bonus) take the general path. Both must reach the reference step.
FAST_PATH_CASES = {0, 4, 8}


@pytest.mark.parametrize("settings", TRAINER_CASES, ids=case_id)
def test_the_trainer_takes_the_reference_step(tmp_path, monkeypatch, settings):
    """The trainer's first step on a fixed rollout (2 micro-batches, padding, truncated rows, rewards with
    None, vLLM log-probs) against the reference loss on brute-force log-probs of the same model."""
    import copy

    from conftest import tiny_overrides
    from fixed_rollout import REWARD_COLUMNS, FixedSampler, first_step, make_case, reward_function
    from test_advantages import ref_multi_objective
    from test_importance import _reference_weights

    from selftaught import trainer as trainer_module
    from selftaught.trainer import Trainer

    fast_calls = []
    fast = trainer_module.completion_token_loss
    monkeypatch.setattr(trainer_module, "completion_token_loss", lambda *a, **k: fast_calls.append(1) or fast(*a, **k))
    expect_fast = TRAINER_CASES.index(settings) in FAST_PATH_CASES
    settings = dict(settings)
    mode = settings.pop("sampler", None)
    weights_of = {"reward_a": 1.0, "reward_b": 0.5}
    raw = tiny_overrides(tmp_path, max_steps=1, num_generations=2, per_device_train_batch_size=4,
                         gradient_accumulation_steps=2, max_completion_length=6, temperature=TEMPERATURE,
                         max_grad_norm=1e9, **settings)
    if mode:
        raw.update(vllm_importance_sampling_correction=True, vllm_importance_sampling_mode=mode,
                   vllm_importance_sampling_clip_min=0.5, vllm_importance_sampling_clip_max=2.0)
    config = build_config(raw)
    holder = {}

    def sampler(trainer):
        holder["sampler"] = FixedSampler(trainer.tokenizer, make_case(trainer.eos_ids[0], len(trainer.tokenizer)))
        return holder["sampler"]

    trainer = Trainer(config, sampler=sampler,
                      rewards=[(reward_function(c), weights_of[c]) for c in REWARD_COLUMNS])
    case = holder["sampler"].case
    model = copy.deepcopy(trainer.accelerator.unwrap_model(trainer.model))
    lp, ent = brute_force_statistics(model, case, TEMPERATURE)
    mask = torch.zeros(lp.shape, dtype=torch.bool)
    for i, row in enumerate(case.completions):
        mask[i, :len(row)] = not (config.mask_truncated_completions and case.truncated[i])
    g = torch.Generator().manual_seed(5)
    sampler_lp = lp.detach() + torch.randn(lp.shape, generator=g, dtype=torch.float64) * 0.3
    if mode:
        case.sampler_logprobs = [sampler_lp[i, :len(r)].tolist() for i, r in enumerate(case.completions)]
    row, grads = first_step(trainer)
    assert len(fast_calls) == (2 if expect_fast else 0), "the fast path for per-token losses, else the general one"

    rewards = {c: torch.tensor([float("nan") if v is None else v for v in case.rewards[c]], dtype=torch.float64)
               for c in REWARD_COLUMNS}
    adv = torch.tensor(ref_multi_objective(rewards, weights_of, 2, config.scale_rewards, config.advantage_epsilon,
                                           config.multi_objective_aggregation), dtype=torch.float64)
    real = torch.zeros(lp.shape, dtype=torch.bool)
    for i, r in enumerate(case.completions):
        real[i, :len(r)] = True
    weights = _reference_weights(lp.detach(), sampler_lp, real, mode, 2.0, 0.5).double() if mode else None
    x = {"lp": lp, "old": lp.detach(), "ref": lp.detach(), "adv": adv, "mask": mask, "ent": ent,
         "sampler": sampler_lp, "weights": weights}
    s = {key: getattr(config, key) for key in ("loss_type", "importance_sampling_level", "epsilon", "epsilon_high",
                                                "delta", "beta", "use_bias_correction_kl", "entropy_coef",
                                                "top_entropy_quantile", "off_policy_mask_threshold",
                                                "max_completion_length")}
    s["weights"] = mode is not None
    want = reference_loss(x, s, micro=[range(0, 4), range(4, 8)])
    want.backward()
    assert row["loss"] == pytest.approx(float(want.detach()), rel=1e-4, abs=1e-6)
    named = dict(model.named_parameters())
    num = sum(float((grads[n].double() - named[n].grad).square().sum()) for n in grads)
    den = sum(float(named[n].grad.square().sum()) for n in grads)
    assert den > 0 and math.sqrt(num / den) < 1e-4, math.sqrt(num / den)
    if config.mask_truncated_completions:
        assert row["completion_truncated/frac"] == pytest.approx(sum(case.truncated) / len(case.truncated))
    for key in ("off_policy/masked_frac", "top_entropy/kept_frac", "vllm/is_weight/masked_frac"):  # the knobs bite
        assert 0 < row.get(key, 0.5) < 1, (key, row[key])


def test_adaptive_entropy_coefficient_moves_with_the_measured_entropy_and_survives_resume(tmp_path):
    """Skywork-OR1 in the trainer: the first step applies no bonus (nothing measured yet), c then moves by
    entropy_coef_delta towards the target, and the state is in the checkpoint."""
    from conftest import tiny_overrides

    from selftaught.trainer import Trainer

    common = dict(use_adaptive_entropy=True, entropy_coef=0.01, entropy_coef_delta=0.004, max_steps=3,
                  save_steps=1)
    high = Trainer(build_config(tiny_overrides(tmp_path / "high", entropy_target=100.0, **common))).train()
    assert [round(r["entropy_coef"], 6) for r in high] == [0.014, 0.018, 0.022]  # entropy ≤ target: c grows
    low = Trainer(build_config(tiny_overrides(tmp_path / "low", entropy_target=0.0, **common))).train()
    assert [round(r["entropy_coef"], 6) for r in low] == [0.006, 0.002, 0.0]  # above target: c shrinks to min
    assert all(r["entropy/mean"] > 0 for r in high)
    state = torch.load(tmp_path / "high" / "checkpoints" / "step-3" / "trainer_state.pt", weights_only=False)
    assert round(state["entropy_bonus"]["coef"], 6) == 0.022
    resumed = Trainer(build_config(tiny_overrides(tmp_path / "high", entropy_target=100.0,
                                                  **{**common, "max_steps": 4})), resume=True)
    assert round(resumed.entropy_bonus.coef, 6) == 0.022 and resumed.entropy_bonus.last_entropy < 100
