"""Reading proposer and solver responses. Nothing here runs model-written code.

A response reasons in `<think>…</think>` and answers in `<answer>…</answer>`; the
answer holds fenced blocks: ```python (a program), ```input (the argument list of
one call, what goes inside `f(...)`), ```output (a value), ```message (induction's
hint). Which blocks a role must write comes from its `TaskType`.

Rules (a response that breaks one is malformed, reward −1):
- the last `<answer>…</answer>` section is the answer (`<think>` is not required:
  the prompt already opens it);
- every block the role must write is there, once (the induction proposer writes
  several ```input blocks: duplicates are dropped, the first N kept), not empty;
- a solver's answer must parse as what it claims to be: an output as a Python
  expression, an input as the arguments of one call `f(...)`, a program as
  Python defining a top-level `f`. Parsing builds the syntax tree only (no eval),
  and any exception it raises (deep nesting, null bytes, ...) means malformed; the
  warnings Python gives about dubious source stay out of the log
  (`executor.checks.compile_model_code`).
Blocks of other kinds are ignored.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass, field

from ..executor.checks import compile_model_code, parse_call
from .tasks import TASK_TYPE_SPECS

_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.S)
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\r?\n(.*?)```", re.S)
_KIND_ALIASES = {"py": "python", "python3": "python"}
MAX_RESPONSE_CHARS = 100_000  # longer responses are malformed (bounds regex and ast work)


def answer_section(text: str) -> str | None:
    """The content of the last `<answer>…</answer>`, or None."""
    if not isinstance(text, str) or len(text) > MAX_RESPONSE_CHARS:
        return None
    found = _ANSWER.findall(text)
    return found[-1] if found else None


def fenced_blocks(section: str) -> list[tuple[str, str]]:
    """(kind, content) for every fenced block, in order; kinds lower-cased, aliases folded."""
    blocks = []
    for kind, content in _FENCE.findall(section):
        kind = kind.lower()
        kind = _KIND_ALIASES.get(kind, kind)
        content = textwrap.dedent(content).strip("\n") if kind == "python" else content.strip()
        blocks.append((kind, content.rstrip()))
    return blocks


@dataclass
class ParsedProposal:
    """A proposer's answer: the program and input(s) it wrote, and the message."""

    ok: bool
    reason: str | None = None
    program: str | None = None
    inputs: list[str] = field(default_factory=list)
    message: str = ""


@dataclass
class ParsedAnswer:
    """A solver's answer (text of the block its task type asks for)."""

    ok: bool
    reason: str | None = None
    value: str | None = None


def _blocks_of(blocks: list[tuple[str, str]], kind: str) -> list[str]:
    return [content for k, content in blocks if k == kind]


def _single(blocks: list[tuple[str, str]], kind: str) -> tuple[str | None, str | None]:
    found = _blocks_of(blocks, kind)
    if not found:
        return None, f"missing_block: {kind}"
    if len(found) > 1:
        return None, f"duplicate_block: {kind}"
    if not found[0].strip():
        return None, f"empty_block: {kind}"
    return found[0], None


def parse_proposal(text: str, task_type: str, num_inputs: int = 1) -> ParsedProposal:
    """Parse a proposer response for `task_type`; `num_inputs` caps induction's inputs."""
    spec = TASK_TYPE_SPECS[task_type]
    section = answer_section(text)
    if section is None:
        return ParsedProposal(False, "no_answer_tag")
    blocks = fenced_blocks(section)
    out = ParsedProposal(True)
    for kind in spec.proposer_writes:
        if kind == "input" and spec.many_inputs:
            seen, inputs = set(), []
            for content in _blocks_of(blocks, "input"):
                if content and content not in seen:
                    seen.add(content)
                    inputs.append(content)
            if not inputs:
                return ParsedProposal(False, "missing_block: input")
            out.inputs = inputs[:num_inputs]
            continue
        content, reason = _single(blocks, kind)
        if reason:
            return ParsedProposal(False, reason)
        if kind == "python":
            out.program = content
        elif kind == "input":
            out.inputs = [content]
        elif kind == "message":
            out.message = content
    return out


def _defines_f(text: str) -> bool:
    tree = compile_model_code(text, "<answer>", "exec", ast.PyCF_ONLY_AST)
    return any(isinstance(node, ast.FunctionDef) and node.name == "f" for node in tree.body)


def _well_typed(kind: str, text: str) -> bool:
    try:
        if kind == "output":
            compile_model_code(text, "<answer>", "eval", ast.PyCF_ONLY_AST)
            return True
        if kind == "input":
            parse_call(text)  # the executor's own rule for an argument list
            return True
        if kind == "python":
            return _defines_f(text)
    except Exception:  # SyntaxError, ValueError (null bytes), RecursionError, MemoryError
        return False
    return False


def parse_answer(text: str, task_type: str) -> ParsedAnswer:
    """Parse a solver response for `task_type` (the block kind its TaskType names)."""
    kind = TASK_TYPE_SPECS[task_type].solver_answers
    section = answer_section(text)
    if section is None:
        return ParsedAnswer(False, "no_answer_tag")
    content, reason = _single(fenced_blocks(section), kind)
    if reason:
        return ParsedAnswer(False, reason)
    if not _well_typed(kind, content):
        return ParsedAnswer(False, f"unparsable: {kind}")
    return ParsedAnswer(True, None, content)
