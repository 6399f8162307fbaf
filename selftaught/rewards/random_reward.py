"""The random-reward control: a fair coin per completion, independent of everything it wrote.

"Spurious rewards" (Shao et al., 2025, arXiv 2506.10947) lifted Qwen2.5-Math with random
rewards, so a label-free gain means little until a random reward, trained the same way,
is shown to give none. `random` is that control: r_i ~ Bernoulli(1/2), group-normalised
like every other source. The coins come from torch's default random stream, which the
trainer seeds (`seed`) and checkpoints with every process's RNG state, so a resumed run
draws the same coins as an uninterrupted one.
"""

from __future__ import annotations

import torch

from .base import RewardSource, Scores

HEADS = 0.5
"""P(r = 1): a fair coin, as the spurious-rewards paper's random reward (γ = 0.5)."""


class RandomReward(RewardSource):
    name = "random"

    def __call__(self, completions: list[str], extras: dict, scores: Scores, rollout=None) -> torch.Tensor:
        return (torch.rand(len(completions)) < HEADS).float()
