"""Rollout.rows: a slice of a rollout, every per-row field sliced alike."""

import torch

from selftaught.rollout import Rollout


def test_rows_slices_every_per_row_field():
    n = 5
    ids = torch.arange(n * 3).view(n, 3)
    rollout = Rollout(ids, ids > 2, ids + 100, ids > 5, [f"p{i}" for i in range(n)], [f"c{i}" for i in range(n)],
                      extras={"answer": list("abcde")}, sampler_logprobs=ids.float())
    part = rollout.rows(slice(2, 4))
    assert len(part) == 2 and part.prompts == ["p2", "p3"] and part.completions == ["c2", "c3"]
    assert part.extras == {"answer": ["c", "d"]}
    for name in ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask", "sampler_logprobs"):
        assert torch.equal(getattr(part, name), getattr(rollout, name)[2:4]), name
