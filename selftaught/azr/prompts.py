"""Proposer and solver prompts, rendered from the `TaskType` descriptions.

One template per role, parameterised by task type: the differences between
deduction, abduction and induction live in `tasks.TASK_TYPE_SPECS`, not in copies
of the prompt text. R1 style: the model reasons in `<think>` and answers in
`<answer>` with fenced ```python / ```input / ```output / ```message blocks.
"""

from __future__ import annotations

from ..prompting import uses_chat_template
from .tasks import TASK_TYPE_SPECS, Task

R1_PREAMBLE = (
    "A conversation between User and Assistant. The Assistant first thinks the User's task through, "
    "then answers: <think> reasoning here </think> <answer> answer here </answer>."
)

PROGRAM_RULES = (
    "Rules:\n"
    "- The program defines one top-level function named `f` that takes at least one argument; "
    "helper functions go inside `f`.\n"
    "- It is deterministic: no randomness, dates or times, files, network or printing.\n"
    "- It finishes in well under {timeout:g} seconds and returns a value made of Python literals "
    "(numbers, strings, booleans, None, lists, tuples, dicts, sets).\n"
    "- An input is the argument list of one call, as Python literals: what goes inside `f(...)`, "
    "e.g. `[3, 1, 2], 'abc'`."
)

_PLACEHOLDERS = {
    "python": "def f(...):\n    ...",
    "input": "the arguments of f, e.g. [3, 1, 2], 'abc'",
    "output": "the value f returns, as a Python literal",
    "message": "your message to the solver",
}

# Solver-visible task fields: heading, block kind, value.
_FIELDS = {
    "program": ("Program", "python", lambda t: t.program),
    "input": ("Input", "input", lambda t: t.inputs[0]),
    "output": ("Output", "output", lambda t: t.outputs[0]),
    "message": ("Message", "message", lambda t: t.message),
}


def block(kind: str, content: str) -> str:
    return f"```{kind}\n{content}\n```"


def proposer_title(task_type: str) -> str:
    return f"## Task: propose a new {task_type} task"


def solver_title(task_type: str) -> str:
    return f"## Task: {TASK_TYPE_SPECS[task_type].solver_title}"


def answer_format(kinds: list[str], note: str = "") -> str:
    placeholders = blocks(*((k, _PLACEHOLDERS[k]) for k in kinds))
    return f"Answer in exactly this format{note}:\n<think> your reasoning </think>\n<answer>\n{placeholders}\n</answer>"


def blocks(*pairs: tuple[str, str]) -> str:
    """Fenced blocks, one per (kind, content), one after another."""
    return "\n".join(block(kind, content) for kind, content in pairs)


def response(thought: str, *pairs: tuple[str, str]) -> str:
    """An ideal R1-style response to a prompt that ends in <think>: the thought, then
    the answer blocks (scripted policies and the pretraining corpus write these)."""
    separator = "\n" if "\n" in thought else " "
    return f" {thought}{separator}</think>\n<answer>\n{blocks(*pairs)}\n</answer>"


def _io_pairs(pairs) -> str:
    return "\n".join(blocks(("input", i), ("output", o)) for i, o in pairs)


def _task_blocks(task: Task) -> str:
    return "\n".join([block("python", task.program), _io_pairs(zip(task.inputs, task.outputs))])


def proposer_prompt(task_type: str, *, references: list[Task] = (), program: str | None = None,
                    num_inputs: int = 1, timeout_s: float = 5.0) -> str:
    """The body of a proposer prompt (wrap it with `wrap_prompt`).

    references: K tasks from this type's buffer (deduction/abduction).
    program: the program the induction proposer writes inputs for.
    """
    spec = TASK_TYPE_SPECS[task_type]
    wants = []
    for kind in spec.proposer_writes:
        if kind == "python":
            wants.append("a new program")
        elif kind == "input":
            wants.append(f"{num_inputs} different inputs for it that together show what it does"
                         if spec.many_inputs else "an input for it")
        elif kind == "message":
            wants.append("a short message that hints at what the program does without giving the code away")
    ask = "Write " + ", ".join(wants[:-1]) + (" and " if len(wants) > 1 else "") + wants[-1] + "."
    parts = [proposer_title(task_type), spec.proposer_goal + " " + ask
             + (" Make a task that is challenging but solvable, and different from the reference tasks."
                if spec.uses_references else ""),
             PROGRAM_RULES.format(timeout=timeout_s)]
    if spec.uses_references and references:
        shown = "\n\n".join(f"Reference {n}:\n{_task_blocks(t)}" for n, t in enumerate(references, 1))
        parts.append("### Reference tasks\n" + shown)
    if spec.given_program:
        parts.append("### Program\n" + block("python", program or ""))
    kinds = list(spec.proposer_writes)
    note = f" (one ```input block per input, {num_inputs} in all)" if spec.many_inputs else ""
    parts.append(answer_format(kinds, note))
    return "\n\n".join(parts)


def solver_prompt(task: Task) -> str:
    """The body of a solver prompt for `task` (wrap it with `wrap_prompt`)."""
    spec = TASK_TYPE_SPECS[task.type]
    parts = [solver_title(task.type), spec.solver_instruction]
    for name in spec.solver_shows:
        if name == "pairs":
            parts.append("### Examples\n" + _io_pairs(task.shown_pairs()))
        else:
            heading, kind, value = _FIELDS[name]
            parts.append(f"### {heading}\n" + block(kind, value(task)))
    parts.append(answer_format([spec.solver_answers]))
    return "\n\n".join(parts)


def wrap_prompt(body: str, tokenizer=None, use_chat_template: str = "never") -> str:
    """The exact text the model is conditioned on: R1 plain template or the chat template."""
    if uses_chat_template(tokenizer, use_chat_template, "azr.use_chat_template"):
        messages = [{"role": "user", "content": f"{R1_PREAMBLE}\n\n{body}"}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return f"{R1_PREAMBLE}\n\nUser: {body}\n\nAssistant: <think>"


def prompt_role(prompt: str) -> tuple[str, str] | None:
    """(task type, role) of a rendered prompt, from its title; None if it is not ours.

    Used by stand-in samplers (tests); the earliest title wins, so text inside
    shown programs cannot change the answer.
    """
    found = []
    for task_type in TASK_TYPE_SPECS:
        for role, title in (("propose", proposer_title(task_type)), ("solve", solver_title(task_type))):
            at = prompt.find(title + "\n")
            if at >= 0:
                found.append((at, task_type, role))
    if not found:
        return None
    _, task_type, role = min(found)
    return task_type, role
