"""The sampler–trainer mismatch and its truncated importance weights (TIS).

A fast inference engine (vLLM) samples o ~ π_sampler, while the trainer's own
forward pass scores the same tokens as π_old. Both are "the current policy", but
different kernels, precision and batching make them differ a little:

    Δ_t = log π_old(o_t) − log π_sampler(o_t)

The GRPO ratio ρ_t = π_θ / π_old assumes the samples came from π_old; when they
came from π_sampler, the unbiased surrogate weighs each token by π_old / π_sampler.
Truncated importance sampling (TRL's `vllm_importance_sampling_correction`, after
Yao et al. 2025) caps that weight at C so a rare large Δ cannot blow up the
gradient's variance:

    token:     w_t = min(exp(Δ_t), C)
    sequence:  w_t = min(exp(Σ_{s ∈ o} Δ_s), C)    (one weight for every token of a row)

The weight is a constant (no gradient) multiplying the clipped surrogate L_t;
the β·KL term is not weighted (as in TRL).
"""

from __future__ import annotations

import torch
from torch import Tensor

CORRECTIONS = ("none", "token", "sequence")


def logprob_mismatch(old_logprobs: Tensor, sampler_logprobs: Tensor, mask: Tensor) -> dict[str, float]:
    """Mean and max |Δ_t| over the real completion tokens of [N, T] log-probs."""
    mask = mask.bool()
    gap = (old_logprobs.float() - sampler_logprobs.float()).abs()[mask]
    if gap.numel() == 0:
        return {"mean": 0.0, "max": 0.0}
    return {"mean": float(gap.mean()), "max": float(gap.max())}


def importance_weights(old_logprobs: Tensor, sampler_logprobs: Tensor, mask: Tensor, mode: str,
                       cap: float) -> Tensor | None:
    """[N, T] truncated weights π_old / π_sampler (see the module docstring); None for mode "none".

    Padding positions get weight 1 (they are masked out of the loss anyway).
    """
    if mode not in CORRECTIONS:
        raise ValueError(f"importance sampling correction must be one of {CORRECTIONS}, got {mode!r}")
    if mode == "none":
        return None
    mask = mask.bool()
    delta = torch.where(mask, old_logprobs.float() - sampler_logprobs.float(), 0.0)
    if mode == "sequence":
        delta = delta.sum(dim=-1, keepdim=True).expand_as(delta)
    weights = torch.exp(delta).clamp(max=cap)
    return torch.where(mask, weights, 1.0)


def weight_stats(weights: Tensor, mask: Tensor, cap: float) -> dict[str, float]:
    """Masked mean of the weights and the fraction of tokens at the cap."""
    mask = mask.bool()
    real = weights[mask]
    if real.numel() == 0:
        return {"mean": 1.0, "truncated_frac": 0.0}
    return {"mean": float(real.mean()), "truncated_frac": float((real >= cap).float().mean())}
