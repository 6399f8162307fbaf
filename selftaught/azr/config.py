"""Absolute Zero settings (REFERENCE §3). Defaults are the paper's."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

TASK_TYPES = ("deduction", "abduction", "induction")


class AZRConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    task_types: list[Literal["deduction", "abduction", "induction"]] = list(TASK_TYPES)
    tasks_per_type_role: int = Field(64, ge=1)
    """Batch size per (task type × role) per step: 64 → 384 samples (AZR default)."""
    learnability_rollouts: int = Field(8, ge=1)
    """n solver rollouts per proposal to estimate its solve rate r̄."""
    num_references: int = Field(6, ge=0)
    """K triplets shown to the deduction/abduction proposer."""
    induction_inputs: int = Field(10, ge=2)
    """N inputs the induction proposer writes; half are shown to the solver."""
    buffer_capacity: int = Field(16384, ge=1)
    seed_proposals: int = Field(32, ge=0)
    """Valid proposals per type the seeding phase aims for before updates begin."""
    reward_style: Literal["paper", "code"] = "paper"
    """`paper`: −0.5 only for wrong answers; `code`: AZR's code also turns a proposer
    reward of 0 (r̄ ∈ {0, 1}) into −0.5 (its issue #37)."""
    self_certainty_weight: float = Field(0.0, ge=0)
    """Add Intuitor's self-certainty to the solver's reward (0 = off)."""
    executor_timeout_s: float = Field(5.0, gt=0)
    executor_memory_mb: int = Field(512, ge=64)
    executor_workers: int = Field(2, ge=1)
