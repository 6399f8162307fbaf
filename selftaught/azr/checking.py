"""Is a solver's answer right? Decided by the executor, never by running code here.

The check follows from what the solver answers (`TaskType.solver_answers`):
- an *output* (deduction) is compared with the gold output as a Python value
  (`values_equal`): nothing runs;
- an *input* (abduction) is run through the task's program, and is right when
  the program returns the gold output: any input that works is right;
- a *program* (induction) is run on every input of the task, the pairs shown to
  the solver and the held-out ones, and is right when it reproduces every output.
  docs/reference.md §3 says "all the hidden pairs"; checking the shown half too only
  rejects programs that contradict the examples they were given, and keeps tasks
  with a single pair (the seed) checkable.

All runs of a batch go through one `run_many` call per round, identical runs are
made once, and a program that fails its first pair is not run on the others.
"""

from __future__ import annotations

from ..executor import values_equal
from .tasks import TASK_TYPE_SPECS, Task


def planned_runs(task: Task, answer: str) -> list[tuple[str, str, str]] | None:
    """(program, inputs, expected output) runs that decide `answer`; None: compare directly."""
    kind = TASK_TYPE_SPECS[task.type].solver_answers
    if kind == "output":
        return None
    if kind == "input":
        return [(task.program, answer, task.outputs[0])]
    if kind == "python":
        return [(answer, i, o) for i, o in zip(task.inputs, task.outputs)]
    raise ValueError(f"unknown answer kind {kind!r}")


def check_answers(executor, tasks: list[Task], answers: list[str | None]) -> list[bool]:
    """Whether each answer solves its task; a None answer (malformed) is wrong."""
    if len(tasks) != len(answers):
        raise ValueError(f"{len(tasks)} tasks but {len(answers)} answers")
    verdict: list[bool] = [False] * len(tasks)
    plans: dict[int, list[tuple[str, str, str]]] = {}
    for k, (task, answer) in enumerate(zip(tasks, answers)):
        if answer is None:
            continue
        runs = planned_runs(task, answer)
        if runs is None:
            verdict[k] = values_equal(answer, task.outputs[0])
        elif runs:
            plans[k] = runs
    results: dict[tuple[str, str], object] = {}

    def execute(pairs: list[tuple[str, str]]) -> None:
        todo = list(dict.fromkeys(p for p in pairs if p not in results))
        if todo:
            results.update(zip(todo, executor.run_many(todo)))

    def passes(run: tuple[str, str, str]) -> bool:
        r = results[run[:2]]
        return bool(r.ok) and not r.violation and values_equal(r.output, run[2])

    execute([runs[0][:2] for runs in plans.values()])  # round 1: the first pair of each answer
    alive = {k: runs for k, runs in plans.items() if passes(runs[0])}
    execute([run[:2] for runs in alive.values() for run in runs[1:]])  # round 2: the rest
    for k, runs in alive.items():
        verdict[k] = all(passes(run) for run in runs)
    return verdict
