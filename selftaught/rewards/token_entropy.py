"""`token_entropy` (RENT, arXiv 2505.22660): r = −(1/|o|) Σ_t H(p_t), H at the sampling
temperature τ, from the same no-grad scoring pass as self-certainty (`Scores.token_entropy`).

`answer_only` averages over the final answer's tokens (`answer_token_mask`) instead of
the whole completion.
"""

from __future__ import annotations

import torch

from ..ops import sequence_mean
from .base import RewardSource, Scores, SourceSpec
from .math_answer import extract_answer


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
    needs_token_entropy = True
    accepts_answer_only = True

    def __init__(self, answer_only: bool = False, tokenizer=None):
        if answer_only and tokenizer is None:
            raise ValueError("token_entropy with answer_only needs the tokenizer")
        self.answer_only, self.tokenizer = answer_only, tokenizer

    @classmethod
    def from_spec(cls, spec: SourceSpec) -> RewardSource:
        return cls(spec.answer_only, spec.tokenizer)

    def __call__(self, completions, extras, scores: Scores, rollout=None) -> torch.Tensor:
        if scores.token_entropy is None:
            raise RuntimeError("token_entropy needs the scoring pass's per-token entropy (Scores.token_entropy)")
        mask = scores.mask()
        if self.answer_only:
            if rollout is None:
                raise RuntimeError("token_entropy with answer_only needs the rollout's token ids")
            mask = answer_token_mask(self.tokenizer, rollout.completion_ids, mask, completions)
        return -sequence_mean(scores.token_entropy.float(), mask)
