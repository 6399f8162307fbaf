"""VESPO (arXiv 2602.10693): REINFORCE on log π_θ, each row weighted by a function φ of its
sequence ratio w, the product of its token ratios (a sum of logs, not GSPO's mean).

    L_t = −sg(φ(w)) · A · log π_θ(o_t),    w = Π_s ρ_s,    φ(w) = e^λ w^k e^{−λ w}   (φ(1) = 1)

k, λ = `vespo_k_pos`, `vespo_lambda_pos` (2, 3) for A ≥ 0, `vespo_k_neg`, `vespo_lambda_neg`
(3, 2) otherwise. Computed in log space with log ρ_t clamped to [−20, 20] and log w to
[log 1e-8, 20], as VESPO's reference code (and TRL) clamp them. The vLLM importance weights, when
present, enter w instead of multiplying the loss (`folds_importance_weights`). w is the
token-level ratio's product whatever `importance_sampling_level` says, and φ depends on the whole
row, so the loss is not per-token. Reports `vespo/phi_mean`. docs/reference.md §2.2.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .base import Inputs, Objective, Terms, per_token_advantages

if TYPE_CHECKING:
    from torch import Tensor

LOG_W_MIN, LOG_W_MAX = math.log(1e-8), 20.0
"""The clamp of log w (VESPO's reference implementation's)."""


def vespo_weights(log_ratio: Tensor, advantages: Tensor, mask: Tensor, importance_weights: Tensor | None = None, *,
                  k_pos: float = 2.0, lambda_pos: float = 3.0, k_neg: float = 3.0, lambda_neg: float = 2.0) -> Tensor:
    """φ(w), [B, 1], detached, of the token log-ratios [B, T] (module docstring)."""
    log_ratio, m = log_ratio.detach(), mask.bool()
    log_w = log_ratio.clamp(-20.0, 20.0).where(m, 0.0).sum(-1, keepdim=True)
    if importance_weights is not None:
        log_w = log_w + importance_weights.detach().log().clamp(LOG_W_MIN, 20.0).sum(-1, keepdim=True)
    log_w = log_w.clamp(LOG_W_MIN, LOG_W_MAX)
    adv = per_token_advantages(advantages)[:, :1]
    k = log_w.new_tensor(k_pos).where(adv >= 0, log_w.new_tensor(k_neg))
    lam = log_w.new_tensor(lambda_pos).where(adv >= 0, log_w.new_tensor(lambda_neg)).clamp(min=1e-4)
    return (lam + k * log_w - lam * log_w.exp()).exp().nan_to_num(nan=0.0, posinf=0.0, neginf=0.0)


def vespo(x: Inputs, *, vespo_k_pos: float = 2.0, vespo_lambda_pos: float = 3.0, vespo_k_neg: float = 3.0,
          vespo_lambda_neg: float = 2.0) -> Terms:
    phi = vespo_weights(x.logprobs - x.old_logprobs, x.advantages, x.mask, x.importance_weights, k_pos=vespo_k_pos,
                        lambda_pos=vespo_lambda_pos, k_neg=vespo_k_neg, lambda_neg=vespo_lambda_neg)
    return Terms(-phi * x.advantages * x.logprobs, stats={"vespo/phi_mean": phi})


VESPO = Objective(vespo, per_token=False, folds_importance_weights=True)
