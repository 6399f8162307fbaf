"""Small Python functions with inputs: the program world of the built-in model `tiny`.

Used for pretraining `tiny` on the Absolute Zero task formats and for held-out
program-reasoning evaluation. Each program is a template (one family of behaviour:
arithmetic, conditionals, loops, lists, strings, dicts) filled with constants, chosen
so that every step of running it by hand is small: one- and two-digit numbers, short
lists of digits, words from a short list. A small model can then learn to *trace* a
call reliably (`data.trace`), while the bare output, computed in its head, stays
mostly wrong on programs it has not seen.

Every template also knows how to run *backwards* (`Template.invert`): given an output,
the worked steps that find an input producing it (abduction's procedure). The steps
are written from the template's structure (peel the last operation, pick the branch,
count the loop up), never by searching, and every input they give is checked by
running the program.

A program's split is decided by its text alone (`split_of`, a hash), never by a seed:
`pretrain` (the corpus), `dev` (where rates and batch sizes are chosen) and `heldout`
(every reported figure). Outputs are computed by running the program in-process:
these are our own generated programs, never model-written code.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Callable

SPLITS = ("pretrain", "dev", "heldout")
SPLIT_SHARES = {"heldout": 3, "dev": 2, "pretrain": 5}
"""Tenths of the program space in each split (by the content hash), in this order."""

WORDS = ("apple", "banana", "kiwi", "cat", "dog", "hello", "world", "code", "python", "zero", "level", "moon",
         "tree", "sun")
"""The words string programs are called on (their reversals and counts are few enough to learn)."""
SUFFIXES = ("x", "!", "z", "#")
"""Strings string programs append or substitute: none holds a vowel, so replacing a vowel is undone
by the output itself (see `_replace_inverse`)."""
VOWELS = "aeiou"
LABELS = (("big", "small"), ("yes", "no"), ("hot", "cold"), ("up", "down"))


@dataclass(frozen=True)
class ProgramTask:
    program: str
    inputs: list[str]
    """Argument-list sources (what goes inside f(...)), one per example."""
    outputs: list[str]
    """repr(f(*args)) for each input."""
    family: str
    template: int = -1
    """Index in TEMPLATES (-1: not one of ours)."""
    constants: dict = field(default_factory=dict, compare=False, hash=False)


# --------------------------------------------------------------- inputs


def _ints(count: int, low: int, high: int):
    return lambda rng: ", ".join(str(rng.randint(low, high)) for _ in range(count))


def _digits(rng) -> str:
    return repr([rng.randint(0, 9) for _ in range(rng.randint(2, 4))])


def _word(rng) -> str:
    return repr(rng.choice(WORDS))


def _dict(rng) -> str:
    keys = sorted(rng.sample(["a", "b", "c", "d", "x", "y"], rng.randint(2, 3)))
    return repr({k: rng.randint(0, 9) for k in keys})


# ------------------------------------------------------ worked inversions
# Each takes the template's constants c and the output y, and returns (steps, input source).


def _linear(c, y):
    a = (y - c["k"]) // c["m"]
    return [f"a * {c['m']} + {c['k']} = {y}", f"a * {c['m']} = {y} - {c['k']} = {y - c['k']}",
            f"a = {y - c['k']} // {c['m']} = {a}"], str(a)


def _weighted_sum(c, y):
    return [f"take b = 0: a + 0 * {c['m']} = a", f"a = {y}"], f"{y}, 0"


def _modulo(c, y):
    a = y - c["k"]
    return [f"(a + {c['k']}) % {c['p']} = {y}", f"take a + {c['k']} = {y}", f"a = {y} - {c['k']} = {a}"], str(a)


def _scaled_difference(c, y):
    return [f"take a = 0: 0 * {c['m']} - b = -b", f"b = {-y}"], f"0, {-y}"


def _square(c, y):
    square = y + c["k"]
    a = round(square ** 0.5)
    return [f"a * a - {c['k']} = {y}", f"a * a = {y} + {c['k']} = {square}", f"a = {a}"], str(a)


def _branch_shift(c, y):
    up = y + c["k"]
    if up > c["t"]:
        return [f"a - {c['k']} = {y} needs a > {c['t']}", f"a = {y} + {c['k']} = {up}",
                f"{up} > {c['t']} = True"], str(up)
    down = y - c["k"]
    return [f"a + {c['k']} = {y} needs a <= {c['t']}", f"a = {y} - {c['k']} = {down}",
            f"{down} > {c['t']} = False"], str(down)


def _either(c, y):
    return [f"take a = {y} and b = {y}: both branches give {y}"], f"{y}, {y}"


def _label(c, y):
    if y == c["yes"]:
        return [f"{y!r} needs a > {c['t']}", f"a = {c['t']} + 1 = {c['t'] + 1}"], str(c["t"] + 1)
    return [f"{y!r} needs a <= {c['t']}", f"a = {c['t']}"], str(c["t"])


def _halve_or_grow(c, y):
    return [f"an even a gives a // 2 = {y}", f"a = {y} * 2 = {2 * y}"], str(2 * y)


def _max_shift(c, y):
    top = y + c["k"]
    return [f"max(a, b) - {c['k']} = {y}", f"max(a, b) = {y} + {c['k']} = {top}", f"take a = {top}, b = 0"], \
        f"{top}, 0"


def _count_up(step: Callable[[int, int, dict], tuple[str, int]], start: Callable[[dict], int], name: str):
    """The loop run forward one iteration at a time until it returns y: n is the count."""

    def invert(c, y):
        value = start(c)
        lines = [f"n = 0: {name} = {value}"]
        n = 0
        while value != y:
            text, value = step(n, value, c)
            n += 1
            lines.append(f"n = {n}: {name} = {text}")
            if n > 12:
                raise ValueError(f"output {y!r} not reached")
        return lines, str(n)

    return invert


def _scale_list(c, y):
    return [f"xs = [y // {c['m']} for y in {y!r}] = {[v // c['m'] for v in y]!r}"], repr([v // c["m"] for v in y])


def _shift_list(c, y):
    return [f"xs = [y - {c['k']} for y in {y!r}] = {[v - c['k'] for v in y]!r}"], repr([v - c["k"] for v in y])


def _affine_list(c, y):
    xs = [(v - c["k"]) // c["m"] for v in y]
    return [f"xs = [(y - {c['k']}) // {c['m']} for y in {y!r}] = {xs!r}"], repr(xs)


def _without(c, y):
    return [f"{y!r} has no {c['k']}: take xs = {y!r}"], repr(y)


def _filtered_sum(c, y):
    if y == 0:
        return ["take xs = [0]: nothing is kept, the sum is 0"], "[0]"
    return [f"{y} > {c['t']}, so take xs = [{y}]"], f"[{y}]"


def _top(c, y):
    return [f"{y!r} is sorted and has at most {c['c']} numbers: take xs = {y!r}"], repr(y)


def _first_times(c, y):
    x = y // c["m"]
    return [f"xs[0] * {c['m']} = {y}", f"xs[0] = {y} // {c['m']} = {x}"], f"[{x}, 0]"


def _reverse_suffix(c, y):
    core = y[:-len(c["w"])]
    return [f"{y!r} without {c['w']!r} is {core!r}", f"s = {core!r}[::-1] = {core[::-1]!r}"], repr(core[::-1])


def _prefix_suffix(c, y):
    core = y[:-len(c["w"])]
    return [f"{y!r} without {c['w']!r} is {core!r}", f"take s = {core!r}"], repr(core)


def _upper_prefix(c, y):
    return [f"s = {y!r}.lower() = {y.lower()!r}"], repr(y.lower())


def _length_times(c, y):
    size = y // c["m"]
    return [f"len(s) = {y} // {c['m']} = {size}", f"s = {'a' * size!r}"], repr("a" * size)


def _count_plus(c, y):
    count = y - c["k"]
    return [f"s.count({c['v']!r}) = {y} - {c['k']} = {count}", f"s = {c['v'] * count!r}"], repr(c["v"] * count)


def _replace_inverse(c, y):
    return [f"{y!r} has no {c['v']!r}: take s = {y!r}"], repr(y)


def _keys_above(c, y):
    d = {k: c["t"] + 1 for k in y}
    return [f"each key needs a value > {c['t']}: d = {d!r}"], repr(d)


def _values_sum(c, y):
    total = y - c["k"]
    return [f"sum(d.values()) = {y} - {c['k']} = {total}", f"d = {{'a': {total}}}"], repr({"a": total})


def _shift_values(c, y):
    d = {k: v - c["m"] for k, v in y.items()}
    return [f"d = {{k: v - {c['m']} for k, v in {y!r}.items()}} = {d!r}"], repr(d)


def _largest_times(c, y):
    return [f"max(d.values()) = {y} // {c['m']} = {y // c['m']}", f"d = {{'a': {y // c['m']}}}"], \
        repr({"a": y // c["m"]})


def _scale_values(c, y):
    d = {k: v // c["m"] for k, v in y.items()}
    return [f"d = {{k: v // {c['m']} for k, v in {y!r}.items()}} = {d!r}"], repr(d)


@dataclass(frozen=True)
class Template:
    family: str
    source: str
    """The program, with `{name}` for each constant."""
    constants: dict
    """name → the values it takes."""
    arguments: Callable[[random.Random], str]
    """Draws the argument-list source of one call."""
    invert: Callable[[dict, object], tuple[list[str], str]]
    """(constants, output value) → (worked steps, an argument-list source that gives the output)."""


def _range(low: int, high: int) -> tuple[int, ...]:
    return tuple(range(low, high + 1))


TEMPLATES: tuple[Template, ...] = (
    Template("arithmetic", "def f(a):\n    return a * {m} + {k}", {"m": _range(2, 9), "k": _range(1, 9)},
             _ints(1, 0, 9), _linear),
    Template("arithmetic", "def f(a, b):\n    return a + b * {m}", {"m": _range(2, 9)}, _ints(2, 0, 9),
             _weighted_sum),
    Template("arithmetic", "def f(a):\n    return (a + {k}) % {p}", {"k": _range(1, 9), "p": _range(3, 9)},
             _ints(1, 0, 9), _modulo),
    Template("arithmetic", "def f(a, b):\n    return a * {m} - b", {"m": _range(2, 9)}, _ints(2, 0, 9),
             _scaled_difference),
    Template("arithmetic", "def f(a):\n    return a * a - {k}", {"k": _range(0, 9)}, _ints(1, 0, 9), _square),
    Template("conditional", "def f(a):\n    if a > {t}:\n        return a - {k}\n    return a + {k}",
             {"t": _range(0, 9), "k": _range(1, 9)}, _ints(1, 0, 9), _branch_shift),
    Template("conditional", "def f(a, b):\n    return a if a % {p} == 0 else b", {"p": _range(2, 9)},
             _ints(2, 0, 9), _either),
    Template("conditional", "def f(a):\n    return '{yes}' if a > {t} else '{no}'",
             {"t": _range(0, 9), "label": LABELS}, _ints(1, 0, 12), _label),
    Template("conditional", "def f(a):\n    if a % 2 == 0:\n        return a // 2\n    return a * {m} + {k}",
             {"m": _range(2, 3), "k": _range(1, 9)}, _ints(1, 0, 9), _halve_or_grow),
    Template("conditional", "def f(a, b):\n    return max(a, b) - {k}", {"k": _range(1, 9)}, _ints(2, 0, 9),
             _max_shift),
    Template("loop", "def f(n):\n    total = 0\n    for i in range(n):\n        total += i * {m}\n    return total",
             {"m": _range(1, 5)}, _ints(1, 0, 4),
             _count_up(lambda n, v, c: (f"{v} + {n} * {c['m']} = {v} + {n * c['m']} = {v + n * c['m']}",
                                        v + n * c["m"]), lambda c: 0, "total")),
    Template("loop", "def f(n):\n    x = {k}\n    for _ in range(n):\n        x = x * 2 - {m}\n    return x",
             {"k": _range(1, 4), "m": _range(0, 3)}, _ints(1, 0, 3),
             _count_up(lambda n, v, c: (f"{v} * 2 - {c['m']} = {2 * v} - {c['m']} = {2 * v - c['m']}",
                                        2 * v - c["m"]), lambda c: c["k"], "x")),
    Template("loop", "def f(n):\n    x = {k}\n    for _ in range(n):\n        x = x + {m}\n    return x",
             {"k": _range(0, 9), "m": _range(2, 9)}, _ints(1, 0, 4),
             _count_up(lambda n, v, c: (f"{v} + {c['m']} = {v + c['m']}", v + c["m"]), lambda c: c["k"], "x")),
    Template("list", "def f(xs):\n    return [x + {k} for x in xs]", {"k": _range(1, 9)}, _digits, _shift_list),
    Template("list", "def f(xs):\n    return [x * {m} + {k} for x in xs]", {"m": _range(2, 4), "k": _range(1, 9)},
             _digits, _affine_list),
    Template("list", "def f(xs):\n    return [x for x in xs if x != {k}]", {"k": _range(0, 9)}, _digits, _without),
    Template("list", "def f(xs):\n    return sum(x for x in xs if x > {t})", {"t": _range(1, 6)}, _digits,
             _filtered_sum),
    Template("list", "def f(xs):\n    return sorted(xs)[-{c}:]", {"c": _range(1, 3)}, _digits, _top),
    Template("list", "def f(xs):\n    return [x * {m} for x in xs if x % 2 == {r}]",
             {"m": _range(2, 5), "r": (0, 1)}, _digits, _scale_list),
    Template("list", "def f(xs):\n    return xs[0] * {m}", {"m": _range(2, 9)}, _digits, _first_times),
    Template("string", "def f(s):\n    return s[::-1] + '{w}'", {"w": SUFFIXES}, _word, _reverse_suffix),
    Template("string", "def f(s):\n    return s[:{c}] + '{w}'", {"c": _range(1, 4), "w": SUFFIXES}, _word,
             _prefix_suffix),
    Template("string", "def f(s):\n    return s.upper()[:{c}]", {"c": _range(2, 4)}, _word, _upper_prefix),
    Template("string", "def f(s):\n    return len(s) * {m}", {"m": _range(1, 9)}, _word, _length_times),
    Template("string", "def f(s):\n    return s.count('{v}') + {k}", {"v": tuple(VOWELS), "k": _range(0, 9)}, _word,
             _count_plus),
    Template("string", "def f(s):\n    return s.replace('{v}', '{w}')", {"v": tuple(VOWELS), "w": SUFFIXES}, _word,
             _replace_inverse),
    Template("dict", "def f(d):\n    return sorted(k for k, v in d.items() if v > {t})", {"t": _range(0, 7)},
             _dict, _keys_above),
    Template("dict", "def f(d):\n    return sum(d.values()) + {k}", {"k": _range(1, 9)}, _dict, _values_sum),
    Template("dict", "def f(d):\n    return {{k: v + {m} for k, v in d.items()}}", {"m": _range(1, 9)}, _dict,
             _shift_values),
    Template("dict", "def f(d):\n    return max(d.values()) * {m}", {"m": _range(2, 9)}, _dict, _largest_times),
    Template("dict", "def f(d):\n    return {{k: v * {m} for k, v in d.items()}}", {"m": _range(2, 5)}, _dict,
             _scale_values),
)
FAMILIES = tuple(dict.fromkeys(t.family for t in TEMPLATES))


def _fill(template: Template, constants: dict) -> str:
    return template.source.format(**_named(constants))


def _named(constants: dict) -> dict:
    """Constants as the inversions read them (a label pair split into its two words)."""
    named = dict(constants)
    if "label" in named:
        named["yes"], named["no"] = named.pop("label")
    return named


def split_of(program: str) -> str:
    """The split a program belongs to, from a hash of its text (stable across runs and machines)."""
    bucket = hashlib.sha256(program.strip().encode()).digest()[0] % 10
    for split, share in SPLIT_SHARES.items():
        if bucket < share:
            return split
        bucket -= share
    raise AssertionError("SPLIT_SHARES must add up to 10")


def all_programs(split: str | None = None) -> list[tuple[int, dict, str]]:
    """Every (template index, constants, program) of the world, in a fixed order (one split's, or all)."""
    found = []
    for index, template in enumerate(TEMPLATES):
        names = list(template.constants)
        combos = [{}]
        for name in names:
            combos = [{**combo, name: value} for combo in combos for value in template.constants[name]]
        for constants in combos:
            program = _fill(template, constants)
            if split is None or split_of(program) == split:
                found.append((index, constants, program))
    return found


def heldout_programs() -> frozenset[str]:
    """The text of every held-out program (stripped): what self-play must never train on."""
    return frozenset(program.strip() for _, _, program in all_programs("heldout"))


def run_program(program: str, inputs: list[str]) -> list[str] | None:
    """repr(f(*args)) for each input, or None if a call fails (our own template code only)."""
    namespace: dict = {}
    try:
        exec(program, namespace)  # our own template code, not model output
        return [repr(eval(f"f({args})", namespace)) for args in inputs]
    except Exception:
        return None


def inversion(item: ProgramTask, example: int = 0) -> tuple[list[str], str]:
    """Worked steps from the output of example `example` back to an input that gives it, and that
    input (checked: the program returns the output for it)."""
    import ast

    template = TEMPLATES[item.template]
    steps, found = template.invert(_named(item.constants), ast.literal_eval(item.outputs[example]))
    if run_program(item.program, [found]) != [item.outputs[example]]:
        raise AssertionError(f"inversion of {item.program!r} for {item.outputs[example]} gave {found}")
    return steps, found


def generate(n: int, split: str = "pretrain", seed: int = 0, examples: int = 1,
             families: tuple[str, ...] | None = None) -> list[ProgramTask]:
    """`n` distinct programs of `split` (fewer if the split has fewer), `examples` distinct inputs
    each, in a seeded random order that draws the templates evenly."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    rng = random.Random(f"programs/{split}/{seed}")
    by_template: dict[int, list[tuple[dict, str]]] = {}
    for index, constants, program in all_programs(split):
        if families is None or TEMPLATES[index].family in families:
            by_template.setdefault(index, []).append((constants, program))
    for pool in by_template.values():
        rng.shuffle(pool)
    tasks: list[ProgramTask] = []
    while len(tasks) < n and any(by_template.values()):
        for index in rng.sample(sorted(by_template), len(by_template)):  # one of each template per round
            if not by_template[index] or len(tasks) == n:
                continue
            constants, program = by_template[index].pop()
            template = TEMPLATES[index]
            inputs: list[str] = []
            for _ in range(examples * 8):
                if len(inputs) == examples:
                    break
                candidate = template.arguments(rng)
                if candidate not in inputs:
                    inputs.append(candidate)
            outputs = run_program(program, inputs)
            if outputs is not None:
                tasks.append(ProgramTask(program, inputs, outputs, template.family, index, constants))
    return tasks
