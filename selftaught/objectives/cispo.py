"""CISPO (MiniMax-M1, arXiv 2506.13585): REINFORCE on log π_θ, weighted by the ratio clipped at
ε_max and detached, so every token keeps its gradient (the weight is clipped, never the token).

    L_t = −sg(min(ρ_t, ε_max)) · A · log π_θ(o_t)        (sg: stop-gradient)

ε_max = `epsilon_high` (None: `epsilon`, TRL's fallback; the config refuses that, as ScaleRL's
ε_max is an absolute cap such as 5.0). `clip_fraction` counts ρ > ε_max with A > 0, TRL's
`cispo_clip_ratio`. docs/reference.md §2.2.
"""

from __future__ import annotations

from .base import Inputs, Objective, Terms


def cispo(x: Inputs, *, epsilon: float = 0.2, epsilon_high: float | None = None) -> Terms:
    epsilon_max = epsilon if epsilon_high is None else epsilon_high
    adv = x.advantages
    loss = -x.ratio.clamp(max=epsilon_max).detach() * adv * x.logprobs
    return Terms(loss, clipped=((x.ratio > epsilon_max) & (adv > 0)).float())


CISPO = Objective(cispo)
