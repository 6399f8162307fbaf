"""Whole-paragraph tokens for the fixed text of the Absolute Zero prompts.

Every AZR prompt repeats a few hundred characters of fixed text (the R1 preamble, the task
title, the instructions, the rules, the answer format). `tiny`'s tokenizer gives each such
paragraph one token of its own, so a 2M-parameter model spends its context and compute on
the program, the input and its own reasoning, not on re-reading boilerplate: a solver prompt
is about 40 tokens instead of 170. The prompt text is unchanged; only how `tiny` splits it.
The paragraphs are found by rendering every prompt kind for two different tasks and keeping
what they share, so they follow `azr.prompts` wherever it changes.
"""

from __future__ import annotations

from ..azr.prompts import proposer_prompt, solver_prompt, wrap_prompt
from ..azr.tasks import TASK_TYPES
from ..data import programs
from .corpus import as_task, cued


def _prompt_pairs(induction_inputs: int, timeout_s: float) -> list[tuple[str, str]]:
    """Each prompt kind rendered for two different programs."""
    first, second = programs.generate(2, split="pretrain", seed=0, examples=induction_inputs)
    pairs = []
    for task_type in TASK_TYPES:
        count = induction_inputs if task_type == "induction" else 1
        bodies = [solver_prompt(as_task(task_type, item, count)) for item in (first, second)]
        pairs.append(tuple(bodies))
        pairs.append(tuple(cued(body, task_type) for body in bodies))
        pairs.append(tuple(proposer_prompt(task_type, references=[as_task(task_type, item)], program=item.program,
                                           num_inputs=induction_inputs, timeout_s=timeout_s)
                           for item in (first, second)))
    return [(wrap_prompt(a), wrap_prompt(b)) for a, b in pairs]


def prompt_phrases(induction_inputs: int, timeout_s: float) -> list[str]:
    """The paragraphs ("\\n\\n"-separated) that prompts of one kind share, whatever the task: longest first."""
    phrases = set()
    for a, b in _prompt_pairs(induction_inputs, timeout_s):
        shared = set(b.split("\n\n"))
        phrases.update(p for p in a.split("\n\n") if p in shared and len(p) > 8)
    return sorted(phrases, key=lambda p: (-len(p), p))
