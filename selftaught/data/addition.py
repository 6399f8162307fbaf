"""Long addition, written two ways: the task of the built-in model RL can teach.

A problem is `a + b` with 3-digit operands under one of a few wordings. Its
answer can be written

- with the **column procedure** (`procedure_solution`): each column's digits, the
  carry in, their sum, right to left, then the answer. It generalises: every step
  is a one-digit fact plus a carry, the same for every problem;
- as a **bare answer** (`bare_solution`): the number alone. A small model can only
  memorise or guess it, and off the problems it memorised it guesses wrong.

The built-in `tiny-math` model (`selftaught.tiny.addition_corpus`) is pretrained on a mixture
of both, so it knows the reliable way and takes it only part of the time: the gap
between pass@1 and pass@k that reinforcement learning can close.

Disjoint sources, each decided by a rule on the problem's content alone
(`split_of`): `pretrain` (documents the model is pretrained on), `train` (the RL
prompts), `dev` (where learning rates are chosen) and `heldout` (evaluation). The rule is a hash of the operands and the
wording, so no split has an operand relation the others lack (a linear rule such
as 7a + 13b ≡ 0 mod 5 would give held-out problems a relation between a and b that
no training problem of the same wording has); RL prompts and held-out problems come
from one distribution, and neither was ever a pretraining document.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass

SPLITS = ("pretrain", "train", "dev", "heldout")
SPLIT_SHARES = {"heldout": 1, "dev": 1, "train": 2, "pretrain": 6}
"""Tenths of the problem space in each split (by the content hash), in this order."""

TEMPLATES = (
    "What is {a} + {b}?",
    "Compute {a} plus {b}.",
    "Add {a} and {b}.",
    "Find the sum of {a} and {b}.",
)
PROCEDURE_MARK = "Columns:"
"""How a procedure solution starts: what `uses_procedure` looks for."""


@dataclass(frozen=True)
class AdditionProblem:
    a: int
    b: int
    template: int

    @property
    def prompt(self) -> str:
        return TEMPLATES[self.template].format(a=self.a, b=self.b)

    @property
    def answer(self) -> str:
        return str(self.a + self.b)


def split_of(a: int, b: int, template: int) -> str:
    """The split of a problem, from a hash of its content (not of any seed)."""
    bucket = hashlib.sha256(f"{a}+{b}#{template}".encode()).digest()[0] % 10
    for split, share in SPLIT_SHARES.items():
        if bucket < share:
            return split
        bucket -= share
    raise AssertionError("SPLIT_SHARES must add up to 10")


def columns(a: int, b: int) -> list[tuple[int, int, int, int]]:
    """(digit of a, digit of b, carry in, column sum) per column, units first."""
    out, carry = [], 0
    width = max(len(str(a)), len(str(b)))
    for i in range(width):
        x, y = a // 10 ** i % 10, b // 10 ** i % 10
        total = x + y + carry
        out.append((x, y, carry, total))
        carry = total // 10
    return out


def procedure_solution(a: int, b: int, mark: str = PROCEDURE_MARK) -> str:
    """The column procedure, e.g. 47 + 85: `Columns: 7+5+0=12, 4+8+1=13. The answer is \\boxed{132}.`

    Each column's sum mod 10 is a digit of the answer (units first) and the last
    column's carry leads it, so the answer reads off the steps. `mark` is the words that
    open it (`tiny` writes the one opener it uses for every procedure it knows)."""
    steps = ", ".join(f"{x}+{y}+{c}={t}" for x, y, c, t in columns(a, b))
    return f"{mark} {steps}. The answer is \\boxed{{{a + b}}}."


def bare_solution(value: int) -> str:
    return f"The answer is \\boxed{{{value}}}."


def uses_procedure(completion: str) -> bool:
    """Whether a completion takes the column procedure (it starts with `Columns:`)."""
    return completion.lstrip().startswith(PROCEDURE_MARK)


def generate(n: int, split: str = "train", seed: int = 0) -> list[AdditionProblem]:
    """`n` distinct problems of `split` (3-digit operands), seeded and reproducible."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    rng = random.Random(f"addition/{split}/{seed}")
    seen: set[AdditionProblem] = set()
    problems: list[AdditionProblem] = []
    while len(problems) < n:
        problem = AdditionProblem(rng.randint(100, 999), rng.randint(100, 999), rng.randrange(len(TEMPLATES)))
        if problem in seen or split_of(problem.a, problem.b, problem.template) != split:
            continue
        seen.add(problem)
        problems.append(problem)
    return problems
