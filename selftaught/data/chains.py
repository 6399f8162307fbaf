"""Chain programs: straight-line arithmetic in which every step of a worked trace is one small fact.

The template world (`data.programs`) holds 638 programs. That is few enough for a small model to
memorise their traces instead of learning to compute them (docs/program_model.md, designs m1–m5:
a worked trace was right 11–15% of the time on programs the model never saw). A chain program
applies one operation with a one-digit constant to a running value, two or three times, after an
optional two-argument head (`x = a + b`):

    def f(a):
        x = a + 4
        x = x * 2
        return x % 8

There are 98,666 of them (`all_chains`), far more than a corpus can repeat. Each line of
their worked trace (`data.trace`) is a copy of one program line and one fact about numbers below
100:

    a = 3
    x = a + 4 = 3 + 4 = 7
    x = x * 2 = 7 * 2 = 14
    return x % 8 = 14 % 8 = 6

A model that learns those two skills can trace programs it never saw; without the trace it is
mostly guessing (design D6 in docs/program_model.md: the trace right 0.94 of the time, a bare
answer 0.25). The generator tracks the running value's range over every input 0–9. It offers
only operations that keep the value in -9..99 (`*` only by 2–5, `//` and `%` only on values that
cannot be negative), so every fact involves numbers below 100.

Splits go by a hash of the program's text, as in the template world (`programs.split_of`).
"""

from __future__ import annotations

import functools
import random

from .programs import SPLITS, ProgramTask, run_program, split_of

FAMILY = "chain"
MEASURED_SEED = 0
"""The seed of the chains the built-in measurements draw (model card, demo: `generate(n, split, seed=0)`)."""
MEASURED_PROGRAMS = 1000
"""At most this many of them per split (`generate` with one seed gives prefixes of one sequence)."""
LOWEST, HIGHEST = -9, 99
"""The running value's bounds, for every input 0–9."""
CONSTANTS = tuple(range(2, 10))
MAX_MULTIPLIER = 5
INPUT_DIGITS = tuple(range(10))
TWO_ARGUMENT_HEADS = {"+": (0, 18), "*": (0, 81), "-": (-9, 9)}
"""`x = a <op> b` opening a two-argument chain, with the range of x it gives."""
STATEMENTS = (2, 3)
"""How many one-constant operations follow the (optional) two-argument head."""


def _operations(low: int, high: int) -> list[tuple[str, int]]:
    """The (operation, constant) pairs that keep a value in [low, high] within the bounds."""
    offered = []
    for k in CONSTANTS:
        if high + k <= HIGHEST:
            offered.append(("+", k))
        if low - k >= LOWEST:
            offered.append(("-", k))
        if k <= MAX_MULTIPLIER and high * k <= HIGHEST and low * k >= LOWEST:
            offered.append(("*", k))
        if low >= 0:
            offered += [("//", k), ("%", k)]
    return offered


def _apply(operation: str, k: int, low: int, high: int) -> tuple[int, int]:
    """The range of `value <operation> k` for value in [low, high]."""
    if operation == "%":
        return 0, k - 1
    values = {"+": (low + k, high + k), "-": (low - k, high - k), "*": (low * k, high * k),
              "//": (low // k, high // k)}
    return values[operation]


def _program(expressions: list[str], arguments: int) -> str:
    body = [f"    x = {expression}" for expression in expressions[:-1]] + [f"    return {expressions[-1]}"]
    return f"def f({', '.join('ab'[:arguments])}):\n" + "\n".join(body)


def _heads() -> list[tuple[list[str], int, int, int]]:
    """(expressions so far, arguments, low, high) of every way a chain opens."""
    two = [([f"a {operation} b"], 2, low, high) for operation, (low, high) in sorted(TWO_ARGUMENT_HEADS.items())]
    return [([], 1, 0, 9), *two]


def all_chains() -> list[str]:
    """Every chain program the generator can write, enumerated."""

    def extend(expressions: list[str], low: int, high: int, left: int):
        if left == 0:
            yield expressions
            return
        for operation, k in _operations(low, high):
            yield from extend([*expressions, f"{'x' if expressions else 'a'} {operation} {k}"],
                              *_apply(operation, k, low, high), left - 1)

    return [_program(expressions, arguments) for start, arguments, low, high in _heads()
            for length in STATEMENTS for expressions in extend(start, low, high, length)]


@functools.lru_cache(maxsize=None)
def _split_by_shape(split: str) -> dict[tuple[int, int], tuple[str, ...]]:
    """The split's programs grouped by shape: (arguments, lines in the body)."""
    shapes: dict[tuple[int, int], list[str]] = {}
    for program in all_chains():
        if split_of(program) == split:
            shape = (2 if program.startswith("def f(a, b)") else 1, program.count("\n"))
            shapes.setdefault(shape, []).append(program)
    return {shape: tuple(programs) for shape, programs in sorted(shapes.items())}


def generate(n: int, split: str = "pretrain", seed: int = 0, examples: int = 1) -> list[ProgramTask]:
    """`n` distinct chain programs of `split` (fewer if the split has fewer), `examples` distinct
    inputs (digits) each, seeded. Each draw picks a shape (one or two arguments, how many lines)
    uniformly among those left, then a program of that shape: short chains come as often as long
    ones, though there are far fewer of them."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    rng = random.Random(f"chains/{split}/{seed}")
    left = {shape: list(programs) for shape, programs in _split_by_shape(split).items()}
    for programs in left.values():
        rng.shuffle(programs)
    tasks: list[ProgramTask] = []
    while len(tasks) < n and any(left.values()):
        shape = rng.choice([shape for shape, programs in left.items() if programs])
        program = left[shape].pop()
        arguments = shape[0]
        inputs: list[str] = []
        while len(inputs) < min(examples, len(INPUT_DIGITS) ** arguments):
            candidate = ", ".join(str(rng.choice(INPUT_DIGITS)) for _ in range(arguments))
            if candidate not in inputs:
                inputs.append(candidate)
        tasks.append(ProgramTask(program, inputs, run_program(program, inputs), FAMILY))
    return tasks


def _expressions(program: str) -> list[str]:
    """The right-hand sides of a chain program's lines, in order."""
    lines = [line.strip() for line in program.splitlines()[1:]]
    return [line.split("=", 1)[1].strip() if line.startswith("x =") else line.removeprefix("return ").strip()
            for line in lines]


def inversion(program: str, output: int) -> tuple[list[str], str] | None:
    """Abduction's worked steps: from `output` back to an input, one program line at a time (the
    last line first), and that input; None where the rule below does not reach one.

    `+ k` and `- k` are undone exactly, `* k` by an exact division; `// k` takes the smallest value
    that gives y (y * k) and `% k` takes y itself; a two-argument head takes b = 0 (b = 1 for `*`).
    Those two choices can leave a value an earlier `* k` cannot give (a value that is not a multiple
    of k): the rule then stops, rather than search. It reaches an input for 95% of (program,
    output) pairs (tests/test_chains.py measures it)."""
    value, steps = output, []
    for expression in reversed(_expressions(program)):
        left, operation, right = expression.split(" ")
        if right == "b":
            found = {"+": f"{value}, 0", "-": f"{value}, 0", "*": f"{value}, 1"}[operation]
            steps.append(f"{expression} = {value}: take a = {found.replace(', ', ', b = ')}")
            break
        k = int(right)
        if operation == "+":
            steps.append(f"{expression} = {value}: {left} = {value} - {k} = {value - k}")
            value -= k
        elif operation == "-":
            steps.append(f"{expression} = {value}: {left} = {value} + {k} = {value + k}")
            value += k
        elif operation == "*":
            if value % k:
                return None
            steps.append(f"{expression} = {value}: {left} = {value} // {k} = {value // k}")
            value //= k
        elif operation == "//":
            steps.append(f"{expression} = {value}: take {left} = {value} * {k} = {value * k}")
            value *= k
        else:
            if not 0 <= value < k:
                return None
            steps.append(f"{expression} = {value}: take {left} = {value}")
        found = str(value)
    if run_program(program, [found]) != [repr(output)]:
        return None
    return steps, found
