"""The GRPO variants' names, and which combinations of them make sense (no torch here: the config
imports this module, and a config error must come before any heavy import).

TRL's `loss_type` names an objective and an aggregation at once (`OBJECTIVES`, `AGGREGATIONS`;
the maths is in `losses.py`); selftaught's own three names (token_mean, seq_mean, dr_grpo) are
aggregations of the clipped objective and stay valid. The vLLM importance correction has
selftaught's `none|token|sequence` and TRL's four modes (`resolve_correction`; the maths is in
`importance.py`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LOSS_TYPES = ("token_mean", "seq_mean", "dr_grpo", "grpo", "bnpo", "dapo", "cispo", "sapo", "luspo", "vespo")
OBJECTIVES = {"cispo": "cispo", "sapo": "sapo", "vespo": "vespo"}
"""loss_type → its per-token objective; every other loss_type is the clipped surrogate."""
AGGREGATIONS = {
    "token_mean": "token_mean", "dapo": "token_mean", "cispo": "token_mean", "vespo": "token_mean",
    "seq_mean": "seq_mean", "grpo": "seq_mean", "sapo": "seq_mean",
    "dr_grpo": "dr_grpo", "bnpo": "micro_batch_token_mean", "luspo": "seq_sum",
}
"""loss_type → how its per-token losses are reduced (`losses.aggregate`)."""
IMPORTANCE_SAMPLING_LEVELS = ("token", "sequence")

CORRECTIONS = ("none", "token", "sequence")
"""selftaught's `vllm_importance_sampling_correction` values (TRL's is a bool: true/false also work)."""
MODES = ("token_truncate", "token_mask", "sequence_truncate", "sequence_mask")
"""TRL's `vllm_importance_sampling_mode` values."""
DEFAULT_MODE = {"token": "token_truncate", "sequence": "sequence_truncate", True: "token_truncate"}
"""The mode each `correction` value means when `vllm_importance_sampling_mode` is unset."""


def objective_of(loss_type: str) -> str:
    """"clipped", "cispo", "sapo" or "vespo"."""
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {loss_type!r}")
    return OBJECTIVES.get(loss_type, "clipped")


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
