"""Which completions of a group give the same answer: the clustering majority vote and
answer agreement share.

Equivalence "≡" is `answers_match` (normalised string, numbers, then math-verify),
under the step's answer-check budget (`math_answer.answer_check_budget`).
Answers are clustered greedily per group: each answer joins the first cluster
whose representative (its first member) matches it, else opens a new one. A
completion with no extracted answer belongs to no cluster. Majority ties are broken
by first occurrence in the group: among the largest clusters, the one whose first
member comes first wins.
"""

from __future__ import annotations

from .base import RewardSource, SourceSpec
from .math_answer import answer_check_budget, answers_match, extract_answer


def answer_clusters(answers: tuple[str | None, ...]) -> tuple[int | None, ...]:
    """Cluster id of each answer (ids in first-occurrence order; None for no answer).

    majority_vote and answer_agreement cluster the same groups in one step: the step's
    budget remembers every verdict, so the second clustering runs no comparison again.
    (Not cached across calls: a verdict cut short by one step's budget must not outlive it.)
    """
    representatives: list[str] = []
    ids: list[int | None] = []
    for answer in answers:
        if answer is None:
            ids.append(None)
            continue
        for k, representative in enumerate(representatives):
            if answers_match(answer, representative):
                ids.append(k)
                break
        else:
            representatives.append(answer)
            ids.append(len(representatives) - 1)
    return tuple(ids)


def answer_groups(completions: list[str], group_size: int) -> list[tuple[int | None, ...]]:
    """Each group's cluster ids (`answer_clusters`), under one answer-check budget."""
    if len(completions) % group_size:
        raise ValueError(f"{len(completions)} completions do not split into groups of {group_size}")
    answers = [extract_answer(text) for text in completions]
    with answer_check_budget():
        return [answer_clusters(tuple(answers[i:i + group_size])) for i in range(0, len(answers), group_size)]


def majority_cluster(ids: tuple[int | None, ...]) -> int | None:
    """The largest cluster; ties → the one that occurs first (lowest id); None if no answers."""
    counts: dict[int, int] = {}
    for k in ids:
        if k is not None:
            counts[k] = counts.get(k, 0) + 1
    if not counts:
        return None
    return max(counts, key=lambda k: (counts[k], -k))


class GroupVote(RewardSource):
    """A source that compares the G completions of each prompt with each other (majority vote,
    answer agreement): it needs the group size."""

    needs_group_size = True

    def __init__(self, group_size: int):
        self.group_size = group_size

    @classmethod
    def from_spec(cls, spec: SourceSpec) -> RewardSource:
        return cls(spec.group_size)
