"""What every reward source sees: the scoring pass's `Scores`, and the source interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch


@dataclass
class Scores:
    """What the trainer's no-grad scoring pass measured for each completion.

    old_logprobs: [N, T] log π_old(o_t) (the PPO ratio's denominator).
    self_certainty: [N] SC(o|q) under the current policy — online (docs/reference.md §1).
    ref_logprobs / ref_self_certainty: the same under the frozen reference model,
    present only when one is loaded (β > 0 or offline self-certainty).
    token_entropy: [N, T] H(p_t) at the sampling temperature, present only when a
    source asked for it (`RewardSource.needs_token_entropy`), from the same forward.
    completion_mask: [N, T] which completion tokens are real (None: every token).
    """

    old_logprobs: torch.Tensor
    self_certainty: torch.Tensor
    ref_logprobs: torch.Tensor | None = None
    ref_self_certainty: torch.Tensor | None = None
    token_entropy: torch.Tensor | None = None
    completion_mask: torch.Tensor | None = None

    def mask(self) -> torch.Tensor:
        if self.completion_mask is not None:
            return self.completion_mask.bool()
        return torch.ones(self.old_logprobs.shape, dtype=torch.bool)


@dataclass(frozen=True)
class SourceSpec:
    """What one reward source is built from: its `rewards:` entry's settings (`config.RewardSpec`)
    and what the trainer knows when it builds it (the group size G, the tokenizer)."""

    mode: str = "online"
    answer_only: bool = False
    group_size: int | None = None
    tokenizer: object = None


class RewardSource(ABC):
    """[N] float32 rewards for a scored rollout; NaN = no reward for that row. Subclass it.

    `rollout` (keyword, may be None for sources that need only texts) gives ids,
    masks and prompts. `metrics()` (optional) reports figures about the latest call,
    logged as `rewards/<name>/<key>`.

    A source declares what it needs from the trainer; the config, the episode source and
    the trainer read these declarations and never compare names:
    - `needs_answers`: gold answers (`extras["answer"]`): a data set without them is refused
      when the source trains (weight ≠ 0) and the source is dropped when it is only logged;
    - `needs_reference`: the frozen reference model's scores (`Scores.ref_*`);
    - `needs_group_size`: completions come in groups of G (`SourceSpec.group_size`);
    - `needs_token_entropy`: the scoring pass also returns H(p_t) (`Scores.token_entropy`);
    - `accepts_answer_only`: the `answer_only` setting (score the final answer's tokens only)
      applies to it.
    `from_spec` is its one constructor: override it when `__init__` takes settings.
    """

    name: str
    needs_answers: bool = False
    needs_reference: bool = False
    needs_group_size: bool = False
    needs_token_entropy: bool = False
    accepts_answer_only: bool = False

    @classmethod
    def from_spec(cls, spec: SourceSpec) -> "RewardSource":
        """The source a `rewards:` entry describes (default: one without settings)."""
        return cls()

    @abstractmethod
    def __call__(self, completions: list[str], extras: dict, scores: Scores, rollout=None) -> torch.Tensor:
        """[N] float32 rewards, one per completion."""

    def metrics(self) -> dict[str, float]:
        return {}
