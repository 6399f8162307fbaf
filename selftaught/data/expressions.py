"""Small arithmetic expressions worked step by step: the arithmetic every trace is made of.

A worked execution trace (`data.trace`) reduces expressions one step at a time
(`3 * 5 + 8 = 15 + 8 = 23`). A model that has only seen those steps inside traces of a few
hundred programs memorises the programs instead of the arithmetic; the same reductions on
thousands of random expressions (numbers as small as the programs use: one-digit products,
sums below about 100, remainders, comparisons) teach the facts themselves. The chains are
written by the tracer's own reducer, so they are exactly the steps a trace shows.
"""

from __future__ import annotations

import ast
import random

from .trace import _chain

_LIMIT = 120
"""Every intermediate value stays within ±_LIMIT (the programs' range)."""


def _leaf(rng: random.Random) -> int:
    return rng.choice((rng.randint(0, 9), rng.randint(0, 9), rng.randint(10, 40), rng.randint(0, 99)))


def _binary(rng: random.Random, left: str, left_value: int) -> tuple[str, int] | None:
    op = rng.choice(("+", "+", "-", "-", "*", "*", "//", "%", ">", "=="))
    if op == "*":
        right = rng.randint(0, 9)
        if abs(left_value) > 12:
            return None
    elif op in ("//", "%"):
        right = rng.randint(2, 9)
    elif op in ("+", "-"):
        right = rng.choice((rng.randint(0, 9), rng.randint(0, 30)))
    else:
        right = rng.randint(0, 20)
    text = f"{left} {op} {right}" if " " not in left or op in ("+", "-") else f"({left}) {op} {right}"
    value = eval(text)  # our own small integer expression
    if isinstance(value, bool) or abs(value) > _LIMIT:
        return (text, value) if isinstance(value, bool) else None
    return text, value


def random_expression(rng: random.Random) -> str:
    """One or two operations on small integers (a comparison, if any, comes last)."""
    while True:
        left = _leaf(rng)
        text, value = str(left), left
        for _ in range(rng.choice((1, 1, 2))):
            step = _binary(rng, text, value)
            if step is None:
                break
            text, value = step
            if isinstance(value, bool):
                break
        if text != str(left):
            return text


def worked_expression(text: str) -> str:
    """`3 * 5 + 8` → `3 * 5 + 8 = 15 + 8 = 23`: the tracer's reduction chain."""
    chain, _ = _chain(ast.parse(text, mode="eval").body, {}, show_source=True)
    return chain


def generate(n: int, seed: int = 0) -> list[str]:
    """`n` worked expressions, seeded."""
    rng = random.Random(f"expressions/{seed}")
    return [worked_expression(random_expression(rng)) for _ in range(n)]
