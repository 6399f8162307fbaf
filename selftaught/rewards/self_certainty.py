"""Intuitor's reward: r = SC(o|q), the mean KL(U ‖ p_t) over the completion (docs/reference.md §1).

No answers and no verifier: the model's own confidence in what it wrote. The scoring pass
computes SC in the same no-grad forward as the PPO ratio's old log-probs (`Scores`), so the
reward costs no extra pass. `online` (the paper's default) scores with the current policy;
`offline` with the frozen reference model (an ablation: reward-hacked within ~100 steps).
"""

from __future__ import annotations

import torch

from .base import RewardSource, Scores, SourceSpec


class SelfCertaintyReward(RewardSource):
    """Intuitor: r = SC(o|q), the mean KL(U ‖ p_t) over the answer. Detached."""

    name = "self_certainty"

    def __init__(self, mode: str = "online"):
        self.mode = mode
        self.needs_reference = mode == "offline"

    @classmethod
    def from_spec(cls, spec: SourceSpec) -> RewardSource:
        return cls(spec.mode)

    def __call__(self, completions, extras, scores: Scores, rollout=None) -> torch.Tensor:
        if self.mode == "offline":
            if scores.ref_self_certainty is None:
                raise RuntimeError("offline self-certainty needs the reference model's scores")
            return scores.ref_self_certainty.detach().float()
        return scores.self_certainty.detach().float()
