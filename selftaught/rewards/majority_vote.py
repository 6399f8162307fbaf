"""`majority_vote` (TTRL, arXiv 2504.16084): r_i = 1[answer_i ≡ the group's majority answer].

No gold answer: the G completions of one prompt vote. A completion with no extracted
answer gets 0 and still counts in G; a group where no completion has an answer gets
all zeros (`answer_clusters` defines ≡ and the tie-break).
"""

from __future__ import annotations

import torch

from .answer_clusters import GroupVote, answer_groups, majority_cluster


class MajorityVoteReward(GroupVote):
    """TTRL: r_i = 1 if completion i's answer is equivalent to its group's majority answer."""

    name = "majority_vote"

    def __call__(self, completions, extras, scores, rollout=None) -> torch.Tensor:
        out = []
        for ids in answer_groups(completions, self.group_size):
            top = majority_cluster(ids)
            out.extend(float(top is not None and k == top) for k in ids)
        return torch.tensor(out, dtype=torch.float32)
