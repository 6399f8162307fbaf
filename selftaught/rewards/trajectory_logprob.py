"""`trajectory_logprob`: r = (1/|o|) Σ_t log π(o_t), the current policy's mean token log-prob of
its own completion (at τ, the distribution it was sampled from), from the scoring pass.
"""

from __future__ import annotations

import torch

from ..ops import sequence_mean
from .base import RewardSource, Scores


class TrajectoryLogprobReward(RewardSource):
    """r = (1/|o|) Σ_t log π(o_t): the policy's mean token log-prob of its own completion."""

    name = "trajectory_logprob"

    def __call__(self, completions, extras, scores: Scores, rollout=None) -> torch.Tensor:
        return sequence_mean(scores.old_logprobs.float(), scores.mask())
