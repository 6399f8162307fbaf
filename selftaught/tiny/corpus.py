"""The pretraining corpus of `selftaught-tiny`: chain programs in Absolute Zero's formats, and additions.

Like `tiny-math`, `tiny` is built to have a reliable procedure and a weak habit of using
it, so that reinforcement learning has something to select:

- **Chain programs** (`data.chains`, pretrain split only): straight-line arithmetic on
  digits, in exactly the prompt and response formats self-play uses (`azr.prompts`).
  The deduction solver answers either *step by step*, with the worked execution trace
  (`data.trace`), or with a *bare* output ("The answer is 23."), of which `wrong_share`
  are careless near misses. The abduction solver likewise answers step by step, undoing
  the chain one line at a time (`chains.inversion`), or with a bare guess. A `step_share`
  of plain solver prompts take the procedure; further documents whose prompt adds "Work
  it out step by step." always do: they teach the skill without strengthening the habit.
  The proposers write new chains and inputs. Each line of a procedure is one copied
  statement and one fact about numbers below 100, so the procedure carries over to
  programs the corpus never held.
- **Additions** (`data.addition`, pretrain split), written the way `tiny-math` knows
  them: the column procedure or a bare answer, with the same two contexts.

Every procedure, in both domains, opens with the same words, `STEP_MARK`
("Step by step:"), and every bare answer with "The answer is". The choice between
them is one decision the two domains share: whatever RL teaches about it in one
domain can show in the other, which is what the transfer measurements look for.

Only the pretrain splits are used: no dev or held-out program, no RL prompt, no held-out
addition is ever a document (tests/tiny/test_builtin_model.py checks).
"""

from __future__ import annotations

import ast
import random

from ..azr.prompts import proposer_prompt, response, solver_prompt, wrap_prompt
from ..azr.tasks import ONE_PAIR_TYPES, TASK_TYPE_SPECS, Task
from ..data import chains, programs
from ..data.trace import worked_trace
from .addition_corpus import addition_corpus
from .near_miss import near_miss
from .pretrain import Document

STEP_MARK = "Step by step:"
"""How every procedure `tiny` knows opens (deduction, abduction, addition)."""
BARE_OPENER = "The answer is"
"""How every bare answer opens."""
STEP_CUE = "Work it out step by step."
"""The line that asks for the procedure: in the corpus only, never in RL or evaluation prompts."""
STEP_CONTEXT = "Question: {prompt}\n" + STEP_CUE + "\nAnswer:"
"""The additions context that always takes the procedure (`tiny-math`'s columns context)."""
PROCEDURE_TYPES = ONE_PAIR_TYPES
"""The task types `tiny` knows a procedure for: deduction (trace) and abduction (inversion)."""

FAMILY_MESSAGES = {
    "arithmetic": "f does arithmetic with its numbers.",
    "conditional": "f compares its input and picks a branch.",
    "loop": "f repeats a step n times.",
    "list": "f works on a list of numbers.",
    "string": "f transforms a word.",
    "dict": "f works on a dictionary of numbers.",
    "chain": "f applies one arithmetic step after another.",
}
PROPOSER_THOUGHT = "I write a new program and an input for it."


def works_step_by_step(completion: str) -> bool:
    """Whether a completion takes the procedure (it opens with `STEP_MARK`)."""
    return completion.lstrip().startswith(STEP_MARK)


def as_task(task_type: str, item: programs.ProgramTask, count: int = 1, first: int = 0) -> Task:
    """The AZR task of `item` on `count` of its examples from `first` on."""
    inputs, outputs = item.inputs[first:first + count], item.outputs[first:first + count]
    return Task(task_type, item.program, inputs, outputs,
                FAMILY_MESSAGES[item.family] if task_type == "induction" else "")


def cued(body: str, task_type: str) -> str:
    """A solver prompt body that also asks for the procedure."""
    instruction = TASK_TYPE_SPECS[task_type].solver_instruction
    return body.replace(instruction, f"{instruction} {STEP_CUE}", 1)


def procedure_answer(task_type: str, item: programs.ProgramTask, example: int) -> tuple[str, str] | None:
    """(worked steps, answer) of the procedure for one example; None where it has none."""
    if task_type == "deduction":
        steps = worked_trace(item.program, item.inputs[example])
        return (steps, item.outputs[example]) if steps else None
    if item.family == chains.FAMILY:
        inverted = chains.inversion(item.program, ast.literal_eval(item.outputs[example]))
        if inverted is None:
            return None
        steps, found = inverted
    else:
        steps, found = programs.inversion(item, example)
    return "\n".join(steps), found


def bare_answer(task_type: str, item: programs.ProgramTask, example: int, wrong: bool, rng: random.Random) -> str:
    """The answer written without working: right, or a careless near miss."""
    if task_type == "deduction":
        value = ast.literal_eval(item.outputs[example])
        return repr(near_miss(value, rng)) if wrong else item.outputs[example]
    arguments = ast.literal_eval(f"({item.inputs[example]},)")
    if wrong:
        arguments = near_miss(arguments, rng)
    return ", ".join(repr(a) for a in arguments)


def solver_documents(task_type: str, item: programs.ProgramTask, example: int, *, step_share: float,
                     wrong_share: float, cue: bool, rng: random.Random) -> list[Document]:
    """One solver document of `task_type` for one example: procedure or bare answer (always the
    procedure when `cue`)."""
    kind = TASK_TYPE_SPECS[task_type].solver_answers
    body = solver_prompt(as_task(task_type, item, first=example))
    procedure = procedure_answer(task_type, item, example)
    if cue or (procedure is not None and rng.random() < step_share):
        if procedure is None:
            return []
        steps, answer = procedure
        return [Document(wrap_prompt(cued(body, task_type) if cue else body),
                         response(f"{STEP_MARK}\n{steps}", (kind, answer)))]
    answer = bare_answer(task_type, item, example, rng.random() < wrong_share, rng)
    return [Document(wrap_prompt(body), response(f"{BARE_OPENER} {answer}.", (kind, answer)))]


def proposer_documents(item: programs.ProgramTask, pool: list[programs.ProgramTask], rng: random.Random, *,
                       max_references: int, timeout_s: float,
                       task_types: tuple[str, ...] = PROCEDURE_TYPES) -> list[Document]:
    """The deduction and abduction proposers' documents for one program (those of `task_types`): each
    writes it and an input, with references drawn from `pool`."""
    documents = []
    for task_type in (t for t in ONE_PAIR_TYPES if t in task_types):
        references = [as_task(task_type, other) for other in rng.sample(pool, rng.randint(0, max_references))]
        context = wrap_prompt(proposer_prompt(task_type, references=references, timeout_s=timeout_s))
        documents.append(Document(context, response(PROPOSER_THOUGHT, ("python", item.program),
                                                    ("input", rng.choice(item.inputs)))))
    return documents


def example_documents(item: programs.ProgramTask, task_types: tuple[str, ...], *, step_share: float,
                      wrong_share: float, cue_share: float, rng: random.Random) -> list[Document]:
    """Per example of `item` and per type, a plain solver document and, with probability `cue_share`,
    a cued one."""
    documents = []
    for example in range(len(item.inputs)):
        for task_type in task_types:
            documents += solver_documents(task_type, item, example, step_share=step_share,
                                          wrong_share=wrong_share, cue=False, rng=rng)
            if rng.random() < cue_share:
                documents += solver_documents(task_type, item, example, step_share=1.0,
                                              wrong_share=wrong_share, cue=True, rng=rng)
    return documents


def chain_documents(items: list[programs.ProgramTask], *, seed: int, step_share: float, wrong_share: float,
                    cue_share: float, proposer_share: float, task_types: tuple[str, ...] = ("deduction",),
                    max_references: int = 2, timeout_s: float = 2.0) -> list[Document]:
    """Documents of chain programs (`data.chains`) for `task_types` (deduction, abduction): per example
    and type, a plain solver document (and a cued one with probability `cue_share`); for
    `proposer_share` of the programs, the proposers writing it (references from the first 200 programs)."""
    rng = random.Random(seed)
    documents = []
    for item in items:
        documents += example_documents(item, task_types, step_share=step_share, wrong_share=wrong_share,
                                       cue_share=cue_share, rng=rng)
        if rng.random() < proposer_share:
            documents += proposer_documents(item, items[:200], rng, max_references=max_references,
                                            timeout_s=timeout_s, task_types=task_types)
    return documents


def build_corpus(*, programs_n: int, examples: int, additions_n: int, seed: int, step_share: float = 0.3,
                 wrong_share: float = 0.5, cue_share: float = 0.5, proposer_share: float = 0.2,
                 task_types: tuple[str, ...] = PROCEDURE_TYPES, max_references: int = 2,
                 timeout_s: float = 2.0) -> list[Document]:
    """The shuffled corpus of `tiny`: `programs_n` pretrain chain programs with `examples` inputs each
    (`chain_documents`), and `additions_n` plain-context additions (plus `cue_share` as many in the
    step context) written with the same `step_share` and `wrong_share`."""
    items = chains.generate(programs_n, split="pretrain", seed=seed, examples=examples)
    documents = chain_documents(items, seed=seed, step_share=step_share, wrong_share=wrong_share, cue_share=cue_share,
                                proposer_share=proposer_share, task_types=task_types,
                                max_references=max_references, timeout_s=timeout_s)
    if additions_n:
        documents += addition_corpus(additions_n, procedure_share=step_share, wrong_share=wrong_share,
                                     columns_share=cue_share, seed=seed, mark=STEP_MARK, columns_context=STEP_CONTEXT)
    random.Random(seed).shuffle(documents)
    return documents


def chain_tasks(n: int, seed: int = 0, split: str = "heldout",
                task_types: tuple[str, ...] = PROCEDURE_TYPES) -> dict[str, list[Task]]:
    """Tasks of each of `task_types` from `n` distinct chain programs of `split` (`data.chains`)."""
    items = chains.generate(n, split=split, seed=seed)
    return {task_type: [as_task(task_type, item) for item in items] for task_type in task_types}
