"""Procedural arithmetic problems with gold answers, for training and held-out eval.

Train and held-out splits are disjoint by construction: every problem is defined
by its operands, and a fixed rule on the operands (not the seed) decides which
split it belongs to. Any seed of either split therefore never yields a problem of
the other, and the held-out set stays unseen however much training data is drawn.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

SPLITS = ("train", "heldout")
ARITHMETIC_CONTEXT = "Question: {prompt}\nAnswer:"
"""The plain question context of the built-in models (`tiny`'s arithmetic and `tiny-math`'s
additions), which their recipes, the demo, diagnose and evaluation prompt with."""

# Word-problem templates: {a}, {b} operands, the answer is given by `op`.
_TEMPLATES = [
    ("What is {a} + {b}?", "+"),
    ("What is {a} - {b}?", "-"),
    ("What is {a} * {b}?", "*"),
    ("Compute {a} plus {b}.", "+"),
    ("Compute {a} minus {b}.", "-"),
    ("Compute {a} times {b}.", "*"),
    ("Tom has {a} apples and buys {b} more. How many apples does he have?", "+"),
    ("A box holds {a} pens. {b} pens are taken out. How many pens are left?", "-"),
    ("There are {a} rows of {b} chairs. How many chairs are there?", "*"),
]


@dataclass(frozen=True)
class ArithmeticProblem:
    prompt: str
    answer: str
    solution: str
    """A brief worked solution ending in \\boxed{answer} (for pretraining corpora)."""


def split_of(a: int, b: int, template_index: int) -> str:
    """The split a problem belongs to, decided by its content alone (1 in 5 held out)."""
    return "heldout" if (a * 7 + b * 13 + template_index * 3) % 5 == 0 else "train"


def _operand_range(difficulty: int) -> tuple[int, int]:
    return 0, 10 ** min(difficulty, 4) * (2 if difficulty == 1 else 1) - 1


def generate(n: int, split: str = "train", seed: int = 0, difficulty: int = 1) -> list[ArithmeticProblem]:
    """`n` distinct problems of `split`, seeded and reproducible."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    rng = random.Random(f"arithmetic/{split}/{seed}/{difficulty}")
    low, high = _operand_range(difficulty)
    seen: set[tuple[int, int, int]] = set()
    problems: list[ArithmeticProblem] = []
    capacity = (high - low + 1) ** 2 * len(_TEMPLATES)
    for _ in range(n * 50):
        if len(problems) == n or len(seen) >= capacity:
            break
        index = rng.randrange(len(_TEMPLATES))
        a, b = rng.randint(low, high), rng.randint(low, high)
        template, op = _TEMPLATES[index]
        if op == "-" and b > a:  # keep answers non-negative, as in the word problems
            a, b = b, a
        key = (a, b, index)
        if key in seen or split_of(a, b, index) != split:
            continue
        seen.add(key)
        value = {"+": a + b, "-": a - b, "*": a * b}[op]
        problems.append(
            ArithmeticProblem(
                prompt=template.format(a=a, b=b),
                answer=str(value),
                solution=f"{a} {op} {b} = {value}. The answer is \\boxed{{{value}}}.",
            )
        )
    return problems
