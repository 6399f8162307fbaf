"""The synthetic pretraining corpus of `selftaught-tiny`, from the project's own
generators only.

(a) Arithmetic and short word problems with a brief worked solution ending in
    \\boxed{answer}, in the prompt format of the Intuitor/GRPO recipes.
(b) Small Python functions in exactly the prompt/response formats of the AZR roles
    (deduction, abduction, induction × proposer, solver), rendered by the same
    functions self-play uses, with correct answers computed by running the code.

Only the train split of each generator is used; the held-out splits are disjoint by
construction (`data.arithmetic.split_of`, `data.programs.split_of`).
"""

from __future__ import annotations

import random

from ..azr.prompts import proposer_prompt, response, solver_prompt, wrap_prompt
from ..azr.tasks import ONE_PAIR_TYPES, Task
from ..data import arithmetic, programs
from ..data.arithmetic import ARITHMETIC_CONTEXT
from ..data.trace import worked_trace
from .pretrain import Document


FAMILY_MESSAGES = {
    "arithmetic": "f does arithmetic with its numbers.",
    "conditional": "f compares its input and picks a branch.",
    "loop": "f repeats a step n times.",
    "list": "f works on a list of numbers.",
    "string": "f transforms a word.",
    "dict": "f works on a dictionary of numbers.",
}


PLAIN_THOUGHT = "I read the task and work it out."


def _answer(*pairs: tuple[str, str], thought: str = PLAIN_THOUGHT) -> str:
    return response(thought, *pairs)


def arithmetic_documents(n: int, seed: int, difficulty: int = 1) -> list[Document]:
    return [Document(ARITHMETIC_CONTEXT.format(prompt=p.prompt), " " + p.solution)
            for p in arithmetic.generate(n, split="train", seed=seed, difficulty=difficulty)]


def _as_task(task_type: str, item: programs.ProgramTask, count: int = 1, first: int = 0) -> Task:
    inputs, outputs = item.inputs[first:first + count], item.outputs[first:first + count]
    return Task(task_type, item.program, inputs, outputs,
                FAMILY_MESSAGES[item.family] if task_type == "induction" else "")


def deduction_documents(item: programs.ProgramTask, examples: list[int]) -> list[Document]:
    """Deduction solver documents whose thinking is the worked execution trace
    (`data.trace`), one per example index: running code in the head is what a
    small model cannot learn from bare answers."""
    documents = []
    for index in examples:
        task = _as_task("deduction", item, first=index)
        trace = worked_trace(item.program, task.inputs[0])
        response = _answer(("output", task.outputs[0]), thought=trace or PLAIN_THOUGHT)
        documents.append(Document(wrap_prompt(solver_prompt(task)), response))
    return documents


def azr_documents(items: list[programs.ProgramTask], seed: int, max_references: int = 2,
                  induction_inputs: int = 4, timeout_s: float = 2.0, rotation: int = 0,
                  deduction_examples: int = 1) -> list[Document]:
    """Documents of every (task type × role) with its ideal response, per program.
    `rotation` picks which of a program's examples the solver documents show (so
    repeats show different calls); deduction gets `deduction_examples` of them."""
    rng = random.Random(seed)
    documents = []
    for item in items:
        if len(item.inputs) < induction_inputs:
            continue
        count = len(item.inputs)
        first_in = item.inputs[rotation % count]
        documents += deduction_documents(item, [(rotation * deduction_examples + j) % count
                                                for j in range(deduction_examples)])
        solver_cases = [
            (_as_task("abduction", item, first=rotation % count), ("input", first_in)),
            (_as_task("induction", item, induction_inputs), ("python", item.program)),
        ]
        for task, block in solver_cases:
            documents.append(Document(wrap_prompt(solver_prompt(task)), _answer(block)))
        for task_type in ONE_PAIR_TYPES:
            references = [_as_task(task_type, other)
                          for other in rng.sample(items, rng.randint(0, max_references))]
            context = wrap_prompt(proposer_prompt(task_type, references=references, timeout_s=timeout_s))
            documents.append(Document(context, _answer(("python", item.program), ("input", first_in))))
        context = wrap_prompt(proposer_prompt("induction", program=item.program, num_inputs=induction_inputs,
                                              timeout_s=timeout_s))
        inputs = [("input", i) for i in item.inputs[:induction_inputs]]
        documents.append(Document(context, _answer(*inputs, ("message", FAMILY_MESSAGES[item.family]))))
    return documents


def held_out_tasks(n: int, seed: int, induction_inputs: int = 4) -> dict[str, list[Task]]:
    """Tasks of every type from the held-out program split (for evaluation only)."""
    items = programs.generate(n, split="heldout", seed=seed, examples=induction_inputs)
    return {"deduction": [_as_task("deduction", item) for item in items],
            "abduction": [_as_task("abduction", item) for item in items],
            "induction": [_as_task("induction", item, induction_inputs) for item in items]}


def build_corpus(*, arithmetic_n: int, programs_n: int, seed: int, induction_inputs: int = 4,
                 arithmetic_repeats: int = 1, azr_repeats: int = 1, program_examples: int = 4,
                 deduction_examples: int = 1) -> list[Document]:
    """The shuffled corpus. Repeats balance compute: arithmetic documents are short
    but their facts take many passes to learn; AZR documents are long but mostly
    format to copy (each repeat re-draws the proposers' references and shows the
    solvers other examples of each program: `program_examples` per program, of
    which induction shows the first `induction_inputs`)."""
    examples = max(program_examples, induction_inputs)
    items = programs.generate(programs_n, split="train", seed=seed, examples=examples)
    documents = arithmetic_documents(arithmetic_n, seed) * arithmetic_repeats  # the same problems each pass
    for r in range(azr_repeats):
        documents += azr_documents(items, seed + r, induction_inputs=induction_inputs, rotation=r,
                                   deduction_examples=deduction_examples)
    random.Random(seed).shuffle(documents)
    return documents
