"""Policy-gradient loss: PPO clipped surrogate, k3 KL penalty, aggregation modes.

Per token (docs/reference.md §2):
    ρ_t  = exp(log π_θ(o_t) − log π_old(o_t))
    L_t  = −min(ρ_t A, clip(ρ_t, 1 − ε_low, 1 + ε_high) A)
    kl_t = exp(ref_t − cur_t) − (ref_t − cur_t) − 1          (k3 estimator, ≥ 0)
    loss = aggregate(L_t + β kl_t)

Gradient accumulation: `aggregate` normalises by the micro-batch's own token or
row count unless `num_tokens` / `num_rows` are given. Pass the counts of the
whole accumulated batch there and the micro-batch losses add up exactly to the
full-batch loss (no 1/num_micro_batches scaling needed); omit them and each
micro-batch is its own mean (then divide by the number of micro-batches).
"""

from __future__ import annotations

import torch
from torch import Tensor

LOSS_TYPES = ("token_mean", "seq_mean", "dr_grpo")


def clipped_surrogate(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
) -> tuple[Tensor, Tensor]:
    """PPO clipped surrogate per token.

    Args:
        logprobs: [B, T] log π_θ of the sampled tokens (with grad).
        old_logprobs: [B, T] log π_old (no grad needed; detached here).
        advantages: [B] (one per completion, broadcast over tokens) or [B, T].
        epsilon: ε_low.
        epsilon_high: ε_high (None → ε_low; DAPO clip-higher uses 0.28).

    Returns:
        loss: [B, T] L_t (unmasked: aggregate with the mask).
        clipped: [B, T] float 1.0 where the clip changed the objective, i.e.
            (ρ < 1−ε_low and A < 0) or (ρ > 1+ε_high and A > 0); there the
            gradient is zero.
    """
    eps_low = epsilon
    eps_high = epsilon if epsilon_high is None else epsilon_high
    adv = advantages.unsqueeze(-1) if advantages.dim() == 1 else advantages
    adv = adv.detach()
    ratio = torch.exp(logprobs - old_logprobs.detach())  # ρ_t
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high) * adv
    loss = -torch.minimum(unclipped, clipped)
    with torch.no_grad():
        is_clipped = ((ratio < 1.0 - eps_low) & (adv < 0)) | ((ratio > 1.0 + eps_high) & (adv > 0))
    return loss, is_clipped.float()


def k3_kl(logprobs: Tensor, ref_logprobs: Tensor) -> Tensor:
    """k3 estimator of KL(π_θ ‖ π_ref) per token: exp(d) − d − 1, d = ref − cur. [B, T], ≥ 0."""
    d = ref_logprobs - logprobs
    return torch.exp(d) - d - 1.0


def aggregate(
    per_token: Tensor,
    mask: Tensor,
    loss_type: str = "token_mean",
    max_completion_length: int | None = None,
    *,
    num_tokens: float | None = None,
    num_rows: float | None = None,
) -> Tensor:
    """Reduce a [B, T] per-token loss to a scalar over the real tokens.

    loss_type:
        "token_mean" (default; verl, DAPO): Σ_{b,t} x·m / Σ m — every token weighs
            the same, so long completions count more.
        "seq_mean" (paper GRPO): mean over rows of each row's token mean (a row
            without tokens counts as 0, as in TRL).
        "dr_grpo": Σ x·m / (B · max_completion_length) — a constant normaliser,
            no length bias.

    num_tokens / num_rows (keyword only, for gradient accumulation): replace the
    micro-batch's Σ m (token_mean) or B (seq_mean, dr_grpo) by the whole
    accumulated batch's counts.
    """
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {loss_type!r}")
    mask = mask.bool()
    x = torch.where(mask, per_token, 0.0)  # where, not *, so inf/NaN at pads cannot leak
    if loss_type == "token_mean":
        denom = mask.sum().clamp(min=1) if num_tokens is None else num_tokens
        return x.sum() / denom
    rows = per_token.shape[0] if num_rows is None else num_rows
    if loss_type == "seq_mean":
        row_means = x.sum(dim=-1) / mask.sum(dim=-1).clamp(min=1)
        return row_means.sum() / rows
    if max_completion_length is None:
        raise ValueError("loss_type='dr_grpo' needs max_completion_length")
    return x.sum() / (rows * max_completion_length)


def policy_loss(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    epsilon: float = 0.2,
    epsilon_high: float | None = None,
    beta: float = 0.0,
    ref_logprobs: Tensor | None = None,
    loss_type: str = "token_mean",
    max_completion_length: int | None = None,
    num_tokens: float | None = None,
    num_rows: float | None = None,
    importance_weights: Tensor | None = None,
) -> tuple[Tensor, dict[str, float]]:
    """GRPO loss: aggregate(w_t·L_t + β·kl_t) and statistics.

    Args:
        logprobs, old_logprobs, ref_logprobs: [B, T] per-token log-probs.
        advantages: [B] or [B, T].
        mask: [B, T] real completion tokens.
        beta: KL coefficient β; β > 0 needs `ref_logprobs`.
        importance_weights: [B, T] constant weights w_t on the surrogate (truncated
            π_old / π_sampler when another engine sampled, `selftaught.importance`);
            None = 1.
        Others: see `clipped_surrogate` and `aggregate`.

    Returns:
        loss: scalar tensor with grad.
        stats: "clip_fraction" and "ratio/mean" (masked token means), and
            "kl/mean" when β > 0. Python floats, computed without grad.
    """
    if beta > 0 and ref_logprobs is None:
        raise ValueError("beta > 0 needs ref_logprobs (a reference model); set beta=0 to disable the KL term")
    per_token, clipped = clipped_surrogate(
        logprobs, old_logprobs, advantages, epsilon=epsilon, epsilon_high=epsilon_high
    )
    if importance_weights is not None:
        per_token = per_token * importance_weights.detach()
    kl = None
    if beta > 0:
        kl = k3_kl(logprobs, ref_logprobs.detach())
        per_token = per_token + beta * kl
    loss = aggregate(
        per_token, mask, loss_type, max_completion_length, num_tokens=num_tokens, num_rows=num_rows
    )
    with torch.no_grad():
        m = mask.bool()
        n = m.sum().clamp(min=1)

        def masked_mean(v: Tensor) -> float:
            return (torch.where(m, v, 0.0).sum() / n).item()

        stats = {
            "clip_fraction": masked_mean(clipped),
            "ratio/mean": masked_mean(torch.exp(logprobs - old_logprobs)),
        }
        if kl is not None:
            stats["kl/mean"] = masked_mean(kl)
    return loss, stats
