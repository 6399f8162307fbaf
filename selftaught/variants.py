"""The GRPO variants' names, and which combinations of them make sense (no torch here: the config
imports this module, and a config error must come before any heavy import).

`LOSS_TYPES` is the registry of TRL's `loss_type` names: each names one per-token objective
(`objectives/`, one module per objective with its paper's formula) and one aggregation (how the
per-token losses are reduced, `losses.aggregate`). selftaught's own three names (token_mean,
seq_mean, dr_grpo) are aggregations of the clipped objective and stay valid. A new loss type is
one line here, plus a module in `objectives/` if its objective is new. The vLLM importance
correction has selftaught's `none|token|sequence` and TRL's four modes (`resolve_correction`;
the maths is in `importance.py`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .objectives import CISPO, CLIPPED, SAPO, VESPO, Objective

AGGREGATIONS = ("token_mean", "seq_mean", "dr_grpo", "micro_batch_token_mean", "seq_sum")
"""How a loss type reduces its per-token losses (`losses.aggregate` says what each one is)."""
OBJECTIVE_SETTINGS = ("loss_type", "importance_sampling_level", "epsilon", "epsilon_high", "delta", "beta",
                      "use_bias_correction_kl", "sapo_temperature_pos", "sapo_temperature_neg", "vespo_k_pos",
                      "vespo_lambda_pos", "vespo_k_neg", "vespo_lambda_neg", "off_policy_mask_threshold",
                      "max_completion_length")
"""The settings `losses.PolicyObjective` (and `policy_loss`) takes, each a TrainConfig key of the same name;
an objective's settings are among them."""


@dataclass(frozen=True)
class LossType:
    """One `loss_type`: its per-token objective and its aggregation (one of AGGREGATIONS)."""

    objective: Objective
    aggregation: str
    level: str | None = None
    """The `importance_sampling_level` it needs (None: either), with `why` the config's one line says."""
    needs: tuple[str, ...] = ()
    """Settings it needs set (not None), with `why`."""
    why: str = ""

    def __post_init__(self):
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {self.aggregation!r}")
        unknown = [key for key in self.objective.settings if key not in OBJECTIVE_SETTINGS]
        if unknown:
            raise ValueError(f"objective {self.objective.name} takes {unknown}, which are not settings of the "
                             f"loss (OBJECTIVE_SETTINGS)")


LOSS_TYPES: dict[str, LossType] = {
    # selftaught's own names: aggregations of the clipped objective
    "token_mean": LossType(CLIPPED, "token_mean"),
    "seq_mean": LossType(CLIPPED, "seq_mean"),
    "dr_grpo": LossType(CLIPPED, "dr_grpo"),              # Dr. GRPO, arXiv 2503.20783
    # TRL's names
    "grpo": LossType(CLIPPED, "seq_mean"),                # DeepSeekMath, arXiv 2402.03300
    "bnpo": LossType(CLIPPED, "micro_batch_token_mean"),  # TRL
    "dapo": LossType(CLIPPED, "token_mean"),              # DAPO, arXiv 2503.14476
    "cispo": LossType(CISPO, "token_mean",                # MiniMax-M1, arXiv 2506.13585
                      needs=("epsilon_high",), why="cispo caps its weight at epsilon_high (ScaleRL's ε_max, "
                                                    "e.g. 5.0); left unset, TRL caps it at epsilon, 0.2"),
    "sapo": LossType(SAPO, "seq_mean"),                   # SAPO, arXiv 2511.20347
    "luspo": LossType(CLIPPED, "seq_sum", level="sequence",  # LUSPO, arXiv 2602.05261
                      why="luspo is GSPO's sequence-level loss scaled by each sequence's length"),
    "vespo": LossType(VESPO, "token_mean", level="token",  # VESPO, arXiv 2602.10693
                      why="vespo weighs each sequence by the product of its token ratios itself"),
}
"""Every `loss_type` by name, in the order the docs list them; the config accepts exactly these
(docs/reference.md §2.2)."""
IMPORTANCE_SAMPLING_LEVELS = ("token", "sequence")

CORRECTIONS = ("none", "token", "sequence")
"""selftaught's `vllm_importance_sampling_correction` values (TRL's is a bool: true/false also work)."""
MODES = ("token_truncate", "token_mask", "sequence_truncate", "sequence_mask")
"""TRL's `vllm_importance_sampling_mode` values."""
DEFAULT_MODE = {"token": "token_truncate", "sequence": "sequence_truncate", True: "token_truncate"}
"""The mode each `correction` value means when `vllm_importance_sampling_mode` is unset."""


def loss_type_of(name: str) -> LossType:
    """The registered loss type `name` (ValueError naming the valid ones if there is none)."""
    if name not in LOSS_TYPES:
        raise ValueError(f"loss_type must be one of {tuple(LOSS_TYPES)}, got {name!r}")
    return LOSS_TYPES[name]


@dataclass(frozen=True)
class Correction:
    """A resolved importance correction: its mode and bounds (None = unbounded on that side)."""

    mode: str
    clip_min: float | None
    clip_max: float | None

    @property
    def per_sequence(self) -> bool:
        return self.mode.startswith("sequence")

    @property
    def masks(self) -> bool:
        return self.mode.endswith("mask")


def resolve_correction(correction, mode: str | None, clip_min: float | None, clip_max: float | None,
                       cap: float) -> Correction | None:
    """The correction the config's keys describe, or None when it is off.

    `correction`: none/false (off), token/sequence (selftaught's names) or true (TRL's);
    `mode`: one of MODES, or None for the correction's own (DEFAULT_MODE); `clip_max`
    None: `cap`. Raises ValueError naming the keys when they contradict each other.
    """
    if correction in ("none", False):
        if mode is not None:
            raise ValueError(f"vllm_importance_sampling_mode: {mode} has no effect with "
                             f"vllm_importance_sampling_correction: {correction}; turn the correction on "
                             "(true) or drop the mode")
        return None
    if correction not in (*CORRECTIONS, True):
        raise ValueError(f"vllm_importance_sampling_correction must be one of {CORRECTIONS} or true/false, "
                         f"got {correction!r}")
    if mode is None:
        mode = DEFAULT_MODE[correction]
    elif mode not in MODES:
        raise ValueError(f"vllm_importance_sampling_mode must be one of {MODES}, got {mode!r}")
    elif correction in ("token", "sequence") and not mode.startswith(correction):
        raise ValueError(f"vllm_importance_sampling_correction: {correction} contradicts "
                         f"vllm_importance_sampling_mode: {mode}; set the correction to true (or to "
                         f"{mode.split('_')[0]})")
    upper = cap if clip_max is None else clip_max
    if mode.endswith("truncate") and clip_min is None and math.isinf(upper):
        raise ValueError(f"vllm_importance_sampling_mode: {mode} with neither vllm_importance_sampling_clip_min "
                         "nor a finite vllm_importance_sampling_clip_max truncates nothing; set one of them")
    if clip_min is not None and clip_min >= upper:
        raise ValueError(f"vllm_importance_sampling_clip_min ({clip_min}) must be below "
                         f"vllm_importance_sampling_clip_max ({upper})")
    return Correction(mode, clip_min, None if math.isinf(upper) else upper)
