"""What every reward source sees: the scoring pass's `Scores`, and the source interface."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

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


class RewardSource(Protocol):
    """[N] float32 rewards for a scored rollout; NaN = no reward for that row.

    `rollout` (keyword, may be None for sources that need only texts) gives ids,
    masks and prompts. A source with `needs_entropy = True` gets `scores.token_entropy`.
    """

    name: str

    def __call__(self, completions: list[str], extras: dict, scores: Scores, rollout=None) -> torch.Tensor: ...
