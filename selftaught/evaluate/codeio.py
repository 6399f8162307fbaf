"""CodeI/O records from `reasoning-gym` as (program, input, output) triplets.

reasoning-gym's `codeio` data set (data file `codeio.jsonl.gz`, 3,002 records)
holds, per record: `task_description`, `input_output_spec`, `code_sample` (a
program whose entry is `main_solution(**inputs)`), `input_generator` (a function
`generate_inputs(rng: Random) -> dict` of keyword arguments) and quality scores.
Its own `__getitem__` runs both with a bare `exec` in the caller's process; we
never do: every record's code runs in `PythonExecutor`.

Mapping to a triplet (see code_reasoning.py):
- program: `code_sample` with `main_solution` renamed to `f` (records that
  already use the name `f` are dropped, to keep the rename exact);
- input: the generated arguments as positional Python literals, in the order of
  `main_solution`'s parameters (`repr` of each value);
- output: repr of the return value, checked by running the triplet again.

Dropped, and why:
- imports outside the standard library (numpy, sympy, scipy, ...; ~30% of the
  records): the sandbox can import only the standard library;
- names AZR forbids in a task (random, time, datetime, threading, hashlib, ...),
  file or process access (open, os, sys, io, pathlib, csv, pickle, shutil,
  subprocess) and `input()`: nondeterministic or not a pure function;
- a `main_solution` with *args/**kwargs or parameters the generator does not
  fill;
- an input or output repr over 300 characters, or a program over 3,000: CRUXEval
  keeps tasks short enough to reason about, and so do we;
- a generator or program that fails, times out, returns something whose repr is
  not a literal, or gives a different output on the second run.

The set is fixed and seeded: records are visited in a seeded order, the inputs of
the record at position j come from `generate_inputs(Random(seed * 100003 + j))`,
and the first records that survive the filters make the benchmark.
"""

from __future__ import annotations

import ast
import gzip
import json
import random
import re
import sys

from ..errors import UserError
from .code_reasoning import Triplet

MAX_PROGRAM_CHARS = 3000
MAX_IO_CHARS = 300
_IO_MODULES = {"os", "sys", "io", "pathlib", "csv", "pickle", "shutil", "subprocess", "glob", "tempfile",
               "socket", "urllib", "requests", "sqlite3"}
_IO_CALLS = {"open", "input", "exec", "eval", "__import__", "breakpoint"}


def load_records() -> list[dict]:
    """The raw CodeI/O records shipped with reasoning-gym."""
    try:
        from reasoning_gym.data import get_data_file_path
    except ImportError:
        raise UserError("benchmark codeio needs reasoning-gym: pip install reasoning-gym") from None
    with gzip.open(get_data_file_path("codeio.jsonl.gz"), "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _imports(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def static_reason_to_drop(record: dict) -> str | None:
    """Why a record cannot become a triplet before running anything, or None."""
    from ..executor import DEFAULT_FORBIDDEN
    from ..executor.checks import find_forbidden

    code, generator = record.get("code_sample", ""), record.get("input_generator", "")
    if len(code) > MAX_PROGRAM_CHARS:
        return "program too long"
    try:
        tree, gen_tree = ast.parse(code), ast.parse(generator)
    except (SyntaxError, ValueError):
        return "syntax"
    modules = _imports(tree) | (_imports(gen_tree) - {"random"})  # the generator is given a Random
    if modules - set(sys.stdlib_module_names):
        return "non-stdlib import"
    if modules & _IO_MODULES:
        return "file or process access"
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    names |= {n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)}
    if names & _IO_CALLS:
        return "file or process access"
    if find_forbidden(tree, DEFAULT_FORBIDDEN):
        return "forbidden name"
    if "f" in names or any(isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == "f" for n in ast.walk(tree)):
        return "uses the name f"
    mains = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main_solution"]
    if len(mains) != 1:
        return "no main_solution"
    args = mains[0].args
    if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs:
        return "main_solution signature"
    if not any(isinstance(n, ast.FunctionDef) and n.name == "generate_inputs" for n in gen_tree.body):
        return "no generate_inputs"
    return None


def _parameters(code: str) -> list[str]:
    main = next(n for n in ast.parse(code).body if isinstance(n, ast.FunctionDef) and n.name == "main_solution")
    return [a.arg for a in main.args.args]


def _generation_program(record: dict) -> str:
    """Sandbox program: f(seed) -> (positional argument source, repr of the output)."""
    params = _parameters(record["code_sample"])
    return (
        "from random import Random\n\n" + record["code_sample"] + "\n\n" + record["input_generator"] + "\n\n"
        "def f(seed):\n"
        "    inputs = generate_inputs(Random(seed))\n"
        f"    names = {params!r}\n"
        "    if set(inputs) != set(names):\n"
        "        raise KeyError('generator and main_solution disagree on the arguments')\n"
        "    args = ', '.join(repr(inputs[name]) for name in names)\n"
        "    return args, repr(main_solution(*[inputs[name] for name in names]))\n"
    )


def triplet_program(record: dict) -> str:
    """The record's program with its entry renamed to f."""
    return re.sub(r"\bmain_solution\b", "f", record["code_sample"]).strip() + "\n"


def build_triplets(count: int, executor, *, seed: int = 0, records: list[dict] | None = None,
                   timeout_s: float = 10.0) -> tuple[list[Triplet], dict[str, int]]:
    """The first `count` records (in seeded order) that make valid triplets, and drop counts by reason."""
    from ..executor import values_equal

    records = load_records() if records is None else records
    order = list(range(len(records)))
    random.Random(f"codeio/{seed}").shuffle(order)
    candidates = [(j, records[i]) for j, i in enumerate(order)]
    dropped: dict[str, int] = {}
    triplets: list[Triplet] = []

    def drop(reason: str) -> None:
        dropped[reason] = dropped.get(reason, 0) + 1

    position = 0
    while len(triplets) < count and position < len(candidates):
        batch = []
        while len(batch) < max(8, 2 * (count - len(triplets))) and position < len(candidates):
            j, record = candidates[position]
            position += 1
            reason = static_reason_to_drop(record)
            if reason:
                drop(reason)
            else:
                batch.append((j, record))
        generated = executor.run_many([(_generation_program(r), repr(seed * 100003 + j)) for j, r in batch],
                                      timeout_s=timeout_s)
        pending = []
        for (j, record), result in zip(batch, generated):
            if not result.ok:
                drop(f"generation {result.error}")
                continue
            try:
                args, output = ast.literal_eval(result.output)
            except (ValueError, SyntaxError, TypeError):
                drop("generation unrepresentable")
                continue
            if len(args) > MAX_IO_CHARS or len(output) > MAX_IO_CHARS:
                drop("input or output too long")
                continue
            pending.append(Triplet(triplet_program(record), args, output, source=f"codeio[{order[j]}]"))
        checked = executor.run_many([(t.program, t.input) for t in pending], timeout_s=timeout_s)
        for triplet, result in zip(pending, checked):
            if not (result.ok and result.roundtrip):
                drop(f"rerun {result.error or 'unrepresentable'}")
            elif not values_equal(result.output, triplet.output):
                drop("nondeterministic")
            elif len(triplets) < count:
                triplets.append(triplet)
    return triplets, dropped
