"""pass@k: the stable product form against the closed form 1 - C(n-c,k)/C(n,k)."""

import itertools
from math import comb

import pytest

from selftaught.evaluate.passk import mean_pass_at_k, pass_at_k, report_ks


def closed_form(n, c, k):
    return 1 - comb(n - c, k) / comb(n, k)


@pytest.mark.parametrize("n,c,k", [(1, 0, 1), (1, 1, 1), (5, 2, 1), (5, 2, 2), (5, 2, 4), (5, 2, 5),
                                   (10, 3, 5), (20, 1, 10), (20, 19, 2), (200, 13, 100), (100, 0, 50)])
def test_matches_closed_form(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(closed_form(n, c, k), abs=1e-12)


def test_matches_closed_form_everywhere_small():
    for n in range(1, 13):
        for c, k in itertools.product(range(n + 1), range(1, n + 1)):
            assert pass_at_k(n, c, k) == pytest.approx(closed_form(n, c, k), abs=1e-12)


def test_hand_made_cases():
    assert pass_at_k(10, 0, 1) == 0.0
    assert pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(10, 4, 1) == pytest.approx(0.4)          # pass@1 is the fraction correct
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5)           # 3 of the 6 pairs contain the good one
    assert pass_at_k(3, 1, 3) == 1.0                          # all samples drawn
    assert pass_at_k(5, 4, 2) == 1.0                          # n - c < k: every draw has a good one


def test_exact_enumeration():
    """pass@k is the fraction of k-subsets holding at least one correct sample."""
    outcomes = [True, False, False, True, False, False, False]
    n, c = len(outcomes), sum(outcomes)
    for k in range(1, n + 1):
        subsets = list(itertools.combinations(outcomes, k))
        assert pass_at_k(n, c, k) == pytest.approx(sum(any(s) for s in subsets) / len(subsets))


def test_large_n_is_stable():
    # C(2000, 1000) overflows a float; the product form does not.
    value = pass_at_k(2000, 3, 1000)
    assert 0.87 < value < 0.88  # ≈ 1 - (1/2)^3
    assert 0.0 <= pass_at_k(10_000, 1, 1) <= 1.0


def test_mean_and_bad_arguments():
    assert mean_pass_at_k([(4, 1), (4, 0)], 1) == pytest.approx(0.125)
    assert mean_pass_at_k([], 1) == 0.0
    for bad in [(3, 4, 1), (3, -1, 1), (3, 1, 0), (3, 1, 4)]:
        with pytest.raises(ValueError):
            pass_at_k(*bad)


def test_report_ks():
    assert report_ks(1) == [1]
    assert report_ks(8) == [1, 2, 5, 8]
    assert report_ks(10) == [1, 2, 5, 10]
