"""Policy-gradient loss: the GRPO objective and its published variants, the k3 KL penalty, aggregation.

Names and meanings are TRL 1.16's `GRPOConfig` (docs/reference.md §2 and §2.2–2.9). Per token,
with A the advantage and m the loss mask:

    ratio, token level:     ρ_t = exp(log π_θ(o_t) − log π_old(o_t))
    ratio, sequence level:  ρ_t = exp((1/|o|) Σ_s (log π_θ(o_s) − log π_old(o_s)))     for every t (GSPO)

    objective (by loss_type):
      clipped  L_t = −min(min(ρ_t, δ) A, clip(ρ_t, 1 − ε_low, 1 + ε_high) A)    (δ: INTELLECT-2)
      cispo    L_t = −sg(min(ρ_t, ε_high)) · A · log π_θ(o_t)                    (MiniMax-M1)
      sapo     L_t = −(4/τ_A) σ(τ_A (ρ_t − 1)) · A,  τ_A = τ_pos if A > 0 else τ_neg
      vespo    L_t = −sg(φ(w)) · A · log π_θ(o_t),  w = Π_s ρ_s,  φ(w) = e^λ w^k e^{−λ w}

    kl_t = exp(ref_t − cur_t) − (ref_t − cur_t) − 1    (k3, ≥ 0; × ρ_t with use_bias_correction_kl)
    loss = aggregate(m^off · m^H · w^IS · L_t + β kl_t) − c · mean_t H(p_t)

where m^off drops the negative-advantage rows that drifted off-policy (DeepSeek-V3.2), m^H keeps
the top-ρ tokens by entropy ("Beyond the 80/20 rule"), w^IS is the vLLM importance weight
(`importance.py`) and c the entropy bonus coefficient (Skywork-OR1's adaptive control: `EntropyBonus`).

TRL's `loss_type` names one objective and one aggregation (`variants.OBJECTIVES`,
`variants.AGGREGATIONS`); selftaught's own three names (token_mean, seq_mean, dr_grpo) are
aggregations of the clipped objective and stay valid.

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

from .variants import AGGREGATIONS, IMPORTANCE_SAMPLING_LEVELS, objective_of

OBJECTIVE_SETTINGS = ("loss_type", "importance_sampling_level", "epsilon", "epsilon_high", "delta", "beta",
                      "use_bias_correction_kl", "sapo_temperature_pos", "sapo_temperature_neg", "vespo_k_pos",
                      "vespo_lambda_pos", "vespo_k_neg", "vespo_lambda_neg", "off_policy_mask_threshold",
                      "max_completion_length")
"""The settings `PolicyObjective` (and `policy_loss`) takes, each a TrainConfig key of the same name."""
QUANTILE_INPUT_LIMIT = 2 ** 24
"""torch.quantile refuses larger inputs; above it `entropy_threshold` sorts."""
# VESPO's clamp of log w, as its reference implementation (and TRL) clamp it.
_VESPO_LOG_W_MIN, _VESPO_LOG_W_MAX = math.log(1e-8), 20.0


def _per_token(advantages: Tensor) -> Tensor:
    """[B] → [B, 1] (broadcast over tokens); [B, T] as is. Detached: no gradient through A."""
    return (advantages.unsqueeze(-1) if advantages.dim() == 1 else advantages).detach()


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


def clipped_objective(ratio: Tensor, advantages: Tensor, epsilon: float = 0.2, epsilon_high: float | None = None,
                      delta: float | None = None) -> tuple[Tensor, Tensor]:
    """PPO's clipped surrogate per token, with INTELLECT-2's upper bound δ on the unclipped ratio.

    Returns (L [B, T], clipped [B, T] float): clipped is 1.0 where the clip changed the objective,
    (ρ < 1−ε_low and A < 0) or (ρ > 1+ε_high and A > 0); there the gradient is zero.
    """
    eps_high = epsilon if epsilon_high is None else epsilon_high
    adv = _per_token(advantages)
    clipped = torch.clamp(ratio, 1.0 - epsilon, 1.0 + eps_high) * adv
    bounded = ratio if delta is None else torch.clamp(ratio, max=delta)
    loss = -torch.minimum(bounded * adv, clipped)
    with torch.no_grad():
        is_clipped = ((ratio < 1.0 - epsilon) & (adv < 0)) | ((ratio > 1.0 + eps_high) & (adv > 0))
    return loss, is_clipped.float()


def clipped_surrogate(logprobs: Tensor, old_logprobs: Tensor, advantages: Tensor, epsilon: float = 0.2,
                      epsilon_high: float | None = None, delta: float | None = None) -> tuple[Tensor, Tensor]:
    """`clipped_objective` at the token-level ratio exp(log π_θ − log π_old) (see there).

    Args:
        logprobs: [B, T] log π_θ of the sampled tokens (with grad).
        old_logprobs: [B, T] log π_old (detached here).
        advantages: [B] (one per completion, broadcast over tokens) or [B, T].
        epsilon, epsilon_high: ε_low, ε_high (None → ε_low; DAPO clip-higher uses 0.28).
        delta: two-sided clipping's bound on ρ for negative advantages (None: off).
    """
    return clipped_objective(torch.exp(logprobs - old_logprobs.detach()), advantages, epsilon, epsilon_high, delta)


def cispo_objective(ratio: Tensor, advantages: Tensor, logprobs: Tensor, epsilon_max: float) -> tuple[Tensor, Tensor]:
    """CISPO: REINFORCE on log π_θ weighted by the ratio clipped at ε_max and detached, so every
    token keeps its gradient (clipping the weight, never the token). Returns (L, clipped) with
    clipped = (ρ > ε_max and A > 0), TRL's `cispo_clip_ratio`."""
    adv = _per_token(advantages)
    loss = -torch.clamp(ratio, max=epsilon_max).detach() * adv * logprobs
    with torch.no_grad():
        is_clipped = (ratio > epsilon_max) & (adv > 0)
    return loss, is_clipped.float()


def sapo_objective(ratio: Tensor, advantages: Tensor, temperature_pos: float = 1.0,
                   temperature_neg: float = 1.05) -> Tensor:
    """SAPO: a soft gate instead of the hard clip, −(4/τ) σ(τ (ρ − 1)) A. Its gradient,
    ρ · 4σ(1−σ) · A, equals the unclipped one at ρ = 1 and fades smoothly off-policy;
    τ_neg > τ_pos fades negative-advantage tokens faster."""
    adv = _per_token(advantages)
    tau = torch.where(adv > 0, adv.new_tensor(temperature_pos), adv.new_tensor(temperature_neg))
    return -torch.sigmoid(tau * (ratio - 1.0)) * 4.0 / tau * adv


@torch.no_grad()
def vespo_weights(log_ratio: Tensor, advantages: Tensor, mask: Tensor, importance_weights: Tensor | None = None, *,
                  k_pos: float = 2.0, lambda_pos: float = 3.0, k_neg: float = 3.0, lambda_neg: float = 2.0) -> Tensor:
    """VESPO's [B, 1] weight φ(w) = e^λ w^k e^{−λ w} (φ(1) = 1) of each row's sequence ratio
    w = exp(Σ_t log ρ_t) (a sum, not GSPO's mean), times the row's vLLM importance weights when
    given; computed in log space with log ρ_t clamped to [−20, 20] and log w to [log 1e-8, 20].
    k, λ are the positive-advantage pair for A ≥ 0, the negative one otherwise."""
    m = mask.bool()
    log_w = torch.where(m, log_ratio.clamp(-20.0, 20.0), 0.0).sum(-1, keepdim=True)
    if importance_weights is not None:
        log_w = log_w + torch.log(importance_weights).clamp(_VESPO_LOG_W_MIN, 20.0).sum(-1, keepdim=True)
    log_w = log_w.clamp(_VESPO_LOG_W_MIN, _VESPO_LOG_W_MAX)
    adv = _per_token(advantages)[:, :1]
    k = torch.where(adv >= 0, log_w.new_tensor(k_pos), log_w.new_tensor(k_neg))
    lam = torch.where(adv >= 0, log_w.new_tensor(lambda_pos), log_w.new_tensor(lambda_neg)).clamp(min=1e-4)
    return torch.exp(lam + k * log_w - lam * torch.exp(log_w)).nan_to_num(nan=0.0, posinf=0.0, neginf=0.0)


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

    AGGREGATIONS[loss_type]:
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
    objective_of(loss_type)  # validates the name
    aggregation = AGGREGATIONS[loss_type]
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
    if max_completion_length is None:
        raise ValueError("loss_type='dr_grpo' needs max_completion_length")
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
    objective_of(loss_type)  # validates the name
    aggregation = AGGREGATIONS[loss_type]
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
    if max_completion_length is None:
        raise ValueError("loss_type='dr_grpo' needs max_completion_length")
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
    ratio, the clipped/cispo/sapo objectives, no off-policy mask, no top-entropy mask, no entropy
    bonus), `token_losses` is the same loss one token at a time, c_t·(w_t·L_t + β·kl_t) at flat
    positions of [B, T] (c_t: `aggregation_weights`): the form the fused head needs
    (`fused_logprobs.fused_token_loss`), whose sum over the real tokens is the loss.
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
        self.objective = objective_of(loss_type)
        self.mask = mask.bool()
        self.old_logprobs = old_logprobs.detach()
        self.advantages = advantages.detach()
        self.ref_logprobs = None if ref_logprobs is None else ref_logprobs.detach()
        self.importance_weights = None if importance_weights is None else importance_weights.detach()
        self.behaviour_logprobs = self.old_logprobs if behaviour_logprobs is None else behaviour_logprobs.detach()
        self.entropy_mask, self.entropy_coef = entropy_mask, entropy_coef
        self.level = importance_sampling_level
        self.epsilon, self.epsilon_high, self.delta = epsilon, epsilon_high, delta
        self.beta, self.use_bias_correction_kl = beta, use_bias_correction_kl
        self.sapo_temperatures = (sapo_temperature_pos, sapo_temperature_neg)
        self.vespo = {"k_pos": vespo_k_pos, "lambda_pos": vespo_lambda_pos, "k_neg": vespo_k_neg,
                      "lambda_neg": vespo_lambda_neg}
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
        alone. Not so for GSPO's sequence ratio, VESPO's φ of the row's ratio, the off-policy mask
        (a row's mean drift), the top-entropy mask and the entropy bonus (functions of p_t)."""
        return (self.level == "token" and self.objective != "vespo" and self.off_policy_mask_threshold is None
                and self.entropy_mask is None and self.entropy_coef == 0)

    def _objective(self, ratio: Tensor, advantages: Tensor, logprobs: Tensor) -> tuple[Tensor, Tensor | None]:
        """(L_t, clip indicator or None) of the clipped, cispo and sapo objectives."""
        if self.objective == "clipped":
            return clipped_objective(ratio, advantages, self.epsilon, self.epsilon_high, self.delta)
        if self.objective == "cispo":
            epsilon_max = self.epsilon if self.epsilon_high is None else self.epsilon_high
            return cispo_objective(ratio, advantages, logprobs, epsilon_max)
        return sapo_objective(ratio, advantages, *self.sapo_temperatures), None

    def _with_weights_and_kl(self, per_token: Tensor, logprobs: Tensor, ratio: Tensor, weights: Tensor | None,
                             ref_logprobs: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """w·L_t (VESPO has folded w into φ) + β·kl_t (× ρ_t with use_bias_correction_kl); and kl_t."""
        if weights is not None and self.objective != "vespo":
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
        clipped = phi = None
        if self.objective == "vespo":  # φ of the token-level sequence ratio, whatever the level
            phi = vespo_weights(logprobs - old, advantages, mask, self.importance_weights, **self.vespo)
            per_token = -phi * _per_token(advantages) * logprobs
        else:
            per_token, clipped = self._objective(ratio, advantages, logprobs)
        per_token = per_token.expand_as(logprobs)
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
            if clipped is not None:
                stats["clip_fraction"] = masked_mean(clipped.expand_as(mask), mask).item()
            if kl is not None:
                stats["kl/mean"] = masked_mean(kl, mask).item()
            if entropy is not None:
                stats["entropy/mean"] = masked_mean(entropy, mask).item()
            if keep is not None:
                stats["off_policy/masked_frac"] = masked_mean(1.0 - keep.expand_as(logprobs), mask).item()
            if self.entropy_mask is not None:
                stats["top_entropy/kept_frac"] = masked_mean(self.entropy_mask.float(), mask).item()
            if phi is not None:
                stats["vespo/phi_mean"] = masked_mean(phi.expand_as(logprobs), mask).item()
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
        per_token, _ = self._objective(ratio, at["advantages"], lp)
        per_token, _ = self._with_weights_and_kl(per_token, lp, ratio, at["weights"], at["ref"])
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
            "off_policy/masked_frac", "top_entropy/kept_frac", "vespo/phi_mean" where they apply.
    """
    return PolicyObjective(old_logprobs, advantages, mask, **settings).loss_and_stats(logprobs, entropy)
