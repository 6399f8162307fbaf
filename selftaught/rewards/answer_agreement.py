"""`answer_agreement` (the soft majority, EMPO's semantic clusters, arXiv 2504.05812):
r_i = |{j in group : answer_j ≡ answer_i}| / G.

No gold answer: a completion is rewarded by the share of its group that agrees with it;
one with no extracted answer gets 0 and still counts in G (`answer_clusters` defines ≡).
"""

from __future__ import annotations

import torch

from .answer_clusters import GroupVote, answer_groups


class AnswerAgreementReward(GroupVote):
    """Soft majority: r_i = share of the group whose answer is equivalent to i's (0 without an answer)."""

    name = "answer_agreement"

    def __call__(self, completions, extras, scores, rollout=None) -> torch.Tensor:
        out = []
        for ids in answer_groups(completions, self.group_size):
            out.extend(0.0 if k is None else sum(j == k for j in ids) / len(ids) for k in ids)
        return torch.tensor(out, dtype=torch.float32)
