"""pass@k with the unbiased estimator of Chen et al. (2021, the Codex paper).

For one problem with n samples of which c are correct,

    pass@k = 1 - C(n-c, k) / C(n, k)

the probability that at least one of k samples drawn without replacement from the
n is correct. The binomials overflow floats long before n gets interesting, so it
is computed as the product 1 - Π_{i=n-c+1}^{n} (1 - k/i), which is the same ratio
with every factor in [0, 1]. A benchmark's pass@k is the mean over its problems.
"""

from __future__ import annotations

from typing import Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem: n samples, c of them correct, k ≤ n."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
    if n - c < k:  # every draw of k contains a correct sample
        return 1.0
    product = 1.0
    for i in range(n - c + 1, n + 1):
        product *= 1.0 - k / i
    return 1.0 - product


def mean_pass_at_k(counts: Sequence[tuple[int, int]], k: int) -> float:
    """Mean pass@k over problems given as (n, c) pairs."""
    if not counts:
        return 0.0
    return sum(pass_at_k(n, c, k) for n, c in counts) / len(counts)


def report_ks(n: int) -> list[int]:
    """The k reported for n samples per problem: the usual 1, 2, 5, 10, 20, 50, 100 up to n, and n."""
    ks = [k for k in (1, 2, 5, 10, 20, 50, 100) if k <= n]
    return sorted(set(ks + [n]))
