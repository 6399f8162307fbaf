"""Reward sources behind one small interface, and the registry that names them.

A source maps a scored rollout to one reward per completion ([N] float32; NaN =
no reward for that row). The trainer group-normalises every source separately
and sums the weighted advantages (docs/reference.md §2, Intuitor's code); a source of
weight 0 is only logged.

A `rewards:` entry names a built-in (`REWARD_NAMES`) or a user function written
`package.module:function` or `path/to/file.py:function` (`user.py`: TRL's
reward-function signature).
"""

from __future__ import annotations

import torch

from .base import RewardSource, Scores
from .label_free import AnswerAgreementReward, MajorityVoteReward, TokenEntropyReward, TrajectoryLogprobReward
from .math_answer import (UNVERIFIED, Verdict, answer_check_budget, answers_match, check_answer,  # noqa: F401
                          check_order, extract_answer, start_verifier)
from .random_reward import RandomReward


class SelfCertaintyReward(RewardSource):
    """Intuitor: r = SC(o|q), the mean KL(U ‖ p_t) over the answer. Detached."""

    name = "self_certainty"

    def __init__(self, mode: str = "online"):
        self.mode = mode

    def __call__(self, completions, extras, scores: Scores, rollout=None) -> torch.Tensor:
        if self.mode == "offline":
            if scores.ref_self_certainty is None:
                raise RuntimeError("offline self-certainty needs the reference model's scores")
            return scores.ref_self_certainty.detach().float()
        return scores.self_certainty.detach().float()


class MathAnswerReward(RewardSource):
    """GRPO's verifiable reward: 1 if the extracted final answer matches the gold one.

    An answer the pre-check refuses, that misses math-verify's deadline or that the
    step's answer-check budget has no time left for scores 0; `last_timeouts` is how
    many did in the latest call (logged as ``rewards/math_answer/timeouts``, those
    over budget also as ``.../over_budget``; this process's share under several ranks).
    One call's checks share one budget (`math_answer.answer_check_budget`), or the
    step's when the episode source opened one.
    """

    name = "math_answer"

    def __init__(self):
        self.last_timeouts = 0
        self.last_over_budget = 0
        start_verifier()  # its cold import overlaps model loading

    def __call__(self, completions, extras, scores, rollout=None) -> torch.Tensor:
        golds = extras.get("answer") or [None] * len(completions)
        answers = [extract_answer(text) for text in completions]
        verdicts = [Verdict.NO_MATCH] * len(completions)
        # The cheapest-looking answers first: a budget spent by a few slow ones then leaves the
        # step's ordinary answers checked, not over budget.
        order = sorted(range(len(answers)), key=lambda i: check_order(answers[i]))
        with answer_check_budget():
            for i in order:
                if golds[i] is not None:
                    verdicts[i] = check_answer(answers[i], golds[i])
        self.last_timeouts = sum(v in UNVERIFIED for v in verdicts)
        self.last_over_budget = sum(v is Verdict.OVER_BUDGET for v in verdicts)
        return torch.tensor([float(v is Verdict.MATCH) for v in verdicts], dtype=torch.float32)

    def metrics(self) -> dict[str, float]:
        return {"timeouts": float(self.last_timeouts), "over_budget": float(self.last_over_budget)}


# name → factory(mode, group_size, tokenizer, answer_only). The config's list of valid
# names is this table's keys (plus the `module:function` form).
_BUILT_IN = {
    "self_certainty": lambda mode, group_size, tokenizer, answer_only: SelfCertaintyReward(mode),
    "math_answer": lambda mode, group_size, tokenizer, answer_only: MathAnswerReward(),
    "majority_vote": lambda mode, group_size, tokenizer, answer_only: MajorityVoteReward(group_size),
    "answer_agreement": lambda mode, group_size, tokenizer, answer_only: AnswerAgreementReward(group_size),
    "token_entropy": lambda mode, group_size, tokenizer, answer_only: TokenEntropyReward(answer_only, tokenizer),
    "trajectory_logprob": lambda mode, group_size, tokenizer, answer_only: TrajectoryLogprobReward(),
    "random": lambda mode, group_size, tokenizer, answer_only: RandomReward(),
}
REWARD_NAMES = tuple(_BUILT_IN)
# Every built-in that needs no gold answer (what `selftaught diagnose` ranks).
LABEL_FREE_REWARDS = tuple(name for name in REWARD_NAMES if name != "math_answer")


def is_user_function(name: str) -> bool:
    """`package.module:function` or `path/to/file.py:function`."""
    return ":" in name


def build_reward(name: str, mode: str = "online", *, group_size: int | None = None, tokenizer=None,
                 answer_only: bool = False) -> RewardSource:
    """The source a `rewards:` entry names (a user function is imported here: UserError if it cannot be)."""
    if is_user_function(name):
        from .user import UserReward, load_reward_function

        return UserReward(load_reward_function(name), name)
    if name not in _BUILT_IN:
        raise ValueError(f"unknown reward source {name!r}")
    if name in ("majority_vote", "answer_agreement") and not group_size:
        raise ValueError(f"{name} needs the group size (num_generations)")
    return _BUILT_IN[name](mode, group_size, tokenizer, answer_only)


__all__ = ["AnswerAgreementReward", "LABEL_FREE_REWARDS", "MajorityVoteReward", "MathAnswerReward",
           "REWARD_NAMES", "RandomReward", "RewardSource", "Scores", "SelfCertaintyReward", "TokenEntropyReward",
           "TrajectoryLogprobReward", "build_reward", "is_user_function"]
