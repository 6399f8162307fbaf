"""Advantages from scalar rewards: group-normalised (GRPO) and task-relative (TRR++).

Std convention: the unbiased sample std (Bessel's correction, ``torch.std``'s
default ``correction=1``), as TRL and verl use. ε is added to the std, not to
the variance: A = (r − μ) / (σ + ε).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import torch
from torch import Tensor

SCALE_REWARDS = ("group", "batch", "none")


def _check_scale(scale_rewards) -> str:
    # TRL's older boolean form: True = per-group std, False = no scaling.
    if scale_rewards is True:
        return "group"
    if scale_rewards is False:
        return "none"
    if scale_rewards not in SCALE_REWARDS:
        raise ValueError(f"scale_rewards must be one of {SCALE_REWARDS}, got {scale_rewards!r}")
    return scale_rewards


def _safe_div(num: Tensor, den: Tensor) -> Tensor:
    # Only reachable with eps = 0 and equal rewards: 0/0 means "no signal", not NaN.
    return torch.where(den > 0, num / den, torch.zeros_like(num))


def group_advantages(
    rewards: Tensor,
    group_size: int,
    scale_rewards: str = "group",
    eps: float = 1e-4,
) -> Tensor:
    """GRPO advantages: A_i = (r_i − mean(r_group)) / (std + ε).

    Args:
        rewards: [N] rewards, N = num_groups * group_size; rows
            [g*G, (g+1)*G) are the G completions of prompt g.
        group_size: G ≥ 2.
        scale_rewards: std used in the denominator: "group" (that group's std,
            GRPO), "batch" (std of all N rewards, more robust for groups with
            near-equal rewards), "none" (no division, Dr. GRPO).
        eps: ε added to the std (TRL uses 1e-4, verl 1e-6).

    Returns:
        [N] advantages (float; dtype of `rewards` if floating, else float32).
        A group whose rewards are all equal gets A = 0.

    A NaN reward means "no reward for this row" (a user function's None): the row
    is left out of its group's mean and std (and of the batch std) and gets A = 0;
    a group with fewer than two rewarded rows gets A = 0.
    """
    scale_rewards = _check_scale(scale_rewards)
    if group_size < 2:
        raise ValueError(f"group_size must be >= 2 (a std needs two samples), got {group_size}")
    if rewards.dim() != 1:
        raise ValueError(f"rewards must be 1-D [N], got shape {tuple(rewards.shape)}")
    n = rewards.numel()
    if n % group_size != 0:
        raise ValueError(f"number of rewards ({n}) is not a multiple of group_size ({group_size})")
    r = rewards if rewards.is_floating_point() else rewards.float()
    grouped = r.view(-1, group_size)  # [num_groups, G]
    missing = torch.isnan(grouped)
    if bool(missing.any()):
        return _masked_group_advantages(grouped, ~missing, scale_rewards, eps).reshape(n)
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    if scale_rewards == "group":
        centred = _safe_div(centred, grouped.std(dim=1, keepdim=True) + eps)
    elif scale_rewards == "batch":
        centred = _safe_div(centred, r.std() + eps)
    return centred.reshape(n)


def _masked_group_advantages(grouped: Tensor, valid: Tensor, scale_rewards: str, eps: float) -> Tensor:
    """`group_advantages` over the `valid` entries of [num_groups, G] only (others → 0)."""
    count = valid.sum(dim=1, keepdim=True)
    values = torch.where(valid, grouped, 0.0)
    mean = values.sum(dim=1, keepdim=True) / count.clamp(min=1)
    centred = torch.where(valid & (count >= 2), grouped - mean, 0.0)
    if scale_rewards == "group":
        std = (centred.square().sum(dim=1, keepdim=True) / (count - 1).clamp(min=1)).sqrt()
        centred = _safe_div(centred, std + eps)
    elif scale_rewards == "batch":
        rewarded = grouped[valid]
        std = rewarded.std() if rewarded.numel() > 1 else rewarded.new_zeros(())
        centred = _safe_div(centred, std + eps)
    return torch.where(valid, centred, 0.0)


def keyed_advantages(
    rewards: Tensor,
    keys: Sequence[Hashable],
    scale: bool = True,
    eps: float = 1e-4,
) -> Tensor:
    """Task-relative advantages (AZR's TRR++): one baseline per key.

    Rows with equal key, e.g. ("deduction", "solve"), form a group:
    A = (r − μ_key) / (σ_key + ε), σ the unbiased std of the group.

    Args:
        rewards: [N] rewards.
        keys: N hashable keys, in row order; rows need not be contiguous.
        scale: False → only subtract the group mean.
        eps: ε added to the std.

    Returns:
        [N] advantages. A group of one row gets 0: its mean is its own reward,
        and its std is undefined (treated as 0). (verl's GRPO code instead uses
        μ=0, σ=1 for singletons, i.e. A = r; we prefer no signal over an
        unnormalised one.)
    """
    if rewards.dim() != 1:
        raise ValueError(f"rewards must be 1-D [N], got shape {tuple(rewards.shape)}")
    if len(keys) != rewards.numel():
        raise ValueError(f"got {len(keys)} keys for {rewards.numel()} rewards")
    r = rewards if rewards.is_floating_point() else rewards.float()
    out = torch.zeros_like(r)
    rows_by_key: dict[Hashable, list[int]] = {}
    for i, k in enumerate(keys):
        rows_by_key.setdefault(k, []).append(i)
    for rows in rows_by_key.values():
        if len(rows) < 2:
            continue  # singleton: advantage 0
        idx = torch.tensor(rows, device=r.device)
        group = r[idx]
        a = group - group.mean()
        if scale:
            a = _safe_div(a, group.std() + eps)
        out[idx] = a
    return out


def active_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """The reward sources that are trained on: name → w_s for every w_s ≠ 0 (the others are only logged)."""
    return {name: float(w) for name, w in weights.items() if float(w) != 0.0}


def weighted_total(rewards_by_source: Mapping[str, Tensor], weights: Mapping[str, float]) -> Tensor:
    """r_i = Σ_s w_s · r^s_i over the trained sources (`active_weights`): the step's total reward.

    A source absent from `weights` counts 0, as in `combine_advantages`; a row without a
    reward from a source (NaN, a user function's None) adds 0 for that source. The
    trainer logs its mean as `reward/mean`; AZR normalises it per task (TRR++).
    """
    if not rewards_by_source:
        raise ValueError("rewards_by_source is empty: at least one reward source is needed")
    n = next(iter(rewards_by_source.values())).numel()
    total = torch.zeros(n, dtype=torch.float32)
    for source, w in active_weights(weights).items():
        if source not in rewards_by_source:
            raise ValueError(f"weights name a reward source that was not computed: {source!r}")
        total = total + w * torch.nan_to_num(rewards_by_source[source].detach().float().cpu(), nan=0.0)
    return total


MULTI_OBJECTIVE_AGGREGATIONS = ("per_source", "sum_then_normalize", "normalize_then_sum")


def combine_advantages(
    rewards_by_source: Mapping[str, Tensor],
    weights: Mapping[str, float],
    group_size: int,
    scale_rewards: str = "group",
    eps: float = 1e-4,
    aggregation: str = "per_source",
) -> Tensor:
    """One advantage per row from several weighted reward sources (docs/reference.md §2.8).

    aggregation (TrainConfig `multi_objective_aggregation`):
        "per_source" (default; Intuitor's code): A_i = Σ_s w_s · group_advantages(r^s)_i, each
            source normalised in its group as `scale_rewards` says.
        "sum_then_normalize" (TRL's default): A = group_advantages(Σ_s w_s r^s).
        "normalize_then_sum" (GDPO, TRL): each source z-scored in its group, weighted and summed,
            then the sum normalised over the whole batch: (x − mean) / (std + ε). `scale_rewards`
            must be "group" (the config refuses the others).

    A row without a reward from a source (NaN) adds nothing for it; a row without a reward from
    any trained source is left out of every mean and std and gets A = 0.

    Args:
        rewards_by_source: name → [N] rewards (all the same N).
        weights: name → weight. A source with weight 0, or with no entry in
            `weights`, contributes nothing (the caller only logs it). A non-zero
            weight for a source that is not in `rewards_by_source` is an error.
        group_size, scale_rewards, eps: as in `group_advantages`.

    Returns:
        [N] advantages.
    """
    if aggregation not in MULTI_OBJECTIVE_AGGREGATIONS:
        raise ValueError(f"multi_objective_aggregation must be one of {MULTI_OBJECTIVE_AGGREGATIONS}, "
                         f"got {aggregation!r}")
    if not rewards_by_source:
        raise ValueError("rewards_by_source is empty: at least one reward source is needed")
    trained = active_weights(weights)
    missing = [s for s in trained if s not in rewards_by_source]
    if missing:
        raise ValueError(f"weights name reward sources that were not computed: {missing}")
    sizes = {s: r.numel() for s, r in rewards_by_source.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"reward sources have different lengths: {sizes}")
    first = next(iter(rewards_by_source.values()))
    if aggregation == "sum_then_normalize":
        return group_advantages(_weighted_sum(rewards_by_source, trained, lambda r: r), group_size,
                                scale_rewards=scale_rewards, eps=eps)
    if aggregation == "normalize_then_sum":
        total = _weighted_sum(rewards_by_source, trained, lambda r: _group_z_scores(r, group_size, eps))
        return _batch_z_scores(total, eps)
    total = torch.zeros(first.numel(), dtype=torch.float32, device=first.device)
    for source, r in rewards_by_source.items():
        # Still validates shapes for weight-0 sources, so a bad batch fails early.
        a = group_advantages(r, group_size, scale_rewards=scale_rewards, eps=eps)
        if source in trained:
            total = total + trained[source] * a.float()
    return total


def _weighted_sum(rewards_by_source: Mapping[str, Tensor], trained: Mapping[str, float], transform) -> Tensor:
    """Σ_s w_s · transform(r^s) over the trained sources, NaN terms counting 0; NaN where every
    trained source's reward is NaN (a row nothing scored)."""
    first = next(iter(rewards_by_source.values()))
    total = torch.zeros(first.numel(), dtype=torch.float32, device=first.device)
    scored = torch.zeros(first.numel(), dtype=torch.bool, device=first.device)
    for source, w in trained.items():
        r = rewards_by_source[source].float()
        scored |= ~torch.isnan(r)
        total = total + w * torch.nan_to_num(transform(r), nan=0.0)
    return torch.where(scored, total, torch.nan)


def _group_z_scores(r: Tensor, group_size: int, eps: float) -> Tensor:
    """(r − group mean) / (group std + ε) over the rewarded rows; NaN where a row has no reward
    or its group fewer than two rewarded rows (no z-score exists there)."""
    grouped = r.view(-1, group_size)
    valid = ~torch.isnan(grouped)
    count = valid.sum(dim=1, keepdim=True)
    mean = torch.where(valid, grouped, 0.0).sum(dim=1, keepdim=True) / count.clamp(min=1)
    centred = torch.where(valid, grouped - mean, 0.0)
    std = (centred.square().sum(dim=1, keepdim=True) / (count - 1).clamp(min=1)).sqrt()
    z = centred / (std + eps)
    return torch.where(valid & (count >= 2), z, torch.nan).reshape(-1)


def _batch_z_scores(x: Tensor, eps: float) -> Tensor:
    """(x − mean) / (std + ε) over the non-NaN entries of the batch (unbiased std); NaN rows get 0."""
    valid = ~torch.isnan(x)
    values = x[valid]
    if values.numel() < 2:
        return torch.zeros_like(x)
    return torch.where(valid, (x - values.mean()) / (values.std() + eps), 0.0)
