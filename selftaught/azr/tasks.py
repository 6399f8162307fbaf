"""Tasks and the three task types (docs/reference.md §3), described once as data.

A task is a program `p` (Python source defining `f`), inputs `i` (argument-list
source: what goes inside `f(...)`) and outputs `o = repr(p(i))`. Deduction and
abduction tasks have one (i, o) pair, induction tasks several plus a message.

Each `TaskType` says what the proposer writes, what the solver is shown and what
it answers; prompts (`prompts.py`), parsing (`parsing.py`) and answer checking
(`checking.py`) all read these descriptions instead of keeping a copy per type.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal


IDENTITY_PROGRAM = "def f(a):\n    return a"
IDENTITY_INPUT = "'Hello world'"
IDENTITY_OUTPUT = "'Hello world'"
IDENTITY_MESSAGE = "f gives back what it is given."


@dataclass
class Task:
    """One validated task. `inputs`/`outputs` are aligned lists of sources/reprs."""

    type: str
    program: str
    inputs: list[str]
    outputs: list[str]
    message: str = ""
    step: int = 0
    """Rollout in which it was proposed (0 = the seed or the seeding phase)."""

    def key(self) -> tuple:
        """Identity in a buffer: the same program on the same inputs is the same task."""
        return (self.program.strip(), tuple(i.strip() for i in self.inputs))

    def shown_pairs(self) -> list[tuple[str, str]]:
        """Induction: the pairs the solver sees, the first half (at least one).

        The answer is checked on every pair, shown and held out (see `checking.py`).
        """
        pairs = list(zip(self.inputs, self.outputs))
        return pairs[:max(1, len(pairs) // 2)]

    def to_json(self) -> dict:
        """Export form: `input`/`output` for one pair, `inputs`/`outputs` for induction."""
        row = {"program": self.program}
        if self.type == "induction":
            row.update(inputs=list(self.inputs), outputs=list(self.outputs))
        else:
            row.update(input=self.inputs[0], output=self.outputs[0])
        row.update(message=self.message, step=self.step)
        return row

    def state(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_state(state: dict) -> "Task":
        return Task(**state)


def seed_task(task_type: str) -> Task:
    """The only data AZR starts from: the identity program on "Hello world"."""
    return Task(task_type, IDENTITY_PROGRAM, [IDENTITY_INPUT], [IDENTITY_OUTPUT],
                IDENTITY_MESSAGE if task_type == "induction" else "", 0)


@dataclass(frozen=True)
class TaskType:
    """What each role does for one task type.

    proposer_writes: the blocks in the proposer's answer ("python", "input",
        "message"); `many_inputs` means N ```input blocks instead of one.
    given_program: the proposer is handed a program from the buffers (induction).
    uses_references: the proposer is shown K tasks from its own buffer.
    solver_shows: task fields in the solver's prompt ("program", "input",
        "output", "message", "pairs").
    solver_answers: the block kind of the solver's answer; it fixes how the answer
        is checked: an "output" is compared with the gold output, an "input" is run
        through the gold program, a "python" program is run on the gold inputs.
    """

    name: str
    proposer_goal: str
    proposer_writes: tuple[str, ...]
    solver_title: str
    solver_instruction: str
    solver_shows: tuple[str, ...]
    solver_answers: str
    given_program: bool = False
    many_inputs: bool = False
    uses_references: bool = True


TASK_TYPE_SPECS: dict[str, TaskType] = {spec.name: spec for spec in (
    TaskType(
        name="deduction",
        proposer_goal=("The solver will be shown your program and your input and must predict the "
                       "output without running the code."),
        proposer_writes=("python", "input"),
        solver_title="Predict the output",
        solver_instruction=("Work out what `f` returns when it is called with the input below. "
                            "Answer with the returned value written as a Python literal."),
        solver_shows=("program", "input"),
        solver_answers="output",
    ),
    TaskType(
        name="abduction",
        proposer_goal=("The solver will be shown your program and the output it returns for your "
                       "input, and must find an input that produces that output."),
        proposer_writes=("python", "input"),
        solver_title="Find an input",
        solver_instruction=("Find an input for which `f` returns the output below. Any input that "
                            "produces it is correct. Write it as the arguments of the call, as Python "
                            "literals: what goes inside `f(...)`."),
        solver_shows=("program", "output"),
        solver_answers="input",
    ),
    TaskType(
        name="induction",
        proposer_goal=("The solver will be shown some of your inputs with the outputs the program "
                       "returns for them, plus your message, and must write the program; it is "
                       "checked on the inputs it was not shown too."),
        proposer_writes=("input", "message"),
        solver_title="Write the function",
        solver_instruction=("Write a Python function `f` that returns each output below for its input "
                            "and follows the message. It is also checked on inputs you are not shown."),
        solver_shows=("message", "pairs"),
        solver_answers="python",
        given_program=True,
        many_inputs=True,
        uses_references=False,
    ),
)}
"""The three task types, each described once, in the order they are trained, logged and reported."""
TASK_TYPES = tuple(TASK_TYPE_SPECS)
TaskTypeName = Literal[TASK_TYPES]  # for typed config fields (AZRConfig.task_types)

ONE_PAIR_TYPES = tuple(t for t in TASK_TYPES if not TASK_TYPE_SPECS[t].many_inputs)
"""The types whose task is one program on one input (deduction, abduction): program I/O."""
