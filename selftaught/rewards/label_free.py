"""Label-free rewards beyond self-certainty: no gold answer, only the model's own outputs.

Answer-level (the G completions of one prompt are compared with each other):
- `majority_vote` (TTRL, arXiv 2504.16084): r_i = 1[answer_i ≡ the group's majority answer].
- `answer_agreement` (soft form, EMPO's semantic clusters, arXiv 2504.05812):
  r_i = |{j in group : answer_j ≡ answer_i}| / G.

Token-level (from the same no-grad scoring pass as self-certainty, `Scores`):
- `token_entropy` (RENT, arXiv 2505.22660): r = −(1/|o|) Σ_t H(p_t), H at the
  sampling temperature τ; `answer_only` averages over the final answer's tokens.
- `trajectory_logprob`: r = (1/|o|) Σ_t log π(o_t), the current policy's mean
  token log-prob of its own completion (at τ, the distribution it was sampled from).

Equivalence "≡" is `answers_match` (normalised string, numbers, then math-verify),
under the step's answer-check budget (`math_answer.answer_check_budget`).
Answers are clustered greedily per group: each answer joins the first cluster
whose representative (its first member) matches it, else opens a new one. A
completion with no extracted answer belongs to no cluster: reward 0, and it still
counts in G. Majority ties are broken by first occurrence in the group: among the
largest clusters, the one whose first member comes first wins. A group where no
completion has an answer gets all zeros.
"""

from __future__ import annotations

import torch

from ..ops import sequence_mean
from .base import RewardSource, Scores
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


def _groups(completions: list[str], group_size: int) -> list[tuple[int | None, ...]]:
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


class MajorityVoteReward(RewardSource):
    """TTRL: r_i = 1 if completion i's answer is equivalent to its group's majority answer."""

    name = "majority_vote"

    def __init__(self, group_size: int):
        self.group_size = group_size

    def __call__(self, completions, extras, scores, rollout=None) -> torch.Tensor:
        out = []
        for ids in _groups(completions, self.group_size):
            top = majority_cluster(ids)
            out.extend(float(top is not None and k == top) for k in ids)
        return torch.tensor(out, dtype=torch.float32)


class AnswerAgreementReward(RewardSource):
    """Soft majority: r_i = share of the group whose answer is equivalent to i's (0 without an answer)."""

    name = "answer_agreement"

    def __init__(self, group_size: int):
        self.group_size = group_size

    def __call__(self, completions, extras, scores, rollout=None) -> torch.Tensor:
        out = []
        for ids in _groups(completions, self.group_size):
            out.extend(0.0 if k is None else sum(j == k for j in ids) / len(ids) for k in ids)
        return torch.tensor(out, dtype=torch.float32)


def answer_token_mask(tokenizer, completion_ids: torch.Tensor, completion_mask: torch.Tensor,
                      completions: list[str]) -> torch.Tensor:
    """[N, T] bool: the real tokens whose text overlaps the final answer (`extract_answer`,
    its last occurrence in the completion). Rows without an answer, or whose answer text
    cannot be located, keep all their real tokens.

    Token t's characters are [len(decode(ids[:t])), len(decode(ids[:t+1]))).
    """
    mask = completion_mask.bool()
    out = mask.clone()
    for i, text in enumerate(completions):
        answer = extract_answer(text)
        start = -1 if answer is None else text.rfind(answer)
        if start < 0:
            continue
        end = start + len(answer)
        positions = mask[i].nonzero().squeeze(1).tolist()
        ids = completion_ids[i, positions].tolist()
        ends = [len(tokenizer.decode(ids[:t + 1], skip_special_tokens=True)) for t in range(len(ids))]
        begins = [0] + ends[:-1]
        hits = [p for p, b, e in zip(positions, begins, ends) if b < end and e > start]
        if hits:
            out[i] = False
            out[i, hits] = True
    return out


class TokenEntropyReward(RewardSource):
    """RENT: r = −(1/|o|) Σ_t H(p_t) (entropy at the sampling temperature); higher = more confident."""

    name = "token_entropy"
    needs_entropy = True

    def __init__(self, answer_only: bool = False, tokenizer=None):
        if answer_only and tokenizer is None:
            raise ValueError("token_entropy with answer_only needs the tokenizer")
        self.answer_only, self.tokenizer = answer_only, tokenizer

    def __call__(self, completions, extras, scores: Scores, rollout=None) -> torch.Tensor:
        if scores.token_entropy is None:
            raise RuntimeError("token_entropy needs the scoring pass's per-token entropy (Scores.token_entropy)")
        mask = scores.mask()
        if self.answer_only:
            if rollout is None:
                raise RuntimeError("token_entropy with answer_only needs the rollout's token ids")
            mask = answer_token_mask(self.tokenizer, rollout.completion_ids, mask, completions)
        return -sequence_mean(scores.token_entropy.float(), mask)


class TrajectoryLogprobReward(RewardSource):
    """r = (1/|o|) Σ_t log π(o_t): the policy's mean token log-prob of its own completion."""

    name = "trajectory_logprob"

    def __call__(self, completions, extras, scores: Scores, rollout=None) -> torch.Tensor:
        return sequence_mean(scores.old_logprobs.float(), scores.mask())
