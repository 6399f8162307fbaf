"""The sampler–trainer mismatch and its importance weights (TIS / MIS).

A fast inference engine (vLLM) samples o ~ π_sampler, while the trainer's own
forward pass scores the same tokens as π_old. Both are "the current policy", but
different kernels, precision and batching make them differ a little:

    Δ_t = log π_old(o_t) − log π_sampler(o_t)

The GRPO ratio ρ_t = π_θ / π_old assumes the samples came from π_old; when they
came from π_sampler, the unbiased surrogate weighs each token by π_old / π_sampler.
A rare large Δ would blow up the gradient's variance, so the weight is bounded to
[C_min, C_max] (docs/reference.md §7), in one of TRL's four modes
(`vllm_importance_sampling_mode`; truncation after Yao et al. 2025, masking as TRL adds it):

    token_truncate:     w_t = clamp(exp(Δ_t), C_min, C_max)                   (TIS)
    token_mask:         w_t = exp(Δ_t), or 0 where it leaves [C_min, C_max]    (MIS)
    sequence_truncate:  w_t = clamp(exp(Σ_s Δ_s), C_min, C_max) for every t of the row
    sequence_mask:      w_t = exp(Σ_s Δ_s), or 0 for the whole row where it leaves [C_min, C_max]

An unset C_min is no lower bound (−∞ for the masks), an unset C_max no upper one.
The weight is a constant (no gradient) multiplying the policy term; the β·KL term
is not weighted (as in TRL).

selftaught's older names stay: `vllm_importance_sampling_correction: token` is
token_truncate and `sequence` is sequence_truncate, both at
`vllm_importance_sampling_cap` (C_max, 2.0 by default; TRL's default is
sequence_mask with C_max = 3).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .variants import Correction, resolve_correction


def logprob_mismatch(old_logprobs: Tensor, sampler_logprobs: Tensor, mask: Tensor) -> dict[str, float]:
    """Mean and max |Δ_t| over the real completion tokens of [N, T] log-probs."""
    mask = mask.bool()
    gap = (old_logprobs.float() - sampler_logprobs.float()).abs()[mask]
    gap = gap[~torch.isnan(gap)]  # a token the engine could not score carries no evidence
    if gap.numel() == 0:
        return {"mean": 0.0, "max": 0.0}
    return {"mean": float(gap.mean()), "max": float(gap.max())}


def importance_weights(old_logprobs: Tensor, sampler_logprobs: Tensor, mask: Tensor,
                       correction: Correction | str | None, cap: float | None = None) -> Tensor | None:
    """[N, T] weights π_old / π_sampler bounded as `correction` says (module docstring); None when off.

    `correction` may also be one of selftaught's names ("none", "token", "sequence") with
    `cap` as C_max. A token the engine could not score (NaN log-prob) has Δ = 0, weight 1;
    padding positions get weight 1 (they are masked out of the loss anyway).
    """
    if isinstance(correction, str):
        correction = resolve_correction(correction, None, None, None, math.inf if cap is None else cap)
    if correction is None:
        return None
    mask = mask.bool()
    delta = torch.nan_to_num(torch.where(mask, old_logprobs.float() - sampler_logprobs.float(), 0.0), nan=0.0)
    if correction.per_sequence:
        delta = delta.sum(dim=-1, keepdim=True).expand_as(delta)
    ratio = torch.exp(delta)
    low = -math.inf if correction.clip_min is None else correction.clip_min
    high = math.inf if correction.clip_max is None else correction.clip_max
    if correction.masks:
        weights = torch.where((ratio < low) | (ratio > high), 0.0, ratio)
    else:
        weights = ratio.clamp(min=low, max=high)
    return torch.where(mask, weights, 1.0)


def weight_stats(weights: Tensor, mask: Tensor, correction: Correction) -> dict[str, float]:
    """Masked mean of the weights and the share of real tokens the bound changed: held at a
    bound (`truncated_frac`, truncate modes) or zeroed (`masked_frac`, mask modes)."""
    mask = mask.bool()
    real = weights[mask]
    key = "masked_frac" if correction.masks else "truncated_frac"
    if real.numel() == 0:
        return {"mean": 1.0, key: 0.0}
    if correction.masks:
        changed = real == 0
    else:
        low = -math.inf if correction.clip_min is None else correction.clip_min
        high = math.inf if correction.clip_max is None else correction.clip_max
        changed = (real <= low) | (real >= high)
    return {"mean": float(real.mean()), key: float(changed.float().mean())}
