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


def aggregation_weights(
    mask: Tensor,
    loss_type: str = "token_mean",
    max_completion_length: int | None = None,
    *,
    num_tokens: float | None = None,
    num_rows: float | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """c [B, T] (in `dtype`) with aggregate(x, mask, ...) = Σ_{b,t} c·x for every x (same arguments): each
    aggregation is a weighted sum of the per-token terms — 1/Σm (token_mean), 1/(|o_b|·B)
    (seq_mean), 1/(B·L) (dr_grpo) — and 0 at padding. That is what lets the fused head take each
    token's gradient as soon as its log-prob exists (`PolicyObjective.token_losses`)."""
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {loss_type!r}")
    mask = mask.bool()
    real = mask.to(dtype)
    if loss_type == "token_mean":
        return real / (mask.sum().clamp(min=1) if num_tokens is None else num_tokens)
    rows = mask.shape[0] if num_rows is None else num_rows
    if loss_type == "seq_mean":
        return real / (mask.sum(dim=-1, keepdim=True).clamp(min=1) * rows)
    if max_completion_length is None:
        raise ValueError("loss_type='dr_grpo' needs max_completion_length")
    return real / (rows * max_completion_length)


class PolicyObjective:
    """The GRPO loss of one micro-batch, given everything but the policy's log-probs:
    aggregate(w_t·L_t + β·kl_t) (see `policy_loss` for the arguments).

    `loss` and `stats` take [B, T] log-probs. `token_losses` is the same loss one token at a
    time, c_t·(w_t·L_t + β·kl_t) at flat positions of [B, T]: the form the fused head needs
    (`fused_logprobs.fused_token_loss`), whose sum over the real tokens is `loss`.
    """

    def __init__(self, old_logprobs: Tensor, advantages: Tensor, mask: Tensor, *, epsilon: float = 0.2,
                 epsilon_high: float | None = None, beta: float = 0.0, ref_logprobs: Tensor | None = None,
                 loss_type: str = "token_mean", max_completion_length: int | None = None,
                 num_tokens: float | None = None, num_rows: float | None = None,
                 importance_weights: Tensor | None = None):
        if beta > 0 and ref_logprobs is None:
            raise ValueError("beta > 0 needs ref_logprobs (a reference model); set beta=0 to disable the KL term")
        self.mask = mask.bool()
        self.old_logprobs = old_logprobs.detach()
        adv = advantages.detach()
        self.advantages = adv.unsqueeze(-1).expand(self.mask.shape) if adv.dim() == 1 else adv
        self.ref_logprobs = None if ref_logprobs is None else ref_logprobs.detach()
        self.importance_weights = None if importance_weights is None else importance_weights.detach()
        self.epsilon, self.epsilon_high, self.beta = epsilon, epsilon_high, beta
        self.aggregation = {"loss_type": loss_type, "max_completion_length": max_completion_length,
                            "num_tokens": num_tokens, "num_rows": num_rows}
        self.token_weights = aggregation_weights(  # c_t, flat: `token_losses`' weights
            self.mask, **self.aggregation, dtype=torch.promote_types(self.old_logprobs.dtype, torch.float32)).reshape(-1)

    def terms(self, logprobs: Tensor, positions: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
        """(w_t·L_t + β·kl_t, clip indicator, kl_t or None), unmasked: [B, T] for [B, T] log-probs, or
        [n] for the log-probs of the n flat `positions` of [B, T]."""
        def at(t: Tensor | None) -> Tensor | None:
            return t if t is None or positions is None else t.reshape(-1)[positions][:, None]

        lp = logprobs if positions is None else logprobs[:, None]  # n rows of one token each
        per_token, clipped = clipped_surrogate(lp, at(self.old_logprobs), at(self.advantages),
                                               epsilon=self.epsilon, epsilon_high=self.epsilon_high)
        if self.importance_weights is not None:
            per_token = per_token * at(self.importance_weights)
        kl = None
        if self.beta > 0:
            kl = k3_kl(lp, at(self.ref_logprobs))
            per_token = per_token + self.beta * kl
        if positions is None:
            return per_token, clipped, kl
        return per_token[:, 0], clipped[:, 0], None if kl is None else kl[:, 0]

    def loss(self, logprobs: Tensor) -> Tensor:
        """The scalar loss (with grad) of [B, T] log-probs."""
        return aggregate(self.terms(logprobs)[0], self.mask, **self.aggregation)

    def token_losses(self, logprobs: Tensor, positions: Tensor) -> Tensor:
        """c_t·(w_t·L_t + β·kl_t) [n] for the log-probs [n] of the flat `positions` of [B, T]."""
        return self.terms(logprobs, positions)[0] * self.token_weights[positions]

    @torch.no_grad()
    def stats(self, logprobs: Tensor) -> dict[str, float]:
        """"clip_fraction", "ratio/mean" and (β > 0) "kl/mean": masked token means, Python floats."""
        _, clipped, kl = self.terms(logprobs.detach())
        n = self.mask.sum().clamp(min=1)

        def masked_mean(v: Tensor) -> float:
            return (torch.where(self.mask, v, 0.0).sum() / n).item()

        stats = {"clip_fraction": masked_mean(clipped),
                 "ratio/mean": masked_mean(torch.exp(logprobs.detach() - self.old_logprobs))}
        if kl is not None:
            stats["kl/mean"] = masked_mean(kl)
        return stats


def policy_loss(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    **settings,
) -> tuple[Tensor, dict[str, float]]:
    """GRPO loss: aggregate(w_t·L_t + β·kl_t) and statistics.

    Args:
        logprobs, old_logprobs, ref_logprobs: [B, T] per-token log-probs.
        advantages: [B] (one per completion, broadcast over tokens) or [B, T].
        mask: [B, T] real completion tokens.
        settings (keywords, `PolicyObjective`'s): epsilon, epsilon_high (see
            `clipped_surrogate`); beta, the KL coefficient β (β > 0 needs `ref_logprobs`);
            importance_weights, [B, T] constant weights w_t on the surrogate (truncated
            π_old / π_sampler when another engine sampled, `selftaught.importance`; None = 1);
            loss_type, max_completion_length, num_tokens, num_rows (see `aggregate`).

    Returns:
        loss: scalar tensor with grad.
        stats: "clip_fraction" and "ratio/mean" (masked token means), and
            "kl/mean" when β > 0. Python floats, computed without grad.
    """
    objective = PolicyObjective(old_logprobs, advantages, mask, **settings)
    return objective.loss(logprobs), objective.stats(logprobs)
