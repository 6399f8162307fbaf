"""selftaught.rewards.entropy: hand cases, a brute-force loop, the exact bias, and a seeded simulation."""

import itertools
import math
import random

import pytest

from selftaught.rewards.entropy import harmonic_entropy, harmonic_number, plugin_entropy


def test_harmonic_number():
    assert harmonic_number(0) == 0.0
    assert harmonic_number(1) == 1.0
    assert harmonic_number(4) == pytest.approx(1 + 1 / 2 + 1 / 3 + 1 / 4)
    # J(m) ≈ log m + γ + 1/(2m)
    assert harmonic_number(1000) == pytest.approx(math.log(1000) + 0.5772156649 + 1 / 2000, abs=1e-6)
    with pytest.raises(ValueError):
        harmonic_number(-1)


def ref_harmonic_entropy(samples):
    """Loop over samples: for each, count the *other* samples equal to it."""
    n = len(samples)
    if n == 0:
        return 0.0
    J = lambda m: sum(1.0 / k for k in range(1, m + 1))  # noqa: E731
    total = 0.0
    for i, s in enumerate(samples):
        others_equal = sum(1 for j, t in enumerate(samples) if j != i and t == s)
        total += J(others_equal)
    return J(n - 1) - total / n


def test_hand_cases():
    assert harmonic_entropy([]) == 0.0
    assert harmonic_entropy(["7"]) == 0.0
    assert harmonic_entropy(["7"] * 8) == 0.0  # collapse: all answers equal
    # all distinct: J(n−1), above the plug-in log n
    assert harmonic_entropy(list("abcd")) == pytest.approx(1 + 1 / 2 + 1 / 3)
    assert harmonic_entropy(list("abcdefgh")) > math.log(8)
    # a, a, b: J(2) − (2·J(1) + J(0))/3
    assert harmonic_entropy(["a", "a", "b"]) == pytest.approx(1.5 - 2 / 3)
    # None ("no answer") is a category like any other
    assert harmonic_entropy([None, None, "1"]) == harmonic_entropy(["x", "x", "1"])
    assert harmonic_entropy([None] * 5) == 0.0


def test_matches_bruteforce_loop():
    rng = random.Random(0)
    for _ in range(200):
        n = rng.randint(1, 12)
        samples = [rng.choice([None, "1", "2", "3", (4, 5)]) for _ in range(n)]
        assert harmonic_entropy(samples) == pytest.approx(ref_harmonic_entropy(samples), abs=1e-12)
        assert harmonic_entropy(samples) >= 0.0


def test_plugin_entropy():
    assert plugin_entropy([]) == 0.0
    assert plugin_entropy(["a"] * 5) == 0.0
    assert plugin_entropy(["a", "b"] * 3) == pytest.approx(math.log(2))
    assert plugin_entropy(list("abcdefgh")) == pytest.approx(math.log(8))


def test_exact_bias_by_enumerating_all_samples():
    # E[Ĥ] − H = −Σ_x p_x Σ_{j≥n} (1−p_x)^j / j, computed over all 3^n sequences.
    p = [0.6, 0.3, 0.1]
    n = 7
    expected_estimate = 0.0
    for seq in itertools.product(range(3), repeat=n):
        prob = math.prod(p[x] for x in seq)
        expected_estimate += prob * harmonic_entropy(seq)
    H = -sum(q * math.log(q) for q in p)
    bias = -sum(q * sum((1 - q) ** j / j for j in range(n, 2000)) for q in p)
    assert expected_estimate - H == pytest.approx(bias, abs=1e-9)


def test_less_biased_than_plugin_at_n8():
    p = [0.4, 0.2, 0.15, 0.1, 0.05, 0.05, 0.03, 0.02]
    H = -sum(q * math.log(q) for q in p)
    rng = random.Random(1234)
    draws = [rng.choices(range(len(p)), weights=p, k=8) for _ in range(2000)]
    err_harmonic = sum(harmonic_entropy(s) for s in draws) / len(draws) - H
    err_plugin = sum(plugin_entropy(s) for s in draws) / len(draws) - H
    assert abs(err_harmonic) < abs(err_plugin)
    assert abs(err_harmonic) < 0.6 * abs(err_plugin)  # by a clear margin (≈ −0.21 vs −0.43)
