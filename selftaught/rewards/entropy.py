"""Entropy of a sample of discrete outcomes (e.g. the G final answers of a group).

Harmonic-number estimator (Mesner 2025, docs/reference.md §4). With n samples and
harmonic numbers J(m) = Σ_{k≤m} 1/k (J(0) = 0):

    Ĥ = J(n−1) − (1/n) Σ_{samples s} J(k_s),   k_s = m(x_s) − 1

where k_s is how many *other* samples equal x_s. Why this is nearly unbiased:
k_s ~ Binomial(n−1, p(x_s)), and for K ~ Binomial(N, p)

    J(N) − E[J(K)] = Σ_{j=1}^{N} (1−p)^j / j  →  −log p  as N grows,

so E[Ĥ] − H = −E_x[Σ_{j≥n} (1−p_x)^j / j], a bias that decays like (1−p)^n.

Counting convention (docs/reference.md §4.1): k_s excludes s itself. The form that
counts it, J(n) − (1/n) Σ J(m(x_s)), is lower than this one
by exactly (D − 1)/n (D = distinct values in the sample), and *more* biased than the
plug-in estimator (n = 8, p = (0.4, 0.2, 0.15, 0.1, 0.05, 0.05, 0.03, 0.02): bias
−0.601 vs plug-in −0.431 nats; this form: −0.207). The paper's identity needs the
binomial count of the other samples, which is what we use; tests check the bias
formula exactly (tests/rewards/test_entropy.py) and the page's figures (tests/test_reference_doc.py).

Both estimators are in nats. Used as a collapse diagnostic (answer diversity
drifting to 0) and as an optional agreement reward.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence
from functools import lru_cache


@lru_cache(maxsize=4096)
def harmonic_number(m: int) -> float:
    """J(m) = 1 + 1/2 + ... + 1/m, with J(0) = 0."""
    if m < 0:
        raise ValueError(f"harmonic_number needs m >= 0, got {m}")
    return math.fsum(1.0 / k for k in range(1, m + 1))


def harmonic_entropy(samples: Sequence[Hashable]) -> float:
    """Harmonic-number entropy estimate Ĥ (nats) of `samples`; empty -> 0.0.

    Samples are compared by equality; None ("no answer") is one category.
    All equal -> 0; all n distinct -> J(n−1) (plug-in gives log n, less).
    """
    n = len(samples)
    if n == 0:
        return 0.0
    counts = Counter(samples)
    # Σ over samples of J(k_s) = Σ over categories x of m(x) · J(m(x) − 1).
    h = harmonic_number(n - 1) - sum(m * harmonic_number(m - 1) for m in counts.values()) / n
    return max(h, 0.0)  # J(m−1) <= J(n−1), so h >= 0 up to rounding


def plugin_entropy(samples: Sequence[Hashable]) -> float:
    """Plug-in (maximum-likelihood) entropy −Σ_x (m/n) log(m/n) in nats; empty -> 0.0."""
    n = len(samples)
    if n == 0:
        return 0.0
    return -sum((m / n) * math.log(m / n) for m in Counter(samples).values())
