"""selftaught.advantages against loops over Python lists (statistics.stdev is the unbiased std)."""

import math
import statistics

import pytest
import torch

from selftaught.advantages import combine_advantages, group_advantages, task_relative_advantages
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
def test_task_relative_advantages_match_loop(scale):
    g = torch.Generator().manual_seed(0)
    kinds = [(t, r) for t in TASK_TYPES for r in ("propose", "solve")]
    keys = [kinds[int(i)] for i in torch.randint(0, 6, (40,), generator=g)]  # interleaved
    keys.append(("induction", "rare"))  # a singleton
    rewards = torch.randn(len(keys), generator=g, dtype=torch.float64)
    got = task_relative_advantages(rewards, keys, scale=scale)
    torch.testing.assert_close(got, ref_keyed(rewards, keys, scale, 1e-4))
    assert got[-1] == 0.0


def test_keyed_equals_group_advantages_on_contiguous_groups():
    r = torch.randn(12)
    keys = [i // 4 for i in range(12)]
    torch.testing.assert_close(task_relative_advantages(r, keys), group_advantages(r, 4))


def test_keyed_errors():
    with pytest.raises(ValueError):
        task_relative_advantages(torch.zeros(3), ["a", "b"])


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


# ----------------------------------------------------------- several sources: multi_objective_aggregation


def _stats(values):
    """(mean, unbiased std) of a list of floats; std None below two values."""
    mean = sum(values) / len(values)
    std = statistics.stdev(values) if len(values) > 1 else None
    return mean, std


def ref_multi_objective(rewards: dict, weights: dict, G: int, scale: str, eps: float, aggregation: str):
    """The three aggregations by loops over rows, groups and sources (NaN = no reward)."""
    trained = {s: w for s, w in weights.items() if w != 0}
    n = len(next(iter(rewards.values())))
    rows = [{s: float(rewards[s][i]) for s in trained} for i in range(n)]
    scored = [any(not math.isnan(v) for v in row.values()) for row in rows]

    def normalise(values, valid, scale_by):  # one group's (or the batch's) centred, scaled values
        kept = [v for v, ok in zip(values, valid) if ok]
        if len(kept) < 2:
            return [0.0] * len(values)
        mean, std = _stats(kept)
        div = {"group": std + eps, "none": 1.0}.get(scale_by, scale_by)
        return [(v - mean) / div if ok else 0.0 for v, ok in zip(values, valid)]

    if aggregation == "per_source":
        out = [0.0] * n
        all_values = {s: [row[s] for row in rows] for s in trained}
        for s, w in trained.items():
            values = all_values[s]
            batch_std = _stats([v for v in values if not math.isnan(v)])[1]
            for g in range(0, n, G):
                group = values[g:g + G]
                scale_by = batch_std + eps if scale == "batch" else scale
                for k, a in enumerate(normalise(group, [not math.isnan(v) for v in group], scale_by)):
                    out[g + k] += w * a
        return out
    if aggregation == "sum_then_normalize":
        total = [sum(w * row[s] for s, w in trained.items() if not math.isnan(row[s])) for row in rows]
        batch_std = _stats([t for t, ok in zip(total, scored) if ok])[1]
        out = []
        for g in range(0, n, G):
            scale_by = batch_std + eps if scale == "batch" else scale
            out += normalise(total[g:g + G], scored[g:g + G], scale_by)
        return out
    z = {}  # normalize_then_sum: z-score each source in its group, sum, then over the batch
    for s in trained:
        z[s] = []
        for g in range(0, n, G):
            group = [row[s] for row in rows[g:g + G]]
            valid = [not math.isnan(v) for v in group]
            kept = [v for v, ok in zip(group, valid) if ok]
            if len(kept) < 2:
                z[s] += [0.0] * len(group)
                continue
            mean, std = _stats(kept)
            z[s] += [(v - mean) / (std + eps) if ok else 0.0 for v, ok in zip(group, valid)]
    total = [sum(w * z[s][i] for s, w in trained.items()) for i in range(n)]
    return normalise(total, scored, "group")


@pytest.mark.parametrize("aggregation", ["per_source", "sum_then_normalize", "normalize_then_sum"])
@pytest.mark.parametrize("scale", ["group", "batch", "none"])
def test_multi_objective_aggregation_matches_loops(aggregation, scale):
    if aggregation == "normalize_then_sum" and scale != "group":
        return  # the config refuses it (scale_rewards would be ignored)
    G = 4
    g = torch.Generator().manual_seed(11)
    rewards = {"a": torch.randn(4 * G, generator=g, dtype=torch.float64),
               "b": (torch.rand(4 * G, generator=g) > 0.5).double() * 3,
               "logged": torch.randn(4 * G, generator=g, dtype=torch.float64)}
    rewards["a"][1] = float("nan")  # one row without reward a
    rewards["a"][8:12] = float("nan")  # a group without reward a at all
    rewards["b"][9] = float("nan")  # ... and a row there without either: no reward, A = 0
    rewards["b"][4:8] = 1.0  # a group where b agrees
    weights = {"a": 1.0, "b": 0.5, "logged": 0.0}
    got = combine_advantages(rewards, weights, G, scale, 1e-4, aggregation)
    want = torch.tensor(ref_multi_objective(rewards, weights, G, scale, 1e-4, aggregation), dtype=torch.float64)
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-6)
    assert got[9] == 0
    with pytest.raises(ValueError, match="multi_objective_aggregation"):
        combine_advantages(rewards, weights, G, scale, 1e-4, "gdpo")


def test_aggregations_differ_where_they_should():
    """One source: per_source keeps its weight (w · z); sum_then_normalize z-scores w · r, where the weight
    cancels (up to ε); normalize_then_sum adds the batch normalisation (mean 0, std 1)."""
    g = torch.Generator().manual_seed(12)
    one = {"a": torch.randn(12, generator=g)}
    per_source = combine_advantages(one, {"a": 2.0}, 4, "group", 1e-4, "per_source")
    summed = combine_advantages(one, {"a": 2.0}, 4, "group", 1e-4, "sum_then_normalize")
    gdpo = combine_advantages(one, {"a": 2.0}, 4, "group", 1e-4, "normalize_then_sum")
    torch.testing.assert_close(per_source, 2.0 * summed, rtol=1e-3, atol=1e-4)
    assert abs(float(gdpo.std()) - 1.0) < 1e-3 and abs(float(gdpo.mean())) < 1e-6
