"""Reward sources behind one small interface, and the registry that names them.

A source maps a scored rollout to one reward per completion ([N] float32; NaN =
no reward for that row) and declares what it needs from the trainer (`base.RewardSource`).
The trainer group-normalises every source separately and sums the weighted advantages
(docs/reference.md §2, Intuitor's code); a source of weight 0 is only logged.

A `rewards:` entry names a built-in (a key of `REWARDS`) or a user function written
`package.module:function` or `path/to/file.py:function` (`user.py`: TRL's
reward-function signature). Adding a built-in is one `RewardSource` subclass in its own
module and one line in `REWARDS`.
"""

from __future__ import annotations

from .answer_agreement import AnswerAgreementReward
from .base import RewardSource, Scores, SourceSpec
from .majority_vote import MajorityVoteReward
from .math_answer import MathAnswerReward
from .random_reward import RandomReward
from .self_certainty import SelfCertaintyReward
from .token_entropy import TokenEntropyReward
from .trajectory_logprob import TrajectoryLogprobReward

REWARDS: dict[str, type[RewardSource]] = {
    "self_certainty": SelfCertaintyReward,
    "math_answer": MathAnswerReward,
    "majority_vote": MajorityVoteReward,
    "answer_agreement": AnswerAgreementReward,
    "token_entropy": TokenEntropyReward,
    "trajectory_logprob": TrajectoryLogprobReward,
    "random": RandomReward,
}
"""Every built-in source by its `rewards:` name; the config accepts exactly these (and user functions)."""


def label_free_rewards() -> tuple[str, ...]:
    """The built-ins that need neither gold answers nor a reference model: what `selftaught diagnose`
    ranks (read from `REWARDS` when called, so a source registered at run time counts)."""
    return tuple(name for name, source in REWARDS.items() if not (source.needs_answers or source.needs_reference))


def is_user_function(name: str) -> bool:
    """`package.module:function` or `path/to/file.py:function`."""
    return ":" in name


def reward_class(name: str) -> type[RewardSource]:
    """The class a `rewards:` name builds (a user function's: `UserReward`), without importing the function."""
    if is_user_function(name):
        from .user import UserReward

        return UserReward
    if name not in REWARDS:
        raise ValueError(f"unknown reward source {name!r}")
    return REWARDS[name]


def build_reward(name: str, mode: str = "online", *, group_size: int | None = None, tokenizer=None,
                 answer_only: bool = False) -> RewardSource:
    """The source a `rewards:` entry names (a user function is imported here: UserError if it cannot be)."""
    if is_user_function(name):
        from .user import UserReward, load_reward_function

        return UserReward(load_reward_function(name), name)
    source = reward_class(name)
    if source.needs_group_size and not group_size:
        raise ValueError(f"{name} needs the group size (num_generations)")
    return source.from_spec(SourceSpec(mode=mode, answer_only=answer_only, group_size=group_size,
                                       tokenizer=tokenizer))


__all__ = ["AnswerAgreementReward", "MajorityVoteReward", "MathAnswerReward", "REWARDS", "RandomReward",
           "RewardSource", "Scores", "SelfCertaintyReward", "SourceSpec", "TokenEntropyReward",
           "TrajectoryLogprobReward", "build_reward", "is_user_function", "label_free_rewards", "reward_class"]
