"""selftaught.losses against per-token Python loops."""

import math

import pytest
import torch

from selftaught.losses import PolicyObjective, aggregate, aggregation_weights, clipped_surrogate, k3_kl, policy_loss
from selftaught.variants import LOSS_TYPES


def ref_surrogate(lp, old, adv, eps_low, eps_high):
    B, T = lp.shape
    loss = torch.zeros(B, T, dtype=torch.float64)
    clipped = torch.zeros(B, T, dtype=torch.float64)
    for b in range(B):
        for t in range(T):
            a = float(adv[b]) if adv.dim() == 1 else float(adv[b, t])
            rho = math.exp(float(lp[b, t]) - float(old[b, t]))
            rho_clip = min(max(rho, 1 - eps_low), 1 + eps_high)
            loss[b, t] = -min(rho * a, rho_clip * a)
            clipped[b, t] = float((rho < 1 - eps_low and a < 0) or (rho > 1 + eps_high and a > 0))
    return loss, clipped


def make_case(B=4, T=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    old = -torch.rand(B, T, generator=g, dtype=torch.float64) * 3
    lp = old + torch.randn(B, T, generator=g, dtype=torch.float64) * 0.4  # ratios on both sides of the clip
    adv = torch.randn(B, generator=g, dtype=torch.float64)
    mask = torch.rand(B, T, generator=g) > 0.3
    mask[2] = False
    return lp, old, adv, mask


@pytest.mark.parametrize("eps_high", [None, 0.28])
@pytest.mark.parametrize("per_token_adv", [False, True])
def test_clipped_surrogate_matches_loop(eps_high, per_token_adv):
    lp, old, adv, _ = make_case()
    if per_token_adv:
        adv = adv[:, None] + torch.linspace(-1, 1, lp.shape[1], dtype=torch.float64)
    loss, clipped = clipped_surrogate(lp, old, adv, epsilon=0.2, epsilon_high=eps_high)
    want_loss, want_clipped = ref_surrogate(lp, old, adv, 0.2, 0.2 if eps_high is None else eps_high)
    torch.testing.assert_close(loss, want_loss)
    torch.testing.assert_close(clipped.double(), want_clipped)
    assert 0 < want_clipped.sum() < want_clipped.numel()  # the case exercises both branches


def test_clip_indicator_by_hand():
    rho = torch.tensor([[0.5, 0.5, 1.5, 1.5, 1.0, 1.25]])
    adv = torch.tensor([[-1.0, 1.0, 1.0, -1.0, 1.0, 1.0]])
    lp = torch.log(rho)
    _, clipped = clipped_surrogate(lp, torch.zeros_like(lp), adv, epsilon=0.2, epsilon_high=0.28)
    # ρ<0.8 & A<0: clipped; ρ<0.8 & A>0: not (the min keeps the unclipped term);
    # ρ>1.28 & A>0: clipped; ρ>1.28 & A<0: not; ρ=1: not; 1.2<ρ=1.25<1.28: not (clip-higher).
    assert clipped.tolist() == [[1.0, 0.0, 1.0, 0.0, 0.0, 0.0]]


def test_gradient_is_zero_exactly_where_clipped():
    lp, old, adv, _ = make_case(seed=1)
    x = lp.clone().requires_grad_(True)
    loss, clipped = clipped_surrogate(x, old, adv)
    loss.sum().backward()
    assert torch.all(x.grad[clipped.bool()] == 0)
    assert torch.all(x.grad[~clipped.bool()] != 0)
    # Unclipped: d/dlogπ of −ρA is −ρA.
    rho = torch.exp(lp - old)
    want = -(rho * adv[:, None])
    torch.testing.assert_close(x.grad[~clipped.bool()], want[~clipped.bool()])


def test_on_policy_gradient_is_minus_advantage():
    # μ = 1: ρ ≡ 1 in value, but the gradient is that of the ratio, −A per token.
    lp, _, adv, mask = make_case(seed=2)
    x = lp.clone().requires_grad_(True)
    loss, _ = policy_loss(x, lp.detach(), adv, mask)
    loss.backward()
    n = mask.sum()
    want = torch.where(mask, -adv[:, None] / n, 0.0)
    torch.testing.assert_close(x.grad, want)
    torch.testing.assert_close(loss, (torch.where(mask, -adv[:, None].expand_as(lp), 0.0).sum() / n))


def test_k3_kl():
    g = torch.Generator().manual_seed(3)
    cur = -torch.rand(3, 5, generator=g, dtype=torch.float64) * 4
    ref = -torch.rand(3, 5, generator=g, dtype=torch.float64) * 4
    kl = k3_kl(cur, ref)
    for b in range(3):
        for t in range(5):
            d = float(ref[b, t] - cur[b, t])
            assert kl[b, t].item() == pytest.approx(math.exp(d) - d - 1, rel=1e-12)
    assert torch.all(kl >= 0)
    assert torch.all(k3_kl(cur, cur) == 0)


def ref_aggregate(x, mask, loss_type, L=None):
    B, T = x.shape
    if loss_type == "token_mean":
        num = sum(float(x[b, t]) for b in range(B) for t in range(T) if mask[b, t])
        return num / max(1, int(mask.sum()))
    if loss_type == "seq_mean":
        means = []
        for b in range(B):
            real = [float(x[b, t]) for t in range(T) if mask[b, t]]
            means.append(sum(real) / len(real) if real else 0.0)
        return sum(means) / B
    num = sum(float(x[b, t]) for b in range(B) for t in range(T) if mask[b, t])
    return num / (B * L)


@pytest.mark.parametrize("loss_type", ["token_mean", "seq_mean", "dr_grpo"])
def test_aggregate_matches_loop(loss_type):
    lp, _, _, mask = make_case(seed=4)
    x = lp.clone()
    x[~mask] = float("inf")  # padding must not leak, not even as inf·0 = NaN
    got = aggregate(x, mask, loss_type, max_completion_length=10)
    assert got.item() == pytest.approx(ref_aggregate(lp, mask, loss_type, 10), rel=1e-12)


def test_aggregate_default_is_token_mean_and_errors():
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]])
    m = torch.tensor([[1, 1, 1], [1, 0, 0]])
    assert aggregate(x, m).item() == pytest.approx(10 / 4)
    assert aggregate(x, m, "seq_mean").item() == pytest.approx((2 + 4) / 2)
    assert aggregate(x, m, "dr_grpo", 5).item() == pytest.approx(10 / (2 * 5))
    with pytest.raises(ValueError, match="token_mean"):
        aggregate(x, m, "sum")
    with pytest.raises(ValueError, match="max_completion_length"):
        aggregate(x, m, "dr_grpo")
    assert aggregate(x, torch.zeros_like(m)).item() == 0.0  # no token: 0, not NaN


@pytest.mark.parametrize("loss_type", ["token_mean", "seq_mean", "dr_grpo"])
def test_aggregate_global_counts_make_micro_batches_add_up(loss_type):
    lp, _, _, mask = make_case(B=6, seed=5)
    full = aggregate(lp, mask, loss_type, 6)
    n_tok, n_rows = mask.sum().item(), lp.shape[0]
    parts = [
        aggregate(lp[s], mask[s], loss_type, 6, num_tokens=n_tok, num_rows=n_rows)
        for s in (slice(0, 1), slice(1, 4), slice(4, 6))
    ]
    torch.testing.assert_close(sum(parts), full)


def test_policy_loss_with_kl_and_stats():
    lp, old, adv, mask = make_case(seed=6)
    ref = old - 0.1
    loss, stats = policy_loss(lp, old, adv, mask, beta=0.04, ref_logprobs=ref, loss_type="seq_mean")
    sur, clipped = ref_surrogate(lp, old, adv, 0.2, 0.2)
    kl = torch.exp(ref - lp) - (ref - lp) - 1
    want = ref_aggregate(sur + 0.04 * kl, mask, "seq_mean")
    assert loss.item() == pytest.approx(want, rel=1e-10)
    n = int(mask.sum())
    assert stats["clip_fraction"] == pytest.approx(float(clipped[mask].sum()) / n)
    assert stats["kl/mean"] == pytest.approx(float(kl[mask].sum()) / n)
    assert stats["ratio/mean"] == pytest.approx(float(torch.exp(lp - old)[mask].sum()) / n)
    assert all(isinstance(v, float) for v in stats.values())


def test_policy_loss_beta_zero_ignores_reference_and_requires_it_otherwise():
    lp, old, adv, mask = make_case(seed=7)
    loss0, stats0 = policy_loss(lp, old, adv, mask)
    loss1, _ = policy_loss(lp, old, adv, mask, ref_logprobs=old - 5)
    assert loss0.item() == loss1.item() and "kl/mean" not in stats0
    with pytest.raises(ValueError, match="ref_logprobs"):
        policy_loss(lp, old, adv, mask, beta=0.1)


def test_policy_loss_dr_grpo_and_clip_higher_pass_through():
    lp, old, adv, mask = make_case(seed=8)
    loss, _ = policy_loss(lp, old, adv, mask, epsilon_high=0.28, loss_type="dr_grpo", max_completion_length=8)
    sur, _ = ref_surrogate(lp, old, adv, 0.2, 0.28)
    assert loss.item() == pytest.approx(ref_aggregate(sur, mask, "dr_grpo", 8), rel=1e-10)


# ---------------------------------------------------------------- the loss as a sum of per-token terms


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
@pytest.mark.parametrize("counts", [{}, {"num_tokens": 40.0, "num_rows": 9.0, "num_micro_batches": 3}])
def test_aggregation_weights_make_every_aggregate_a_weighted_sum(loss_type, counts):
    lp, _, _, mask = make_case(seed=5)
    x = torch.where(mask, lp, float("nan"))  # whatever sits at padding must not count
    c = aggregation_weights(mask, loss_type, 10, **counts)
    assert (c[~mask] == 0).all()
    want = aggregate(x, mask, loss_type, 10, **counts)
    assert float(torch.where(mask, x * c, 0.0).sum()) == pytest.approx(float(want), rel=1e-6)


PER_TOKEN_CASES = [  # every objective and aggregation whose loss is a sum of per-token terms, and their knobs
    {"loss_type": "token_mean"}, {"loss_type": "seq_mean"}, {"loss_type": "dr_grpo"}, {"loss_type": "grpo"},
    {"loss_type": "bnpo", "num_micro_batches": 2}, {"loss_type": "dapo", "delta": 1.1}, {"loss_type": "luspo"},
    {"loss_type": "cispo", "epsilon_high": 1.2}, {"loss_type": "sapo", "sapo_temperature_neg": 1.5},
    {"loss_type": "grpo", "use_bias_correction_kl": True},
]


@pytest.mark.parametrize("case", PER_TOKEN_CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
@pytest.mark.parametrize("beta,weighted", [(0.0, False), (0.05, True)])
def test_token_losses_add_up_to_the_policy_loss_with_the_same_gradient(case, beta, weighted):
    """`PolicyObjective.token_losses` at scattered positions (the fused head's chunks) sum to
    `policy_loss`, and their gradient w.r.t. each token's log-prob is policy_loss's."""
    lp, old, adv, mask = make_case(seed=6)
    g = torch.Generator().manual_seed(7)
    ref = old + torch.randn(old.shape, generator=g, dtype=torch.float64) * 0.1
    weights = torch.rand(old.shape, generator=g, dtype=torch.float64) + 0.5 if weighted else None
    settings = {**dict(epsilon=0.2, epsilon_high=0.28, beta=beta, ref_logprobs=ref, max_completion_length=6,
                       num_tokens=30.0, num_rows=5.0, importance_weights=weights), **case}
    x = lp.clone().requires_grad_(True)
    loss, stats = policy_loss(x, old, adv, mask, **settings)
    loss.backward()
    objective = PolicyObjective(old, adv, mask, **settings)
    assert objective.per_token
    positions = mask.reshape(-1).nonzero().squeeze(1).flip(0)  # any order, any grouping
    y = lp.reshape(-1)[positions].clone().requires_grad_(True)
    total = sum(objective.token_losses(y[i:i + 3], positions[i:i + 3]).sum() for i in range(0, len(y), 3))
    total.backward()
    assert float(total.detach()) == pytest.approx(float(loss.detach()), rel=1e-10)
    assert x.grad.abs().sum() > 0
    torch.testing.assert_close(y.grad, x.grad.reshape(-1)[positions], rtol=1e-10, atol=1e-12)
    assert objective.stats(lp) == stats


@pytest.mark.parametrize("settings", [
    {"importance_sampling_level": "sequence"}, {"loss_type": "vespo"}, {"off_policy_mask_threshold": 0.1},
    {"entropy_coef": 0.01}, {"entropy_mask": torch.ones(4, 6, dtype=torch.bool)},
], ids=["gspo", "vespo", "off_policy_mask", "entropy_bonus", "top_entropy"])
def test_losses_of_whole_rows_or_of_the_distribution_are_not_taken_token_by_token(settings):
    """GSPO's sequence ratio, VESPO's φ, the off-policy mask (a row's mean drift), the top-entropy mask
    and the entropy bonus are no sum of per-token terms of log p_t: token_losses refuses them (the
    trainer then takes the general path, checked against brute force in test_grpo_variants)."""
    lp, old, adv, mask = make_case(seed=8)
    objective = PolicyObjective(old, adv, mask, **settings)
    assert not objective.per_token
    with pytest.raises(ValueError, match="not a sum of per-token terms"):
        objective.token_losses(lp.reshape(-1)[:3], torch.arange(3))
