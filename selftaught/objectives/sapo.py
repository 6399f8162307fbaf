"""SAPO (arXiv 2511.20347): a soft gate instead of the hard clip.

    L_t = −(4/τ_A) σ(τ_A (ρ_t − 1)) · A,    τ_A = τ_pos if A > 0 else τ_neg

τ_pos, τ_neg = `sapo_temperature_pos`, `sapo_temperature_neg` (1.0, 1.05). The gradient,
ρ · 4σ(1−σ) · A, equals the unclipped one at ρ = 1 and fades smoothly off-policy; τ_neg > τ_pos
fades negative-advantage tokens faster. docs/reference.md §2.2.
"""

from __future__ import annotations

from .base import Inputs, Objective, Terms


def sapo(x: Inputs, *, sapo_temperature_pos: float = 1.0, sapo_temperature_neg: float = 1.05) -> Terms:
    adv = x.advantages
    tau = adv.new_tensor(sapo_temperature_pos).where(adv > 0, adv.new_tensor(sapo_temperature_neg))
    return Terms(-(tau * (x.ratio - 1.0)).sigmoid() * 4.0 / tau * adv)


SAPO = Objective(sapo)
