"""The clipped surrogate: PPO's, with DAPO's clip-higher and INTELLECT-2's two-sided bound δ.

    L_t = −min(min(ρ_t, δ) A, clip(ρ_t, 1 − ε_low, 1 + ε_high) A)

ε_low = `epsilon`, ε_high = `epsilon_high` (None: ε_low; DAPO's clip-higher: 0.28), δ = `delta`
(None: off; it bounds the ratio of negative-advantage tokens, whose unclipped term the min
keeps). Where the clip changes the objective, (ρ < 1 − ε_low and A < 0) or (ρ > 1 + ε_high and
A > 0), the gradient is zero; those tokens are the `clip_fraction`. docs/reference.md §2, §2.4.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Inputs, Objective, Terms, per_token_advantages

if TYPE_CHECKING:
    from torch import Tensor


def clipped_objective(ratio: Tensor, advantages: Tensor, epsilon: float = 0.2, epsilon_high: float | None = None,
                      delta: float | None = None) -> tuple[Tensor, Tensor]:
    """(L [B, T], clipped [B, T] float: 1.0 where the clip changed the objective) at ratio ρ
    ([B, T]) and advantages A ([B], one per completion, or [B, T])."""
    eps_high = epsilon if epsilon_high is None else epsilon_high
    adv = per_token_advantages(advantages)
    clipped = ratio.clamp(1.0 - epsilon, 1.0 + eps_high) * adv
    bounded = ratio if delta is None else ratio.clamp(max=delta)
    loss = -(bounded * adv).minimum(clipped)
    is_clipped = ((ratio < 1.0 - epsilon) & (adv < 0)) | ((ratio > 1.0 + eps_high) & (adv > 0))  # no gradient
    return loss, is_clipped.float()


def clipped(x: Inputs, *, epsilon: float = 0.2, epsilon_high: float | None = None,
            delta: float | None = None) -> Terms:
    loss, is_clipped = clipped_objective(x.ratio, x.advantages, epsilon, epsilon_high, delta)
    return Terms(loss, clipped=is_clipped)


CLIPPED = Objective(clipped)
