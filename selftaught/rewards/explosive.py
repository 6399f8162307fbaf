"""A cheap pre-check that refuses model-written answers whose evaluation would explode.

math-verify hands an answer to sympy, which evaluates what it parses: a power
tower such as ``10^{10^{10}}`` or ``2^{2^{40}}`` builds an integer with billions
of digits (holding the GIL for minutes), ``100000000!`` multiplies for as long,
and thousands of nested brackets exhaust the parser. `refusal_reason` spots
those shapes with linear-time scans, then bounds the size of every number and
expansion the answer's evaluation would build (`magnitude`: binomials, Γ, finite
sums and products, matrix powers, multinomial expansions), before anything
symbolic runs; what it lets through still runs under a hard deadline per
comparison (`symbolic_worker`) and a budget per step (`math_answer`).

The limits are far above anything a real final answer needs (gold answers of
GSM8K / MATH are a few dozen characters, exponents of a few digits).
"""

from __future__ import annotations

import re

from .magnitude import explosion

MAX_ANSWER_CHARS = 1000  # a final answer, not a derivation
MAX_NESTING = 24  # brackets of any kind, \left( ... \right) included
MAX_EXPONENT = 1_000  # a literal exponent of a number; 7^{1000} already has 846 digits
MAX_TOWER = 2  # exponents within exponents: e^{-x^{2}} is 2 high; x^{y^{z^{w}}} takes sympy seconds
MAX_SYMBOLIC_EXPONENT = 100  # of an expression or a symbol: (x+1)^{9999} expands for minutes
MAX_FACTORIAL = 1_000  # 1000! has 2,568 digits

_EXPONENT_OP = re.compile(r"\^|\*\*")
# An exponentiation of a number (or of a bracket group) inside an exponent: a
# tower that evaluates to a huge integer. x^{y^{z}} or e^{-x^{2}} stay symbolic.
_NUMERIC_POWER = re.compile(r"[\d)}\]]\s*(?:\^|\*\*)")
_FACTORIAL_OF_NUMBER = re.compile(r"(\d+)\s*!")
_FACTORIAL_OF_GROUP = re.compile(r"[)}\]]\s*!")
_NESTED_FACTORIAL = re.compile(r"!\s*[)}\]]*\s*!")
_OPENERS, _CLOSERS = "({[", ")}]"


def _nesting_depth(s: str) -> int:
    depth = deepest = 0
    for c in s:
        if c in _OPENERS:
            depth += 1
            deepest = max(deepest, depth)
        elif c in _CLOSERS:
            depth = max(depth - 1, 0)
    return deepest


def _operand(s: str, start: int) -> tuple[str, int]:
    """The exponent written at s[start:]: a bracket group, or a run of digits/letters/dots."""
    i = start
    while i < len(s) and s[i] == " ":
        i += 1
    if i < len(s) and s[i] in _OPENERS:
        depth = 0
        for j in range(i, len(s)):
            if s[j] in _OPENERS:
                depth += 1
            elif s[j] in _CLOSERS:
                depth -= 1
                if depth == 0:
                    return s[i + 1:j], j + 1
        return s[i + 1:], len(s)
    if s.startswith("\\", i):  # a command such as \infty or \pi
        m = re.compile(r"\\[A-Za-z]+").match(s, i)
        return (m.group(), m.end()) if m else ("", i)
    m = re.compile(r"[+-]?[\w.]*").match(s, i)
    return m.group(), m.end()


def _tower_height(s: str, depth: int = 0) -> int:
    """How many exponents are stacked in s (x^2: 1, e^{-x^{2}}: 2); stops past MAX_TOWER."""
    if depth > MAX_TOWER:
        return depth
    height = 0
    for op in _EXPONENT_OP.finditer(s):
        exponent, _ = _operand(s, op.end())
        height = max(height, 1 + _tower_height(exponent, depth + 1))
        if height > MAX_TOWER:
            break
    return height


def _power_reason(s: str) -> str | None:
    if _tower_height(s) > MAX_TOWER:
        return "power tower"
    for op in _EXPONENT_OP.finditer(s):
        exponent, end = _operand(s, op.end())
        numeric_exponent = exponent.replace(" ", "").lstrip("+-").isdigit()
        if _NUMERIC_POWER.search(exponent) or (numeric_exponent and _EXPONENT_OP.match(s, end)):
            return "power tower"
        if "!" in exponent:
            return "factorial in an exponent"
        digits = exponent.replace(" ", "").lstrip("+-")
        before = s[:op.start()].rstrip()
        numeric_base = bool(before) and before[-1].isdigit()
        limit = MAX_EXPONENT if numeric_base else MAX_SYMBOLIC_EXPONENT
        if digits.isdigit() and (len(digits) > 6 or int(digits) > limit):
            return "huge exponent"
    return None


def _factorial_reason(s: str) -> str | None:
    if _NESTED_FACTORIAL.search(s) or _FACTORIAL_OF_GROUP.search(s):
        return "factorial of a factorial or of an expression"
    for m in _FACTORIAL_OF_NUMBER.finditer(s):
        n = m.group(1).lstrip("0") or "0"
        if len(n) > 4 or int(n) > MAX_FACTORIAL:
            return "huge factorial"
    if "factorial" in s or "\\Gamma" in s:
        return "factorial function"
    return None


def refusal_reason(answer: str) -> str | None:
    """Why `answer` must not be evaluated symbolically, or None when it may be.

    Linear in len(answer). Refuses: more than MAX_ANSWER_CHARS characters,
    bracket nesting deeper than MAX_NESTING, numeric power towers
    (``10^{10^{10}}``, ``9^9^9``, ``2**2**40``) and any tower higher than
    MAX_TOWER (symbolic ones such as ``e^{-x^{2}}`` pass), literal exponents above
    MAX_EXPONENT on a number or MAX_SYMBOLIC_EXPONENT on anything else (a
    group, a symbol, a sum's bound), factorials above MAX_FACTORIAL! and factorials of expressions,
    and whatever `magnitude.explosion` bounds above its limits (numbers of more than
    MAX_DIGITS digits, expansions of more than MAX_TERMS terms).
    """
    if len(answer) > MAX_ANSWER_CHARS:
        return f"longer than {MAX_ANSWER_CHARS} characters"
    if _nesting_depth(answer) > MAX_NESTING:
        return f"brackets nested deeper than {MAX_NESTING}"
    return _power_reason(answer) or _factorial_reason(answer) or explosion(answer)
