"""Small Python functions with inputs, for pretraining the built-in model on the
AZR task formats and for held-out code-reasoning evaluation.

Each program is a template (one family of behaviour: arithmetic, strings, lists,
dicts, conditionals, loops) filled with constants. A program's split is decided
by its template and constants alone (1 in 5 held out), so no seed of one split can
produce a program of the other. Outputs are computed by running the program
in-process (these are our own generated programs, never model-written code).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

SPLITS = ("train", "heldout")


@dataclass(frozen=True)
class ProgramTask:
    program: str
    inputs: list[str]
    """Argument-list sources (what goes inside f(...)), one per example."""
    outputs: list[str]
    """repr(f(*args)) for each input."""
    family: str


# Each template: (family, source with {c0}, {c1} constants, input makers).
# Input makers take an rng and return the argument-list source.
def _int_args(rng, n=1, low=-9, high=20):
    return ", ".join(str(rng.randint(low, high)) for _ in range(n))


def _list_arg(rng, low=0, high=9):
    return repr([rng.randint(low, high) for _ in range(rng.randint(2, 5))])


def _word_arg(rng):
    words = ["apple", "banana", "kiwi", "cat", "dog", "hello", "world", "code", "python", "zero", "level"]
    return repr(rng.choice(words))


def _dict_arg(rng):
    keys = rng.sample(["a", "b", "c", "d", "x", "y"], rng.randint(2, 4))
    return repr({k: rng.randint(0, 9) for k in keys})


_TEMPLATES: list[tuple[str, str, callable]] = [
    ("arithmetic", "def f(a):\n    return a * {c0} + {c1}", _int_args),
    ("arithmetic", "def f(a, b):\n    return a - b * {c0}", lambda r: _int_args(r, 2)),
    ("arithmetic", "def f(a):\n    return (a + {c0}) % {c2}", _int_args),
    ("conditional", "def f(a):\n    if a > {c0}:\n        return a - {c1}\n    return a + {c1}", _int_args),
    ("conditional", "def f(a, b):\n    return a if a % {c2} == 0 else b", lambda r: _int_args(r, 2)),
    ("loop", "def f(n):\n    total = 0\n    for i in range(n):\n        total += i * {c0}\n    return total",
     lambda r: str(r.randint(0, 9))),
    ("loop", "def f(n):\n    x = {c1}\n    for _ in range(n):\n        x = x * 2 - {c0}\n    return x",
     lambda r: str(r.randint(0, 6))),
    ("list", "def f(xs):\n    return [x + {c0} for x in xs]", _list_arg),
    ("list", "def f(xs):\n    return sum(x for x in xs if x > {c0})", _list_arg),
    ("list", "def f(xs):\n    return sorted(xs)[-{c3}:]", _list_arg),
    ("list", "def f(xs):\n    return [x * {c0} for x in xs if x % 2 == {c4}]", _list_arg),
    ("string", "def f(s):\n    return s[::-1] + '{w}'", _word_arg),
    ("string", "def f(s):\n    return s.upper()[:{c3}]", _word_arg),
    ("string", "def f(s):\n    return len(s) * {c0}", _word_arg),
    ("string", "def f(s):\n    return s.count('{v}') + {c1}", _word_arg),
    ("string", "def f(s):\n    return s.replace('{v}', '{w}')", _word_arg),
    ("dict", "def f(d):\n    return sorted(k for k, v in d.items() if v > {c0})", _dict_arg),
    ("dict", "def f(d):\n    return sum(d.values()) + {c1}", _dict_arg),
    ("dict", "def f(d):\n    return {{k: v * {c0} for k, v in d.items()}}", _dict_arg),
]


def _constants(rng) -> dict:
    return {"c0": rng.randint(1, 5), "c1": rng.randint(0, 9), "c2": rng.randint(2, 5), "c3": rng.randint(1, 3),
            "c4": rng.randint(0, 1), "v": rng.choice("aeiou"), "w": rng.choice(["x", "ab", "!", "z"])}


def split_of(template_index: int, program: str) -> str:
    """The split a program belongs to, decided by its text alone (stable across runs)."""
    checksum = sum((i + 1) * ord(ch) for i, ch in enumerate(program)) + template_index * 7
    return "heldout" if checksum % 5 == 0 else "train"


def _run_locally(program: str, inputs: list[str]) -> list[str] | None:
    namespace: dict = {}
    try:
        exec(program, namespace)  # our own template code, not model output
        return [repr(eval(f"f({args})", namespace)) for args in inputs]
    except Exception:
        return None


def generate(n: int, split: str = "train", seed: int = 0, examples: int = 1,
             families: tuple[str, ...] | None = None) -> list[ProgramTask]:
    """`n` distinct programs of `split` with `examples` inputs each, seeded."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    rng = random.Random(f"programs/{split}/{seed}")
    allowed = [i for i, t in enumerate(_TEMPLATES) if families is None or t[0] in families]
    seen: set[str] = set()
    tasks: list[ProgramTask] = []
    for _ in range(n * 100):
        if len(tasks) == n:
            break
        index = rng.choice(allowed)
        family, source, make_input = _TEMPLATES[index]
        program = source.format(**_constants(rng))
        if program in seen or split_of(index, program) != split:
            continue
        inputs: list[str] = []
        for _ in range(examples * 4):
            if len(inputs) == examples:
                break
            candidate = make_input(rng)
            if candidate not in inputs:
                inputs.append(candidate)
        outputs = _run_locally(program, inputs)
        if outputs is None:
            continue
        seen.add(program)
        tasks.append(ProgramTask(program, inputs, outputs, family))
    return tasks
