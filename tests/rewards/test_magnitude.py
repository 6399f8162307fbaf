"""magnitude: the size bounds hold against exact evaluation, and the classes that explode are refused.

The reference is brute force: random expression trees over small integers, evaluated exactly
with Fraction / math.comb / math.factorial, tracking the largest numerator and denominator of
every intermediate value. With the digit limit lowered so that random trees cross it often, the
estimator must refuse every tree whose exact evaluation builds a number over the limit (no
false negative), and its bound on the whole value must be at least the true height.
"""

import math
import random
from fractions import Fraction

import pytest

from selftaught.rewards import magnitude
from selftaught.rewards.magnitude import explosion, weight

LIMIT = 40  # digits, for the random trees


def height(value: Fraction) -> tuple[float, float]:
    """(log10 |numerator|, log10 denominator), 0 for 0 and 1."""
    return (math.log10(abs(value.numerator)) if value.numerator else 0.0, math.log10(value.denominator))


class Tree:
    """A random expression: its LaTeX, its exact value and the largest height of any intermediate value."""

    def __init__(self, latex: str, value: Fraction, largest: float):
        self.latex, self.value, self.largest = latex, value, largest


def leaf(rng) -> Tree:
    n = rng.choice([rng.randint(0, 9), rng.randint(10, 999), rng.randint(10 ** 5, 10 ** 9)])
    return Tree(str(n), Fraction(n), math.log10(n) if n else 0.0)


def wrap(tree: Tree) -> str:
    return tree.latex if tree.latex.isdigit() else rf"\left({tree.latex}\right)"


def grow(rng, depth: int) -> Tree:
    if depth == 0 or rng.random() < 0.25:
        return leaf(rng)
    op = rng.choice(["+", "-", "*", "/", "frac", "^", "!", "binom", "neg"])
    a = grow(rng, depth - 1)
    if op in ("!", "binom") and not (a.value.denominator == 1 and 0 <= a.value <= 400):
        return a  # exact evaluation of these needs a small non-negative integer
    if op == "!":
        value = Fraction(math.factorial(int(a.value)))
        return Tree(rf"{wrap(a)}!", value, max(a.largest, *height(value)))
    if op == "neg":
        return Tree(rf"-{wrap(a)}", -a.value, a.largest)
    if op == "^":
        e = rng.randint(-12, 30)
        if a.value == 0 and e < 0:
            return a
        value = a.value ** e
        return Tree(rf"{wrap(a)}^{{{e}}}", value, max(a.largest, *height(value)))
    b = grow(rng, depth - 1)
    if op == "binom":
        if not (b.value.denominator == 1 and 0 <= b.value):
            return a
        value = Fraction(math.comb(int(a.value), int(b.value)))
        latex = rf"\binom{{{a.latex}}}{{{b.latex}}}"
    elif op in ("/", "frac"):
        if b.value == 0:
            return a
        value = a.value / b.value
        latex = rf"\frac{{{a.latex}}}{{{b.latex}}}" if op == "frac" else rf"{wrap(a)} / {wrap(b)}"
    else:
        value = {"+": a.value + b.value, "-": a.value - b.value, "*": a.value * b.value}[op]
        latex = f"{wrap(a)} {op if op != '*' else chr(92) + 'cdot'} {wrap(b)}"
    return Tree(latex, value, max(a.largest, b.largest, *height(value)))


def test_every_tree_that_builds_a_number_over_the_limit_is_refused_and_the_bound_holds(monkeypatch):
    monkeypatch.setattr(magnitude, "MAX_DIGITS", LIMIT)
    rng = random.Random(0)
    over = under = 0
    for _ in range(3000):
        tree = grow(rng, 4)
        reason = explosion(tree.latex)
        if tree.largest > LIMIT:
            over += 1
            assert reason is not None, f"{tree.latex} builds a {tree.largest:.0f}-digit number"
        else:
            under += 1
            if reason is None:
                size = magnitude._read(tree.latex)
                num, den = height(tree.value)
                assert size.num >= num - 1e-9 and size.den >= den - 1e-9, (tree.latex, size, num, den)
    assert over > 300 and under > 300  # both sides of the limit were exercised


def test_the_bound_on_a_binomial_is_close_to_its_true_size():
    for n, k in [(1000, 500), (10 ** 6, 3), (30000, 15000), (10 ** 8, 10 ** 8 - 2), (97, 13)]:
        true = math.log10(math.comb(n, k))
        estimate = magnitude._read(rf"\binom{{{n}}}{{{k}}}").num
        assert true <= estimate <= 1.25 * true + 10, (n, k, true, estimate)


@pytest.mark.parametrize("answer", [
    r"\binom{2000000}{1000000}", r"\dbinom{10^{7}}{10^{6}}", r"{100000000 \choose 50000000}",
    r"\binom{3\cdot 10^{9}}{10^{9}}", r"x + \tbinom{99999999}{49999999}", r"\frac{\binom{10^{6}}{5\cdot10^{5}}}{3}",
    r"\sqrt{\binom{10^{8}}{10^{7}}}", r"\Gamma(100001)", r"\left(4\times 10^{6}\right)!", r"9^{99999}",
    r"\left(\frac{7}{3}\right)^{40000}", r"0.5^{40000}", r"\prod_{k=1}^{100000} k", r"\sum_{k=1}^{10^{6}} k^{k}",
    r"\prod_{n=1}^{2000} n^{n}", r"\begin{pmatrix}1&1\\1&0\end{pmatrix}^{100000}", r"\binom{n}{10^{6}}",
    r"(a+b+c+d+e+f+g)^{60}", r"(x+y+z)^{60}", r"\operatorname{lcm}(" + ",".join(["999999937"] * 1200) + ")",
])
def test_explosive_classes_are_refused(answer):
    assert explosion(answer) is not None


@pytest.mark.parametrize("answer", [
    "42", r"\frac{1}{2}", r"2^{10}", "10!", "1000!", r"7^{1000}", r"999^{999}", "(x+1)^{2}", r"(x+1)^{99}",
    r"e^{-x^{2}}", r"x^{y^{z}}", r"\sqrt{2}", "x^2 + y^2", r"\{1,2\}", r"(1, 2]", r"\binom{10}{3}",
    r"\binom{30000}{15000}", r"\binom{100000000}{99999998}", r"\left(\frac{1}{2}\right)^{3}", r"\sum_{k=1}^{10} k",
    r"\sum_{k=1}^{\infty} \frac{1}{k^{2}}", r"\sum_{n=1}^{100} n^{100}", "2**10", "3.14", r"1.5 \times 10^{20}",
    r"x = 3", r"\text{(B)}", r"|x-1|^{3}", r"\begin{pmatrix}1&1\\1&0\end{pmatrix}^{99}", r"\int_0^1 x^{2}\,dx",
    r"\lim_{x\to 0}\frac{\sin x}{x}", r"\frac{999!}{998!}", r"10^{999}+10^{998}", r"2^{-10}", r"\binom{n}{3}",
])
def test_ordinary_answers_are_not_refused(answer):
    assert explosion(answer) is None


@pytest.mark.parametrize("junk", ["", "}{", r"\frac{", r"\binom{3}", "^^^", r"\sum_{", "(((", r"\begin{pmatrix}",
                                  "|" * 50, "-" * 500 + "1", r"\left(" * 30, "!!!", "$$", "\\", "x_"])
def test_unreadable_text_is_never_refused_and_never_raises(junk):
    assert explosion(junk) is None
    weight(junk)


def test_weight_orders_ordinary_answers_before_expansions_and_refused_ones_last():
    assert weight("42") < weight("(x+1)^{9}") < weight(r"\binom{n}{120}") < weight(r"\binom{2000000}{1000000}")
    assert weight(r"\binom{2000000}{1000000}") == math.inf
