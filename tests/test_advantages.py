"""selftaught.advantages against loops over Python lists (statistics.stdev is the unbiased std)."""

import statistics

import pytest
import torch

from selftaught.advantages import combine_advantages, group_advantages, keyed_advantages
from selftaught.azr.tasks import TASK_TYPES


def ref_group_advantages(rewards, G, scale, eps):
    r = [float(x) for x in rewards]
    batch_std = statistics.stdev(r)
    out = []
    for start in range(0, len(r), G):
        group = r[start : start + G]
        mu = sum(group) / G
        for x in group:
            if scale == "group":
                out.append((x - mu) / (statistics.stdev(group) + eps))
            elif scale == "batch":
                out.append((x - mu) / (batch_std + eps))
            else:
                out.append(x - mu)
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("scale", ["group", "batch", "none"])
@pytest.mark.parametrize("G", [2, 3, 7])
def test_group_advantages_match_loop(scale, G):
    g = torch.Generator().manual_seed(G)
    rewards = torch.randn(4 * G, generator=g, dtype=torch.float64)
    rewards[:G] = 0.5  # a group with equal rewards
    got = group_advantages(rewards, G, scale_rewards=scale, eps=1e-4)
    want = ref_group_advantages(rewards, G, scale, 1e-4)
    torch.testing.assert_close(got, want)
    assert torch.all(got[:G] == 0)  # no signal from a group that agrees


def test_group_advantages_values_by_hand():
    # group (1, 0): mean 0.5, unbiased std sqrt(0.5)
    got = group_advantages(torch.tensor([1.0, 0.0, 3.0, 3.0]), 2, eps=0.0)
    s = 0.5**0.5
    torch.testing.assert_close(got, torch.tensor([0.5 / s, -0.5 / s, 0.0, 0.0]))
    dr = group_advantages(torch.tensor([1.0, 0.0, 3.0, 3.0]), 2, scale_rewards="none")
    torch.testing.assert_close(dr, torch.tensor([0.5, -0.5, 0.0, 0.0]))


def test_group_advantages_sum_to_zero_per_group_and_int_rewards():
    rewards = torch.tensor([1, 0, 0, 1, 1, 1, 0, 0, 0])
    a = group_advantages(rewards, 3)
    assert a.dtype == torch.float32
    assert torch.allclose(a.view(3, 3).sum(dim=1), torch.zeros(3), atol=1e-6)


def test_group_advantages_errors():
    with pytest.raises(ValueError, match="multiple"):
        group_advantages(torch.zeros(5), 2)
    with pytest.raises(ValueError, match="group_size"):
        group_advantages(torch.zeros(4), 1)
    with pytest.raises(ValueError, match="scale_rewards"):
        group_advantages(torch.zeros(4), 2, scale_rewards="std")


def test_group_advantages_accepts_trl_booleans():
    r = torch.randn(6)
    torch.testing.assert_close(group_advantages(r, 3, True), group_advantages(r, 3, "group"))
    torch.testing.assert_close(group_advantages(r, 3, False), group_advantages(r, 3, "none"))


# ---------------------------------------------------------------- keyed (TRR++)


def ref_keyed(rewards, keys, scale, eps):
    out = []
    for i, k in enumerate(keys):
        group = [float(rewards[j]) for j in range(len(keys)) if keys[j] == k]
        if len(group) < 2:
            out.append(0.0)
            continue
        a = float(rewards[i]) - sum(group) / len(group)
        out.append(a / (statistics.stdev(group) + eps) if scale else a)
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("scale", [True, False])
def test_keyed_advantages_match_loop(scale):
    g = torch.Generator().manual_seed(0)
    kinds = [(t, r) for t in TASK_TYPES for r in ("propose", "solve")]
    keys = [kinds[int(i)] for i in torch.randint(0, 6, (40,), generator=g)]  # interleaved
    keys.append(("induction", "rare"))  # a singleton
    rewards = torch.randn(len(keys), generator=g, dtype=torch.float64)
    got = keyed_advantages(rewards, keys, scale=scale)
    torch.testing.assert_close(got, ref_keyed(rewards, keys, scale, 1e-4))
    assert got[-1] == 0.0


def test_keyed_equals_group_advantages_on_contiguous_groups():
    r = torch.randn(12)
    keys = [i // 4 for i in range(12)]
    torch.testing.assert_close(keyed_advantages(r, keys), group_advantages(r, 4))


def test_keyed_errors():
    with pytest.raises(ValueError):
        keyed_advantages(torch.zeros(3), ["a", "b"])


# ---------------------------------------------------------------- combined sources


def test_combine_advantages_weighted_sum_of_separately_normalised():
    g = torch.Generator().manual_seed(1)
    sc = torch.randn(8, generator=g) * 5  # self-certainty: a different scale ...
    acc = torch.randint(0, 2, (8,), generator=g).float()  # ... from a 0/1 accuracy
    fmt = torch.randn(8, generator=g)
    got = combine_advantages({"sc": sc, "acc": acc, "fmt": fmt}, {"sc": 1.0, "acc": 0.5, "fmt": 0.0}, group_size=4)
    want = group_advantages(sc, 4) + 0.5 * group_advantages(acc, 4)
    torch.testing.assert_close(got, want)
    # A source with no weight entry is logged only, like weight 0.
    only = combine_advantages({"sc": sc, "fmt": fmt}, {"sc": 1.0}, group_size=4)
    torch.testing.assert_close(only, group_advantages(sc, 4))
    none = combine_advantages({"sc": sc, "fmt": fmt}, {"sc": 0.0}, group_size=4, scale_rewards="none")
    assert torch.all(none == 0)


def test_combine_advantages_errors():
    r = torch.zeros(4)
    with pytest.raises(ValueError, match="not computed"):
        combine_advantages({"a": r}, {"a": 1.0, "b": 1.0}, group_size=2)
    with pytest.raises(ValueError, match="different lengths"):
        combine_advantages({"a": r, "b": torch.zeros(6)}, {"a": 1.0}, group_size=2)
    with pytest.raises(ValueError, match="empty"):
        combine_advantages({}, {}, group_size=2)
    with pytest.raises(ValueError, match="multiple"):
        combine_advantages({"a": torch.zeros(5)}, {"a": 1.0}, group_size=2)
