"""Absolute Zero settings (docs/reference.md §3). Defaults are the paper's."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from ..strict import Strict

from .tasks import TASK_TYPES, TaskTypeName


class AZRConfig(Strict):

    task_types: list[TaskTypeName] = list(TASK_TYPES)
    """The task types self-play proposes and solves (deduction, abduction, induction; AZR trains all three)."""
    tasks_per_type_role: int = Field(64, ge=1)
    """Batch size per (task type × role) per step: 64 → 384 samples (AZR default)."""
    learnability_rollouts: int = Field(8, ge=1)
    """n solver rollouts per proposal to estimate its solve rate r̄."""
    num_references: int = Field(6, ge=0)
    """K triplets shown to the deduction/abduction proposer."""
    induction_inputs: int = Field(10, ge=2)
    """N inputs the induction proposer writes; half are shown to the solver."""
    buffer_capacity: int = Field(16384, ge=2)
    """Tasks kept per type. The seed is pinned; past capacity the oldest proposals
    are evicted (see `buffers.TaskBuffer`)."""
    seed_proposals: int = Field(32, ge=0)
    """Valid proposals per type the seeding phase aims for before updates begin."""
    seed_rounds: int = Field(4, ge=0)
    """At most this many proposer batches (of `tasks_per_type_role` each) per type in
    the seeding phase; it stops early once every type has `seed_proposals`."""
    reward_style: Literal["paper", "code"] = "paper"
    """`paper`: −0.5 only for wrong answers; `code`: AZR's code also turns a proposer
    reward of 0 (r̄ ∈ {0, 1}) into −0.5 (its issue #37)."""
    train_proposer: bool = True
    """False: after the seeding phase no more proposals are made and only the solver is trained, on
    tasks from the buffers the seeding phase filled (the "does the proposer matter?" ablation)."""
    exclude_programs: str | None = None
    """Programs self-play must never train on: `builtin` (the programs the built-in measurements
    draw: the template world's dev and held-out programs, the first 1,000 dev and held-out chains
    at seed 0) or a JSONL file with a `program` field per row. A proposal of one of them is not
    added to the buffers and its row is left out of the update (advantage 0); each is counted
    (`azr/<type>/propose/excluded`). With `builtin`, proposals of any other dev or held-out chain
    are trained on and counted (`azr/<type>/propose/held_out_split`): dropping all of them (40% of
    the chain world) starved the buffers of the model's own kind of task (docs/program_model.md)."""
    self_certainty_weight: float = Field(0.0, ge=0)
    """Add Intuitor's self-certainty to the solver's reward (0 = off)."""
    use_chat_template: Literal["auto", "always", "never"] = "never"
    """`never`: the plain R1 template ("User: … Assistant: <think>"), as AZR uses for
    base models; `auto`/`always`: the tokenizer's chat template."""
    executor_timeout_s: float = Field(5.0, gt=0)
    """Seconds a model-written program may run in the sandboxed executor before it is stopped."""
    executor_memory_mb: int = Field(512, ge=64)
    """Memory a model-written program may use in the executor."""
    executor_workers: int = Field(2, ge=1)
    """Executor processes checking programs in parallel."""

    @field_validator("task_types")
    @classmethod
    def _distinct_types(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError(f"azr.task_types needs at least one of {', '.join(TASK_TYPES)}")
        if len(set(value)) != len(value):
            raise ValueError(f"azr.task_types lists a type twice: {value}")
        return value
