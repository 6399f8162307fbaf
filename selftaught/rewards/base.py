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
    source asked for it (`needs_entropy`), from the same forward.
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


class RewardSource(ABC):
    """[N] float32 rewards for a scored rollout; NaN = no reward for that row. Subclass it.

    `rollout` (keyword, may be None for sources that need only texts) gives ids,
    masks and prompts. Optional, with defaults: `needs_entropy = True` makes the scoring
    pass return `scores.token_entropy`; `metrics()` reports figures about the latest
    call, logged as `rewards/<name>/<key>`.
    """

    name: str
    needs_entropy: bool = False

    @abstractmethod
    def __call__(self, completions: list[str], extras: dict, scores: Scores, rollout=None) -> torch.Tensor:
        """[N] float32 rewards, one per completion."""

    def metrics(self) -> dict[str, float]:
        return {}
