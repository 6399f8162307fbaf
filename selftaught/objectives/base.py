"""What an objective is: a function of one micro-batch's `Inputs` that returns its `Terms`,
wrapped in an `Objective` that says how the loss may use it (`losses.PolicyObjective`).

No torch import here or in any objective module: the registry (`variants.LOSS_TYPES`) holds the
objectives themselves, and the config reads the registry before torch is imported. Tensor
methods (`ratio.clamp(...)`, `x.sigmoid()`, `a.where(cond, b)`) do everything an objective needs;
should one need `torch` itself, it imports it inside the function.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from torch import Tensor


def per_token_advantages(advantages: Tensor) -> Tensor:
    """[B] → [B, 1] (broadcast over tokens); [B, T] as is. Detached: no gradient through A."""
    return (advantages.unsqueeze(-1) if advantages.dim() == 1 else advantages).detach()


@dataclass(frozen=True)
class Inputs:
    """One micro-batch as an objective sees it ([B, T] unless said; on the fused head's path,
    `PolicyObjective.token_losses`, B is the chunk's n tokens and T is 1)."""

    ratio: Tensor
    """ρ_t with gradient: token level, or GSPO's sequence level (`importance_sampling_level`)."""
    advantages: Tensor
    """A, [B, 1] (one per completion) or [B, T]; detached."""
    logprobs: Tensor
    """log π_θ(o_t), with gradient."""
    old_logprobs: Tensor
    """log π_old(o_t), detached."""
    mask: Tensor | None
    """The real tokens (bool); None on the fused path, which only per-token objectives take."""
    importance_weights: Tensor | None
    """The vLLM weights (`importance.py`) or None. The loss multiplies L_t by them afterwards
    unless the objective says it `folds_importance_weights` (then it uses them itself)."""


@dataclass(frozen=True)
class Terms:
    """An objective's result."""

    loss: Tensor
    """L_t, [B, T] or broadcastable to it ([B, 1]: one value per row)."""
    clipped: Tensor | None = None
    """1.0 where a clip changed L_t, or None: reported as `clip_fraction`, its token mean."""
    stats: dict[str, Tensor] = field(default_factory=dict)
    """More statistics, name → values broadcastable to [B, T], reported as their token means
    (after the loss's own: e.g. VESPO's `vespo/phi_mean`)."""


@dataclass(frozen=True)
class Objective:
    """A per-token objective L_t and what the loss needs to know about it.

    `loss(inputs, *, <settings>) -> Terms`: its keyword-only parameters are its settings,
    TrainConfig keys of the same name (`variants.OBJECTIVE_SETTINGS`), passed by
    `PolicyObjective` (e.g. `epsilon`, `delta`: the config refuses `delta` for an objective
    that does not take it).
    """

    loss: Callable[..., Terms]
    per_token: bool = True
    """Whether L_t is a function of its own token's log-prob alone (given the batch's
    constants), so that the fused head may take the loss one token at a time. Not so for
    VESPO, whose weight φ is a function of the whole row's ratio."""
    folds_importance_weights: bool = False
    """Whether the objective uses `Inputs.importance_weights` itself (VESPO puts them into its
    sequence ratio); otherwise the loss multiplies L_t by them."""

    @property
    def name(self) -> str:
        return self.loss.__name__

    @property
    def settings(self) -> tuple[str, ...]:
        """The TrainConfig keys `loss` takes (its keyword-only parameters)."""
        parameters = inspect.signature(self.loss).parameters.values()
        return tuple(p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY)
