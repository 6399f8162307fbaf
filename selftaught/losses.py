"""Policy-gradient loss: the GRPO objective and its published variants, the k3 KL penalty, aggregation.

Names and meanings are TRL 1.16's `GRPOConfig` (docs/reference.md §2 and §2.2–2.9). Per token,
with A the advantage and m the loss mask:

    ratio, token level:     ρ_t = exp(log π_θ(o_t) − log π_old(o_t))
    ratio, sequence level:  ρ_t = exp((1/|o|) Σ_s (log π_θ(o_s) − log π_old(o_s)))     for every t (GSPO)

    objective (by loss_type; one module each in objectives/, the formula in its docstring):
      clipped  L_t = −min(min(ρ_t, δ) A, clip(ρ_t, 1 − ε_low, 1 + ε_high) A)    (δ: INTELLECT-2)
      cispo    L_t = −sg(min(ρ_t, ε_high)) · A · log π_θ(o_t)                    (MiniMax-M1)
      sapo     L_t = −(4/τ_A) σ(τ_A (ρ_t − 1)) · A,  τ_A = τ_pos if A > 0 else τ_neg
      vespo    L_t = −sg(φ(w)) · A · log π_θ(o_t),  w = Π_s ρ_s,  φ(w) = e^λ w^k e^{−λ w}

    kl_t = exp(ref_t − cur_t) − (ref_t − cur_t) − 1    (k3, ≥ 0; × ρ_t with use_bias_correction_kl)
    loss = aggregate(m^off · m^H · w^IS · L_t + β kl_t) − c · mean_t H(p_t)

where m^off drops the negative-advantage rows that drifted off-policy (DeepSeek-V3.2), m^H keeps
the top-ρ tokens by entropy ("Beyond the 80/20 rule"), w^IS is the vLLM importance weight
(`importance.py`) and c the entropy bonus coefficient (Skywork-OR1's adaptive control: `EntropyBonus`).

TRL's `loss_type` names one objective and one aggregation (`variants.LOSS_TYPES`, the registry:
a new loss type is one line there, plus a module in `objectives/` if its objective is new);
selftaught's own three names (token_mean, seq_mean, dr_grpo) are aggregations of the clipped
objective and stay valid. This module knows no objective by name: `PolicyObjective` asks the
loss type's `Objective` whether it is per-token and whether it folds the importance weights.

Gradient accumulation: `aggregate` normalises by the micro-batch's own token or row count
unless `num_tokens` / `num_rows` are given. Pass the counts of the whole accumulated batch
there and the micro-batch losses add up exactly to the full-batch loss. `bnpo` and the
entropy bonus are, as TRL defines them, means over each micro-batch; `num_micro_batches`
divides them so that the micro-batches average.

Every aggregation is a weighted sum Σ c_t x_t of the per-token terms (`aggregation_weights`), so
when each term depends on its own token's log-prob alone (`PolicyObjective.per_token`) the loss
can be handed to the fused head one token at a time (`PolicyObjective.token_losses`), which then
takes the output layer's gradients in the forward. The sequence-level ratio, VESPO, the off-policy
and top-entropy masks and the entropy bonus are not of that form and take the general path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .objectives import Inputs
from .objectives import per_token_advantages as _per_token
from .objectives.clipped import clipped_objective
from .variants import IMPORTANCE_SAMPLING_LEVELS, loss_type_of
QUANTILE_INPUT_LIMIT = 2 ** 24
"""torch.quantile refuses larger inputs; above it `entropy_threshold` sorts."""


def importance_log_ratio(logprobs: Tensor, old_logprobs: Tensor, mask: Tensor, level: str = "token") -> Tensor:
    """log ρ, [B, T] with gradient: per token, or (GSPO) each row's masked mean of the token
    log-ratios, the log of their geometric mean, broadcast over the row (a row without tokens: 0)."""
    log_ratio = logprobs - old_logprobs.detach()
    if level == "token":
        return log_ratio
    if level != "sequence":
        raise ValueError(f"importance_sampling_level must be one of {IMPORTANCE_SAMPLING_LEVELS}, got {level!r}")
    m = mask.bool()
    per_row = torch.where(m, log_ratio, 0.0).sum(-1, keepdim=True) / m.sum(-1, keepdim=True).clamp(min=1)
    return per_row.expand_as(log_ratio)


def clipped_surrogate(logprobs: Tensor, old_logprobs: Tensor, advantages: Tensor, epsilon: float = 0.2,
                      epsilon_high: float | None = None, delta: float | None = None) -> tuple[Tensor, Tensor]:
    """`objectives.clipped.clipped_objective` at the token-level ratio exp(log π_θ − log π_old): (L [B, T],
    clipped [B, T] float, 1.0 where the clip changed the objective; there the gradient is zero).

    Args:
        logprobs: [B, T] log π_θ of the sampled tokens (with grad).
        old_logprobs: [B, T] log π_old (detached here).
        advantages: [B] (one per completion, broadcast over tokens) or [B, T].
        epsilon, epsilon_high: ε_low, ε_high (None → ε_low; DAPO clip-higher uses 0.28).
        delta: two-sided clipping's bound on ρ for negative advantages (None: off).
    """
    return clipped_objective(torch.exp(logprobs - old_logprobs.detach()), advantages, epsilon, epsilon_high, delta)


def off_policy_mask(advantages: Tensor, logprobs: Tensor, behaviour_logprobs: Tensor, mask: Tensor,
                    threshold: float) -> Tensor:
    """DeepSeek-V3.2's off-policy sequence mask, [B, 1] float: a row with A < 0 whose mean
    log π_behaviour − log π_θ over its tokens exceeds δ leaves the policy term (1 = keep).
    `behaviour_logprobs` are the sampler's (vLLM) when it reported them, else π_old."""
    m = mask.bool()
    kl = torch.nan_to_num(behaviour_logprobs - logprobs.detach(), nan=0.0)  # an unscored token is no evidence
    mean_kl = torch.where(m, kl, 0.0).sum(-1, keepdim=True) / m.sum(-1, keepdim=True).clamp(min=1)
    return ((_per_token(advantages)[:, :1] >= 0) | (mean_kl <= threshold)).to(logprobs.dtype)


def entropy_threshold(pooled: Tensor, top_entropy_quantile: float) -> Tensor:
    """The entropy at the (1 − ρ) quantile (linear interpolation) of `pooled`, the entropies of
    every real token the mask is chosen among; ρ = 0 keeps only the highest."""
    q = 1.0 - top_entropy_quantile  # written as TRL writes it, so the same float reaches quantile()
    values = pooled.to(torch.promote_types(pooled.dtype, torch.float32))  # the entropies' own precision (≥ fp32)
    if values.numel() <= QUANTILE_INPUT_LIMIT:
        return torch.quantile(values, q)
    ordered = values.sort().values
    position = q * (ordered.numel() - 1)
    low = int(math.floor(position))
    high = min(low + 1, ordered.numel() - 1)
    return torch.lerp(ordered[low], ordered[high], position - low)


def high_entropy_mask(entropy: Tensor, mask: Tensor, threshold: Tensor) -> Tensor:
    """[B, T] bool: real tokens whose entropy is at least `threshold` ("Beyond the 80/20 rule")."""
    return (entropy >= threshold) & mask.bool()


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
    num_micro_batches: int = 1,
) -> Tensor:
    """Reduce a [B, T] per-token loss to a scalar over the real tokens, as `loss_type` says.

    The loss type's aggregation (`variants.LOSS_TYPES`):
        "token_mean" (token_mean, dapo, cispo, vespo): Σ_{b,t} x·m / Σ m — every token weighs
            the same, so long completions count more.
        "seq_mean" (seq_mean, grpo, sapo; paper GRPO): mean over rows of each row's token mean (a
            row without tokens counts as 0, as in TRL).
        "dr_grpo": Σ x·m / (B · max_completion_length) — a constant normaliser, no length bias.
        "micro_batch_token_mean" (bnpo): this micro-batch's Σ x·m / Σ m, divided by
            `num_micro_batches` (TRL's: normalised by the local batch only).
        "seq_sum" (luspo): mean over rows of each row's token sum (LUSPO: a sequence's loss
            scaled by its length).

    num_tokens / num_rows (keyword only, for gradient accumulation): replace the
    micro-batch's Σ m (token_mean) or B (seq_mean, dr_grpo, seq_sum) by the whole
    accumulated batch's counts.
    """
    aggregation = loss_type_of(loss_type).aggregation
    mask = mask.bool()
    x = torch.where(mask, per_token, 0.0)  # where, not *, so inf/NaN at pads cannot leak
    if aggregation == "token_mean":
        denom = mask.sum().clamp(min=1) if num_tokens is None else num_tokens
        return x.sum() / denom
    if aggregation == "micro_batch_token_mean":
        return x.sum() / mask.sum().clamp(min=1) / num_micro_batches
    rows = per_token.shape[0] if num_rows is None else num_rows
    if aggregation == "seq_mean":
        return (x.sum(dim=-1) / mask.sum(dim=-1).clamp(min=1)).sum() / rows
    if aggregation == "seq_sum":
        return x.sum() / rows
    assert aggregation == "dr_grpo", aggregation  # variants.AGGREGATIONS
    if max_completion_length is None:
        raise ValueError(f"loss_type={loss_type!r} needs max_completion_length")
    return x.sum() / (rows * max_completion_length)


def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Σ values·m / Σ m over a [B, T] mask (0 when nothing is masked in)."""
    m = mask.bool()
    return torch.where(m, values, 0.0).sum() / m.sum().clamp(min=1)


def aggregation_weights(
    mask: Tensor,
    loss_type: str = "token_mean",
    max_completion_length: int | None = None,
    *,
    num_tokens: float | None = None,
    num_rows: float | None = None,
    num_micro_batches: int = 1,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """c [B, T] (in `dtype`) with aggregate(x, mask, ...) = Σ_{b,t} c·x for every x (same arguments): each
    aggregation is a weighted sum of the per-token terms — 1/Σm (token_mean), 1/(|o_b|·B)
    (seq_mean), 1/(B·L) (dr_grpo), 1/(Σm·micro-batches) (bnpo), 1/B (seq_sum) — and 0 at padding.
    That is what lets the fused head take each token's gradient as soon as its log-prob exists
    (`PolicyObjective.token_losses`)."""
    aggregation = loss_type_of(loss_type).aggregation
    mask = mask.bool()
    real = mask.to(dtype)
    if aggregation == "token_mean":
        return real / (mask.sum().clamp(min=1) if num_tokens is None else num_tokens)
    if aggregation == "micro_batch_token_mean":
        return real / (mask.sum().clamp(min=1) * num_micro_batches)
    rows = mask.shape[0] if num_rows is None else num_rows
    if aggregation == "seq_mean":
        return real / (mask.sum(dim=-1, keepdim=True).clamp(min=1) * rows)
    if aggregation == "seq_sum":
        return real / rows
    assert aggregation == "dr_grpo", aggregation  # variants.AGGREGATIONS
    if max_completion_length is None:
        raise ValueError(f"loss_type={loss_type!r} needs max_completion_length")
    return real / (rows * max_completion_length)


@dataclass
class EntropyBonus:
    """The entropy bonus −c · mean_t H, with Skywork-OR1's adaptive coefficient (TRL's semantics).

    Static (`adaptive` false): c = `coef` always. Adaptive: after every optimizer step `update`
    moves c by `step` towards more bonus when the step's mean entropy is at or below `target`,
    towards less otherwise (within [`low`, `high`]), and the bonus applies only while the last
    measured entropy is at or below the target (none before the first measurement).
    """

    coef: float = 0.0
    adaptive: bool = False
    target: float = 0.2
    step: float = 0.005
    low: float = 0.0
    high: float = 1.0
    last_entropy: float = math.inf

    @classmethod
    def from_config(cls, config) -> "EntropyBonus":
        return cls(coef=config.entropy_coef, adaptive=config.use_adaptive_entropy, target=config.entropy_target,
                   step=config.entropy_coef_delta, low=config.entropy_coef_min, high=config.entropy_coef_max)

    @property
    def enabled(self) -> bool:
        """Constant for a run: an adaptive bonus stays on at c = 0 so that it can come back."""
        return self.coef != 0.0 or self.adaptive

    def applied(self) -> float:
        """c for this step's loss."""
        if self.adaptive and self.last_entropy > self.target:
            return 0.0
        return self.coef

    def update(self, entropy: float) -> None:
        """After an optimizer step whose mean entropy (over the bonus's tokens, every rank) was `entropy`."""
        if not self.adaptive:
            return
        if entropy <= self.target:
            self.coef = min(self.coef + self.step, self.high)
        else:
            self.coef = max(self.coef - self.step, self.low)
        self.last_entropy = entropy

    def state_dict(self) -> dict:
        return {"coef": self.coef, "last_entropy": self.last_entropy}

    def load_state_dict(self, state: dict) -> None:
        self.coef, self.last_entropy = state["coef"], state["last_entropy"]


class PolicyObjective:
    """The GRPO loss of one micro-batch (module docstring), given everything but the policy's
    outputs: the arguments of `policy_loss` except `logprobs` and `entropy`.

    `loss_and_stats` takes [B, T] log-probs (and the entropy when the bonus needs it): every
    setting. When the loss is a sum of per-token terms of log p_t (`per_token`: token-level
    ratio, a per-token objective (clipped, cispo, sapo; `Objective.per_token`), no off-policy
    mask, no top-entropy mask, no entropy bonus), `token_losses` is the same loss one token at a
    time, c_t·(w_t·L_t + β·kl_t) at flat positions of [B, T] (c_t: `aggregation_weights`): the
    form the fused head needs (`fused_logprobs.fused_token_loss`), whose sum over the real tokens
    is the loss.
    """

    def __init__(
        self,
        old_logprobs: Tensor,
        advantages: Tensor,
        mask: Tensor,
        *,
        loss_type: str = "token_mean",
        importance_sampling_level: str = "token",
        epsilon: float = 0.2,
        epsilon_high: float | None = None,
        delta: float | None = None,
        beta: float = 0.0,
        use_bias_correction_kl: bool = False,
        sapo_temperature_pos: float = 1.0,
        sapo_temperature_neg: float = 1.05,
        vespo_k_pos: float = 2.0,
        vespo_lambda_pos: float = 3.0,
        vespo_k_neg: float = 3.0,
        vespo_lambda_neg: float = 2.0,
        off_policy_mask_threshold: float | None = None,
        max_completion_length: int | None = None,
        ref_logprobs: Tensor | None = None,
        importance_weights: Tensor | None = None,
        behaviour_logprobs: Tensor | None = None,
        entropy_mask: Tensor | None = None,
        entropy_coef: float = 0.0,
        num_tokens: float | None = None,
        num_rows: float | None = None,
        num_micro_batches: int = 1,
    ):
        if beta > 0 and ref_logprobs is None:
            raise ValueError("beta > 0 needs ref_logprobs (a reference model); set beta=0 to disable the KL term")
        if importance_sampling_level not in IMPORTANCE_SAMPLING_LEVELS:
            raise ValueError(f"importance_sampling_level must be one of {IMPORTANCE_SAMPLING_LEVELS}, "
                             f"got {importance_sampling_level!r}")
        self.objective = loss_type_of(loss_type).objective
        settings = locals()  # the arguments: the objective takes its own (`Objective.settings`) by keyword
        self.objective_settings = {key: settings[key] for key in self.objective.settings}
        self.mask = mask.bool()
        self.old_logprobs = old_logprobs.detach()
        self.advantages = advantages.detach()
        self.ref_logprobs = None if ref_logprobs is None else ref_logprobs.detach()
        self.importance_weights = None if importance_weights is None else importance_weights.detach()
        self.behaviour_logprobs = self.old_logprobs if behaviour_logprobs is None else behaviour_logprobs.detach()
        self.entropy_mask, self.entropy_coef = entropy_mask, entropy_coef
        self.level = importance_sampling_level
        self.beta, self.use_bias_correction_kl = beta, use_bias_correction_kl
        self.off_policy_mask_threshold = off_policy_mask_threshold
        self.aggregation = {"loss_type": loss_type, "max_completion_length": max_completion_length,
                            "num_tokens": num_tokens, "num_rows": num_rows, "num_micro_batches": num_micro_batches}
        self._flat: dict[str, Tensor | None] | None = None  # `token_losses`' inputs, on first use

    def _flat_per_token_inputs(self) -> dict[str, Tensor | None]:
        """What `token_losses` reads, flattened over [B, T] once: old, A, w, ref log-probs and c_t."""
        def flat(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.expand(self.mask.shape).reshape(-1)

        dtype = torch.promote_types(self.old_logprobs.dtype, torch.float32)
        return {"old": flat(self.old_logprobs), "advantages": flat(_per_token(self.advantages)),
                "weights": flat(self.importance_weights), "ref": flat(self.ref_logprobs),
                "c": aggregation_weights(self.mask, **self.aggregation, dtype=dtype).reshape(-1)}

    @property
    def per_token(self) -> bool:
        """Whether the loss is Σ_t ℓ_t(log p_t), each term a function of its own token's log-prob
        alone. Not so for GSPO's sequence ratio, an objective of the whole row (VESPO's φ of the
        row's ratio; `Objective.per_token`), the off-policy mask (a row's mean drift), the
        top-entropy mask and the entropy bonus (functions of p_t)."""
        return (self.level == "token" and self.objective.per_token and self.off_policy_mask_threshold is None
                and self.entropy_mask is None and self.entropy_coef == 0)

    def _with_weights_and_kl(self, per_token: Tensor, logprobs: Tensor, ratio: Tensor, weights: Tensor | None,
                             ref_logprobs: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """w·L_t (unless the objective folded w itself, as VESPO does into φ) + β·kl_t (× ρ_t with
        use_bias_correction_kl); and kl_t."""
        if weights is not None and not self.objective.folds_importance_weights:
            per_token = per_token * weights
        if self.beta <= 0:
            return per_token, None
        kl = k3_kl(logprobs, ref_logprobs)
        return per_token + self.beta * (kl * ratio if self.use_bias_correction_kl else kl), kl

    def loss_and_stats(self, logprobs: Tensor, entropy: Tensor | None = None) -> tuple[Tensor, dict[str, float]]:
        """The loss (with grad) of [B, T] log-probs and its statistics (`policy_loss`)."""
        if self.entropy_coef != 0 and entropy is None:
            raise ValueError("entropy_coef != 0 needs the per-token entropy")
        mask, advantages, old = self.mask, self.advantages, self.old_logprobs
        ratio = torch.exp(importance_log_ratio(logprobs, old, mask, self.level))  # ρ_t
        terms = self.objective.loss(Inputs(ratio, _per_token(advantages), logprobs, old, mask, self.importance_weights),
                                    **self.objective_settings)
        per_token = terms.loss.expand_as(logprobs)
        keep = None
        if self.off_policy_mask_threshold is not None:
            keep = off_policy_mask(advantages, logprobs, self.behaviour_logprobs, mask, self.off_policy_mask_threshold)
            per_token = per_token * keep
        if self.entropy_mask is not None:
            per_token = per_token * self.entropy_mask
        per_token, kl = self._with_weights_and_kl(per_token, logprobs, ratio, self.importance_weights,
                                                  self.ref_logprobs)
        loss = aggregate(per_token, mask, **self.aggregation)
        bonus_mask = mask if self.entropy_mask is None else mask & self.entropy_mask.bool()
        if self.entropy_coef != 0:
            loss = loss - self.entropy_coef * masked_mean(entropy, bonus_mask) / self.aggregation["num_micro_batches"]
        with torch.no_grad():
            stats = {"ratio/mean": masked_mean(ratio, mask).item()}
            if terms.clipped is not None:
                stats["clip_fraction"] = masked_mean(terms.clipped.expand_as(mask), mask).item()
            if kl is not None:
                stats["kl/mean"] = masked_mean(kl, mask).item()
            if entropy is not None:
                stats["entropy/mean"] = masked_mean(entropy, mask).item()
            if keep is not None:
                stats["off_policy/masked_frac"] = masked_mean(1.0 - keep.expand_as(logprobs), mask).item()
            if self.entropy_mask is not None:
                stats["top_entropy/kept_frac"] = masked_mean(self.entropy_mask.float(), mask).item()
            for name, values in terms.stats.items():
                stats[name] = masked_mean(values.expand_as(logprobs), mask).item()
        return loss, stats

    def loss(self, logprobs: Tensor, entropy: Tensor | None = None) -> Tensor:
        """The scalar loss (with grad) of [B, T] log-probs."""
        return self.loss_and_stats(logprobs, entropy)[0]

    @torch.no_grad()
    def stats(self, logprobs: Tensor, entropy: Tensor | None = None) -> dict[str, float]:
        """`policy_loss`'s statistics of [B, T] log-probs (e.g. the fused head's detached ones)."""
        return self.loss_and_stats(logprobs.detach(), None if entropy is None else entropy.detach())[1]

    def token_losses(self, logprobs: Tensor, positions: Tensor) -> Tensor:
        """c_t·(w_t·L_t + β·kl_t) [n] for the log-probs [n] of the flat `positions` of [B, T]; their
        sum over the real tokens is `loss` (only when `per_token`)."""
        if not self.per_token:
            raise ValueError("this loss is not a sum of per-token terms (see PolicyObjective.per_token)")
        if self._flat is None:
            self._flat = self._flat_per_token_inputs()
        at = {key: None if t is None else t[positions][:, None] for key, t in self._flat.items()}  # n rows of 1
        lp = logprobs[:, None]
        ratio = torch.exp(lp - at["old"])
        terms = self.objective.loss(Inputs(ratio, at["advantages"], lp, at["old"], None, at["weights"]),
                                    **self.objective_settings)
        per_token, _ = self._with_weights_and_kl(terms.loss, lp, ratio, at["weights"], at["ref"])
        return (per_token * at["c"])[:, 0]


def policy_loss(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    entropy: Tensor | None = None,
    **settings,
) -> tuple[Tensor, dict[str, float]]:
    """The GRPO loss of one micro-batch (module docstring) and its statistics.

    Settings (keywords, `PolicyObjective`'s; TrainConfig's names): loss_type,
    importance_sampling_level, epsilon, epsilon_high, delta, beta, use_bias_correction_kl,
    sapo_temperature_pos/neg, vespo_k/lambda_pos/neg, off_policy_mask_threshold,
    max_completion_length (dr_grpo).

    Tensors:
        logprobs, old_logprobs, ref_logprobs: [B, T] per-token log-probs (logprobs with grad).
        advantages: [B] or [B, T].
        mask: [B, T] the tokens that count (real tokens; truncated rows already out).
        importance_weights: [B, T] constant vLLM weights π_old / π_sampler (`importance.py`),
            or None; VESPO folds them into φ instead of multiplying.
        behaviour_logprobs: [B, T] what the off-policy mask measures the drift from (the
            sampler's log-probs, else π_old); None = old_logprobs.
        entropy: [B, T] H(p_t) at the current policy (with grad when `entropy_coef` ≠ 0), or None.
        entropy_mask: [B, T] bool, the high-entropy tokens (`high_entropy_mask`), or None = all.
        entropy_coef: c of the bonus −c · mean H over the masked-in tokens (needs `entropy`).
        num_tokens, num_rows, num_micro_batches: gradient accumulation (`aggregate`).

    Returns:
        loss: scalar tensor with grad.
        stats: token means over `mask`, Python floats: "ratio/mean", "clip_fraction" (clipped
            and cispo objectives), "kl/mean" (β > 0), "entropy/mean" (entropy given),
            "off_policy/masked_frac", "top_entropy/kept_frac", and the objective's own
            (`Terms.stats`: "vespo/phi_mean") where they apply.
    """
    return PolicyObjective(old_logprobs, advantages, mask, **settings).loss_and_stats(logprobs, entropy)
