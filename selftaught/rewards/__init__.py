"""Reward sources behind one small interface.

A source maps a scored rollout to one reward per completion ([N] float32). The
trainer group-normalises every source separately and sums the weighted
advantages (REFERENCE §2, Intuitor's code); a source of weight 0 is only logged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from .math_answer import Verdict, answers_match, check_answer, extract_answer, start_verifier  # noqa: F401


@dataclass
class Scores:
    """What the trainer's no-grad scoring pass measured for each completion.

    old_logprobs: [N, T] log π_old(o_t) (the PPO ratio's denominator).
    self_certainty: [N] SC(o|q) under the current policy — online (REFERENCE §1).
    ref_logprobs / ref_self_certainty: the same under the frozen reference model,
    present only when one is loaded (β > 0 or offline self-certainty).
    """

    old_logprobs: torch.Tensor
    self_certainty: torch.Tensor
    ref_logprobs: torch.Tensor | None = None
    ref_self_certainty: torch.Tensor | None = None


class RewardSource(Protocol):
    name: str

    def __call__(self, completions: list[str], extras: dict, scores: Scores) -> torch.Tensor: ...


class SelfCertaintyReward:
    """Intuitor: r = SC(o|q), the mean KL(U ‖ p_t) over the answer. Detached."""

    name = "self_certainty"

    def __init__(self, mode: str = "online"):
        self.mode = mode

    def __call__(self, completions, extras, scores: Scores) -> torch.Tensor:
        if self.mode == "offline":
            if scores.ref_self_certainty is None:
                raise RuntimeError("offline self-certainty needs the reference model's scores")
            return scores.ref_self_certainty.detach().float()
        return scores.self_certainty.detach().float()


class MathAnswerReward:
    """GRPO's verifiable reward: 1 if the extracted final answer matches the gold one.

    An answer the pre-check refuses or that misses math-verify's deadline scores
    0; `last_timeouts` is how many did in the latest call (logged as
    ``rewards/math_answer/timeouts``; this process's share under several ranks).
    """

    name = "math_answer"

    def __init__(self):
        self.last_timeouts = 0
        start_verifier()  # its cold import overlaps model loading

    def __call__(self, completions, extras, scores) -> torch.Tensor:
        answers = extras.get("answer") or [None] * len(completions)
        verdicts = [check_answer(extract_answer(text), gold) if gold is not None else Verdict.NO_MATCH
                    for text, gold in zip(completions, answers)]
        self.last_timeouts = sum(v in (Verdict.REFUSED, Verdict.TIMED_OUT) for v in verdicts)
        return torch.tensor([float(v is Verdict.MATCH) for v in verdicts], dtype=torch.float32)


def build_reward(name: str, mode: str = "online") -> RewardSource:
    if name == "self_certainty":
        return SelfCertaintyReward(mode)
    if name == "math_answer":
        return MathAnswerReward()
    raise ValueError(f"unknown reward source {name!r}")
