"""The pretraining corpus of `selftaught-tiny-math`: long addition written two ways.

Every document is a problem of the `pretrain` split of `data.addition` (never an
RL prompt, never a held-out problem) with its answer, in one of two contexts:

- `ANSWER_CONTEXT` ("Question: ...\\nAnswer:"), the context RL and evaluation use.
  A `procedure_share` of these documents answers with the column procedure, the
  rest with a bare number, of which `wrong_share` are off by one in one digit (as
  careless answers in real text are). The model learns both habits and, sampled,
  takes the procedure about `procedure_share` of the time;
- `COLUMNS_CONTEXT` ("...\\nWork it out in columns.\\nAnswer:"), always answered
  with the procedure. These teach the procedure's steps without changing how often
  the plain context picks it: the skill is in the model, the habit is weak.

So the base model knows a method that generalises (the procedure) and a shortcut
that does not (a 3-digit sum cannot be memorised off 6/10 of 3.2 million problems,
and its bare answers were sometimes wrong), and picks the reliable way only part of
the time: what reinforcement learning, with labels or without, can change.
"""

from __future__ import annotations

import random
from typing import Callable

from ..data import addition
from ..data.arithmetic import ARITHMETIC_CONTEXT
from .near_miss import near_miss
from .pretrain import Document

ANSWER_CONTEXT = ARITHMETIC_CONTEXT
"""The plain context (the one `tiny` also uses): the tiny-math recipes, the demo and evaluation."""
COLUMNS_CONTEXT = "Question: {prompt}\nWork it out in columns.\nAnswer:"


def bare_answer(value: int, rng: random.Random) -> str:
    """tiny-math's answer without the procedure: the number alone (draws nothing from `rng`)."""
    return addition.bare_solution(value)


def addition_corpus(n: int, *, procedure_share: float, wrong_share: float, columns_share: float,
                    seed: int = 0, mark: str = addition.PROCEDURE_MARK, columns_context: str = COLUMNS_CONTEXT,
                    failure: Callable[[int, random.Random], str] = bare_answer) -> list[Document]:
    """`n` answer-context documents plus `columns_share · n` columns-context ones, shuffled.
    `mark` opens every procedure; `columns_context` is the context that always asks for it;
    `failure(guess, rng)` writes the answers that skip the procedure (`tiny.failure_modes`)."""
    rng = random.Random(seed)
    documents = []
    for problem in addition.generate(n, split="pretrain", seed=seed):
        if rng.random() < procedure_share:
            solution = addition.procedure_solution(problem.a, problem.b, mark)
        else:
            value = problem.a + problem.b
            solution = failure(near_miss(value, rng) if rng.random() < wrong_share else value, rng)
        documents.append(Document(ANSWER_CONTEXT.format(prompt=problem.prompt), " " + solution))
    for problem in addition.generate(int(n * columns_share), split="pretrain", seed=seed + 1):
        documents.append(Document(columns_context.format(prompt=problem.prompt),
                                  " " + addition.procedure_solution(problem.a, problem.b, mark)))
    rng.shuffle(documents)
    return documents
