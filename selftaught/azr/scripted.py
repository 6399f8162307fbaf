"""A stand-in policy that writes canned, well-formed (and some deliberately bad) AZR
responses, so the whole self-play loop can be exercised without a capable model.

`ScriptedSampler` is a `RolloutSampler`: its `sample` has the contract's signature and returns a real
`Rollout` tokenised with the real tokenizer, so the trainer scores and updates on
it as usual. It recognises prompts by their titles (`prompts.prompt_role`) and
the programs it knows by their text. Proposals cycle through a few valid programs
and a few invalid ones (syntax error, no `f`, a forbidden import, a crash); solver
answers are right, wrong or malformed at random (seeded), so solve rates fall
strictly between 0 and 1 and the learnability reward is exercised.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from ..rollout import Rollout, RolloutSampler, rollout_from_token_rows
from .prompts import prompt_role, response
from .tasks import IDENTITY_INPUT, IDENTITY_MESSAGE, IDENTITY_OUTPUT, IDENTITY_PROGRAM


@dataclass(frozen=True)
class CannedTask:
    program: str
    input: str
    output: str
    other_input: str  # a different input with the same output (abduction accepts it)
    more_inputs: tuple[str, ...]  # for the induction proposer
    message: str


CANNED = (
    CannedTask(IDENTITY_PROGRAM, IDENTITY_INPUT, IDENTITY_OUTPUT, '"Hello world"',
               ("1", "'x'", "[1, 2]", "None"), IDENTITY_MESSAGE),
    CannedTask("def f(a, b):\n    return a * b + 1", "3, 4", "13", "4, 3",
               ("1, 2", "2, 5", "0, 7", "3, 3"), "Multiply the two numbers, then add one."),
    CannedTask("def f(xs):\n    return sorted(set(xs))", "[3, 1, 3, 2]", "[1, 2, 3]", "[2, 3, 1]",
               ("[1, 1]", "[5, 4]", "[]", "[2, 9, 2]"), "The distinct values, smallest first."),
    CannedTask("def f(n):\n    return n % 3", "7", "1", "4",
               ("0", "5", "9", "11"), "The remainder after dividing by three."),
)

INVALID_PROPOSALS = (
    ("def f(a)\n    return a", "1"),  # syntax
    ("def g(a):\n    return a", "1"),  # no entry function
    ("import random\ndef f(a):\n    return random.random()", "1"),  # forbidden
    ("def f(a):\n    return 1 // a", "0"),  # error: ZeroDivisionError
)

WRONG_PROGRAM = "def f(*args):\n    return 0"


def _answer(*pairs: tuple[str, str]) -> str:
    return response("Let me think it through.", *pairs)


class ScriptedSampler(RolloutSampler):
    def __init__(self, tokenizer, *, max_prompt_length: int = 4096, max_completion_length: int = 256,
                 seed: int = 0, correct_prob: float = 0.5, malformed_prob: float = 0.1,
                 invalid_proposal_prob: float = 0.25):
        self.tokenizer = tokenizer
        self.max_prompt_length, self.max_completion_length = max_prompt_length, max_completion_length
        self.rng = random.Random(seed)
        self.correct_prob, self.malformed_prob = correct_prob, malformed_prob
        self.invalid_proposal_prob = invalid_proposal_prob
        self._next = 0

    @staticmethod
    def _known(prompt: str, field: str) -> CannedTask | None:
        hits = [c for c in CANNED if getattr(c, field) in prompt]
        return max(hits, key=lambda c: len(getattr(c, field))) if hits else None

    def respond(self, prompt: str) -> str:
        role = prompt_role(prompt)
        if role is None:
            return "I do not know."
        task_type, role = role
        if role == "propose":
            return self._propose(task_type, prompt)
        return self._solve(task_type, prompt)

    def _propose(self, task_type: str, prompt: str) -> str:
        if self.rng.random() < self.malformed_prob:
            return " I am not sure what to write."
        if task_type == "induction":
            program_part = prompt.split("### Program", 1)[-1]
            canned = self._known(program_part, "program")
            if canned is None:
                return " No idea. </think>\n<answer>\n</answer>"
            inputs = (canned.input,) + canned.more_inputs
            return _answer(*[("input", i) for i in inputs], ("message", canned.message))
        if self.rng.random() < self.invalid_proposal_prob:
            program, inputs = self.rng.choice(INVALID_PROPOSALS)
        else:
            canned = CANNED[self._next % len(CANNED)]
            self._next += 1
            program, inputs = canned.program, canned.input
        return _answer(("python", program), ("input", inputs))

    def _solve(self, task_type: str, prompt: str) -> str:
        canned = self._known(prompt, "message" if task_type == "induction" else "program")
        draw = self.rng.random()
        if canned is None or draw < self.malformed_prob:
            return " Hmm. </think> The answer is probably 42."
        right = draw < self.malformed_prob + (1 - self.malformed_prob) * self.correct_prob
        if task_type == "deduction":
            return _answer(("output", canned.output if right else "'wrong'"))
        if task_type == "abduction":
            return _answer(("input", canned.other_input if right else canned.more_inputs[0]))
        return _answer(("python", canned.program if right else WRONG_PROGRAM))

    @torch.no_grad()
    def sample(self, prompts: list[str], num_generations: int = 1, greedy: bool = False,
               extras: dict | None = None) -> Rollout:
        tok = self.tokenizer
        rows = []
        for prompt in prompts:
            for _ in range(num_generations):
                text = self.respond(prompt)
                row = tok(text, add_special_tokens=False)["input_ids"][:self.max_completion_length - 1]
                rows.append(row + [tok.eos_token_id])
        return rollout_from_token_rows(tok, prompts, rows, num_generations, self.max_prompt_length, extras)
