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


def _reward_vector(rewards: Tensor) -> Tensor:
    """[N] rewards as floats; ValueError for any other shape."""
    if rewards.dim() != 1:
        raise ValueError(f"rewards must be 1-D [N], got shape {tuple(rewards.shape)}")
    return rewards if rewards.is_floating_point() else rewards.float()


def _in_groups(rewards: Tensor, group_size: int) -> Tensor:
    """[N] rewards as [num_groups, G]: rows [g*G, (g+1)*G) are the G completions of prompt g."""
    if group_size < 2:
        raise ValueError(f"group_size must be >= 2 (a std needs two samples), got {group_size}")
    r = _reward_vector(rewards)
    if r.numel() % group_size != 0:
        raise ValueError(f"number of rewards ({r.numel()}) is not a multiple of group_size ({group_size})")
    return r.view(-1, group_size)


def normalise_in_groups(grouped: Tensor, scale_rewards: str, eps: float, *,
                        explicit_sums: bool = False) -> tuple[Tensor, Tensor]:
    """(A, defined) for rewards [num_groups, n]: A = (r − μ_group) / (σ + ε), the one group
    normalisation of GRPO and TRR++.

    σ: the group's unbiased std ("group"), the std of every reward of the batch ("batch") or
    none ("none": A = r − μ). NaN = no reward: such an entry is left out of its group's mean
    and std and of the batch std. `defined`: entries with a reward in a group of at least two
    rewarded entries; A is 0 everywhere else (no signal rather than an unnormalised one).
    With every reward present the mean and std are torch's; `explicit_sums` (or a missing reward)
    takes them as explicit masked sums, Σ r / n and √(Σ (r − μ)² / (n − 1)), equal up to rounding.
    """
    scale_rewards = _check_scale(scale_rewards)
    valid = ~torch.isnan(grouped)
    count = valid.sum(dim=1, keepdim=True)
    defined = valid & (count >= 2)
    if bool(valid.all()) and grouped.shape[1] >= 2 and not explicit_sums:
        centred = grouped - grouped.mean(dim=1, keepdim=True)
        group_std = grouped.std(dim=1, keepdim=True) if scale_rewards == "group" else None
        batch_std = grouped.std() if scale_rewards == "batch" else None
    else:
        mean = torch.where(valid, grouped, 0.0).sum(dim=1, keepdim=True) / count.clamp(min=1)
        centred = torch.where(defined, grouped - mean, 0.0)
        group_std = (centred.square().sum(dim=1, keepdim=True) / (count - 1).clamp(min=1)).sqrt()
        rewarded = grouped[valid]
        batch_std = rewarded.std() if rewarded.numel() > 1 else rewarded.new_zeros(())
    if scale_rewards == "group":
        centred = _safe_div(centred, group_std + eps)
    elif scale_rewards == "batch":
        centred = _safe_div(centred, batch_std + eps)
    return torch.where(defined, centred, 0.0), defined


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
    a group with fewer than two rewarded rows gets A = 0 (`normalise_in_groups`).
    """
    grouped = _in_groups(rewards, group_size)
    return normalise_in_groups(grouped, scale_rewards, eps)[0].reshape(-1)


def task_relative_advantages(
    rewards: Tensor,
    keys: Sequence[Hashable],
    scale: bool = True,
    eps: float = 1e-4,
) -> Tensor:
    """AZR's task-relative REINFORCE++ (TRR++) advantages: one baseline per key.

    Rows with equal key, e.g. ("deduction", "solve"), form a group:
    A = (r − μ_key) / (σ_key + ε), σ the unbiased std of the group (`normalise_in_groups`).

    Args:
        rewards: [N] rewards.
        keys: N hashable keys, in row order; rows need not be contiguous.
        scale: False → only subtract the group mean.
        eps: ε added to the std.

    Returns:
        [N] advantages. A group of one row gets 0: its mean is its own reward,
        and its std is undefined. (verl's GRPO code instead uses μ=0, σ=1 for
        singletons, i.e. A = r; we prefer no signal over an unnormalised one.)
    """
    r = _reward_vector(rewards)
    if len(keys) != r.numel():
        raise ValueError(f"got {len(keys)} keys for {r.numel()} rewards")
    out = torch.zeros_like(r)
    rows_by_key: dict[Hashable, list[int]] = {}
    for i, k in enumerate(keys):
        rows_by_key.setdefault(k, []).append(i)
    for rows in rows_by_key.values():
        idx = torch.tensor(rows, device=r.device)
        out[idx] = normalise_in_groups(r[idx].view(1, -1), "group" if scale else "none", eps)[0].view(-1)
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
    trained = _trained_sources(rewards_by_source, weights)
    n = next(iter(rewards_by_source.values())).numel()
    total = torch.zeros(n, dtype=torch.float32)
    for source, w in trained.items():
        total = total + w * torch.nan_to_num(rewards_by_source[source].detach().float().cpu(), nan=0.0)
    return total


def _trained_sources(rewards_by_source: Mapping[str, Tensor], weights: Mapping[str, float]) -> dict[str, float]:
    """`active_weights`, after checking that there are rewards and that every trained source has them."""
    if not rewards_by_source:
        raise ValueError("rewards_by_source is empty: at least one reward source is needed")
    trained = active_weights(weights)
    missing = [s for s in trained if s not in rewards_by_source]
    if missing:
        raise ValueError(f"weights name reward sources that were not computed: {missing}")
    return trained


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
    trained = _trained_sources(rewards_by_source, weights)
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
    z, defined = normalise_in_groups(_in_groups(r, group_size), "group", eps, explicit_sums=True)
    return torch.where(defined, z, torch.nan).reshape(-1)


def _batch_z_scores(x: Tensor, eps: float) -> Tensor:
    """(x − mean) / (std + ε) over the non-NaN entries of the batch (unbiased std); NaN rows get 0."""
    valid = ~torch.isnan(x)
    values = x[valid]
    if values.numel() < 2:
        return torch.zeros_like(x)
    return torch.where(valid, (x - values.mean()) / (values.std() + eps), 0.0)
