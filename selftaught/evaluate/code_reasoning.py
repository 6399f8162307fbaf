"""Code reasoning in the CRUXEval style, on (program, input, output) triplets.

A triplet is AZR's (docs/reference.md §3): `program` defines an entry function `f`,
`input` is the argument list as Python literal source (what goes inside
`f(...)`), `output` is repr(f(input)). Two tasks per triplet:

- output prediction (CRUXEval-O, AZR deduction): shown p and i, answer o;
  correct when the answer is a literal equal to o (`values_equal`).
- input prediction (CRUXEval-I, AZR abduction): shown p and o, answer an
  argument list; correct when running f on it in the sandbox gives a value
  equal to o: any input that works counts, not only the recorded one.

The model answers inside <answer>...</answer>; a fenced block, an
`assert f(...) == ...` line or the last non-empty line are the fall-backs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from ..data import read_jsonl
from ..errors import UserError

OUTPUT_PROMPT = (
    "Here is a Python function and an input to it.\n\n```python\n{program}\n```\n\n"
    "Input: f({input})\n\n"
    "What does f return on this input? Reason step by step, then give the exact return value as a "
    "Python literal inside <answer> </answer> tags, for example <answer>[1, 'a']</answer>."
)
INPUT_PROMPT = (
    "Here is a Python function and the value it returned.\n\n```python\n{program}\n```\n\n"
    "Output: {output}\n\n"
    "Find an input for which f returns exactly this value. Reason step by step, then give the "
    "arguments of the call f(...) as Python literals inside <answer> </answer> tags, for example "
    "<answer>3, 'abc'</answer>."
)

_ANSWER_RE = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
_FENCE_RE = re.compile(r"```[ \t]*(?:output|input|python|py|json)?[ \t]*\n(.*?)```", re.DOTALL)
_ASSERT_RE = re.compile(r"assert\s+f\((.*)\)\s*==\s*(.+)")


@dataclass(frozen=True)
class Triplet:
    program: str
    input: str
    output: str
    source: str = ""


def _strip_call(text: str) -> str:
    """'f(1, 2)' -> '1, 2' (a model often writes the whole call)."""
    text = text.strip()
    match = re.fullmatch(r"f\s*\((.*)\)", text, re.DOTALL)
    return match.group(1).strip() if match else text


def extract_code_answer(response: str, mode: str) -> str | None:
    """The answer in a response to an output (`mode='output'`) or input prediction prompt."""
    if not response or not response.strip():
        return None
    tags = [t.strip() for t in _ANSWER_RE.findall(response) if t.strip()]
    if tags:
        answer = tags[-1]
    else:
        blocks = [b.strip() for b in _FENCE_RE.findall(response) if b.strip()]
        asserts = _ASSERT_RE.findall(response)
        if asserts:
            args, value = asserts[-1]
            return _strip_call(args) if mode == "input" else value.strip()
        if blocks:
            answer = blocks[-1]
        else:
            lines = [line.strip() for line in response.strip().splitlines() if line.strip()]
            answer = lines[-1]
    answer = re.sub(r"^```\w*\s*|\s*```$", "", answer.strip())
    asserted = _ASSERT_RE.fullmatch(answer)
    if asserted:
        return _strip_call(asserted.group(1)) if mode == "input" else asserted.group(2).strip()
    if mode == "output":
        called = re.fullmatch(r"f\s*\(.*\)\s*==\s*(.+)", answer, re.DOTALL)
        return called.group(1).strip() if called else answer
    return _strip_call(answer)


def outputs_match(predicted: str | None, gold: str) -> bool:
    """A predicted output equals the gold repr; JSON spellings (true, null) are accepted too."""
    from ..executor import values_equal

    if predicted is None:
        return False
    if values_equal(predicted, gold):
        return True
    try:
        as_json = json.loads(predicted)
    except (ValueError, RecursionError):
        return False
    return values_equal(repr(as_json), gold)


def score_predictions(tasks: list[tuple[str, Triplet, str | None]], executor, timeout_s: float = 5.0) -> list[bool]:
    """Correctness of (mode, triplet, extracted answer) triples; input predictions run in the sandbox."""
    verdicts: list[bool | None] = []
    runs: list[tuple[str, str]] = []
    for mode, triplet, answer in tasks:
        if answer is None:
            verdicts.append(False)
        elif mode == "output":
            verdicts.append(outputs_match(answer, triplet.output))
        else:
            verdicts.append(None)
            runs.append((triplet.program, answer))
    results = iter(executor.run_many(runs, timeout_s=timeout_s) if runs else [])
    out = []
    for (mode, triplet, _), verdict in zip(tasks, verdicts):
        if verdict is None:
            result = next(results)
            verdict = bool(result.ok and result.output is not None and outputs_match(result.output, triplet.output))
        out.append(verdict)
    return out


# ------------------------------------------------------------ user triplet files

_PROGRAM_FIELDS = ("program", "code", "snippet")


def _pairs(row: dict) -> list[tuple[str, str]] | None:
    """(input, output) pairs of a row: `input`/`output`, or `inputs`/`outputs` lists (AZR induction rows)."""
    if "input" in row or "output" in row:
        return [(row.get("input"), row.get("output"))]
    inputs, outputs = row.get("inputs"), row.get("outputs")
    if isinstance(inputs, list) and isinstance(outputs, list) and inputs and len(inputs) == len(outputs):
        return list(zip(inputs, outputs))
    return None


def load_triplets(path: Path) -> list[Triplet]:
    """Triplets from JSONL rows `{program, input, output}`, as AZR's buffers export them
    (`output_dir/buffers/*.jsonl`); a row with `inputs`/`outputs` lists (induction) gives one
    triplet per pair; `code`/`snippet` are accepted for `program`. A bad row is a UserError."""
    triplets = []
    for number, where, row in read_jsonl(path, "benchmark file"):
        if not isinstance(row, dict):
            raise UserError(f"{where}: expected a JSON object with program, input and output")
        program = next((row[k] for k in _PROGRAM_FIELDS if k in row), None)
        pairs = _pairs(row)
        if not (isinstance(program, str) and pairs and all(
                isinstance(v, str) and v.strip() for pair in pairs for v in pair)):
            raise UserError(f"{where}: a triplet row needs string fields program, input and output "
                            f"(keys: {sorted(row)})")
        if not re.search(r"^def\s+f\s*\(", program, re.MULTILINE):
            raise UserError(f"{where}: the program must define an entry function f")
        triplets += [Triplet(program, i, o, source=f"{path.name}:{number}") for i, o in pairs]
    if not triplets:
        raise UserError(f"benchmark file {path} has no rows")
    return triplets
