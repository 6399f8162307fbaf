"""Answer checking per task type and proposal validation, through the real executor."""

import pytest

from selftaught.azr.checking import check_answers, planned_runs
from selftaught.azr.episodes import AZREpisodes, ProposerRequest, min_induction_pairs, reason_key
from selftaught.azr.tasks import Task
from selftaught.config import build_config
from selftaught.executor import PythonExecutor, ValidationResult

MOD3 = "def f(n):\n    return n % 3"
SMALLEST = "def f(xs, k):\n    return sorted(xs)[:k]"


@pytest.fixture(scope="module")
def executor():
    with PythonExecutor(workers=2, timeout_s=1.0, memory_mb=256) as ex:
        yield ex


class CountingExecutor:
    """Wraps an executor and records what it was asked to run."""

    def __init__(self, inner):
        self.inner, self.runs = inner, []

    def run_many(self, items):
        self.runs.extend(items)
        return self.inner.run_many(items)


def test_deduction_compares_values_without_running(executor):
    task = Task("deduction", "def f(a):\n    return [a, a / 2]", ["3"], ["[3, 1.5]"])
    counting = CountingExecutor(executor)
    verdict = check_answers(counting, [task] * 5, ["[3, 1.5]", "[3,1.50]", "[3.0, 1.5]", "(3, 1.5)", "[3, 2]"])
    assert verdict == [True, True, True, False, False]
    assert counting.runs == []  # deduction never runs anything
    assert planned_runs(task, "[3, 1.5]") is None


def test_abduction_accepts_any_input_that_maps_to_the_gold_output(executor):
    task = Task("abduction", MOD3, ["7"], ["1"])
    answers = ["7", "4", "-2", "1000000", "5", "'x'", "n=1", "10**6 + 1"]
    # the last is not a literal: the executor refuses code in inputs, so it is wrong (not run)
    assert check_answers(executor, [task] * len(answers), answers) == [True, True, True, True, False, False, True,
                                                                       False]


def test_abduction_with_a_crashing_or_looping_input_is_wrong(executor):
    task = Task("abduction", "def f(xs):\n    return xs[0] * 2", ["[4]"], ["8"])
    assert check_answers(executor, [task, task, task], ["[]", "4", "[4.0]"]) == [False, False, True]


def test_induction_checks_every_pair_shown_and_held_out(executor):
    inputs = ["[3, 1, 2], 1", "[5, 4], 2", "[], 0", "[9, 8, 7], 3"]
    outputs = ["[1]", "[4, 5]", "[]", "[7, 8, 9]"]
    task = Task("induction", SMALLEST, inputs, outputs, "the k smallest, in order")
    same_behaviour = "def f(a, b):\n    out = []\n    for x in sorted(a):\n        if len(out) < b:\n            out.append(x)\n    return out"
    fits_shown_only = "def f(xs, k):\n    return [1] if k == 1 else [4, 5]"  # memorises the shown half
    wrong_on_first = "def f(xs, k):\n    return None"
    counting = CountingExecutor(executor)
    verdict = check_answers(counting, [task] * 4, [same_behaviour, fits_shown_only, wrong_on_first, None])
    assert verdict == [True, False, False, False]
    # a program that fails its first pair is not run on the rest
    assert sum(program == wrong_on_first for program, _ in counting.runs) == 1
    assert len(planned_runs(task, same_behaviour)) == 4


def test_identical_runs_are_made_once(executor):
    task = Task("abduction", MOD3, ["7"], ["1"])
    counting = CountingExecutor(executor)
    assert check_answers(counting, [task] * 6, ["4"] * 6) == [True] * 6
    assert counting.runs == [(MOD3, "4")]


def test_malformed_answers_are_wrong_and_lengths_must_match(executor):
    task = Task("deduction", MOD3, ["7"], ["1"])
    assert check_answers(executor, [task], [None]) == [False]
    with pytest.raises(ValueError):
        check_answers(executor, [task], [])


# ---------------------------------------------------------- proposals


def proposal(program, inputs):
    return f" ok </think>\n<answer>\n```python\n{program}\n```\n```input\n{inputs}\n```\n</answer>"


def episodes(executor, **azr):
    from selftaught.models.tiny_random import build_tokenizer

    config = build_config({"method": "azr", "max_prompt_length": 4096,
                           "azr": {"executor_timeout_s": 1.0, "induction_inputs": 4, **azr}})
    return AZREpisodes(config, build_tokenizer(), executor=executor)


BAD_PROPOSALS = [
    ("def f(a)\n    return a", "1", "syntax"),
    ("def g(a):\n    return a", "1", "no_entry_function"),
    ("import random\ndef f(a):\n    return random.random()", "1", "forbidden"),
    ("import time\ndef f(a):\n    return time.time()", "1", "forbidden"),
    ("def f(a):\n    return 1 // a", "0", "error_ZeroDivisionError"),
    ("def f(a):\n    while True:\n        a += 1", "0", "timeout"),
    ("def f(a):\n    return object()", "1", "unrepresentable"),
    ("def f(a):\n    return a", "1 +", "syntax"),
]


def test_invalid_proposals_are_rejected_and_counted_never_raised(executor):
    ep = episodes(executor)
    texts = [proposal(p, i) for p, i, _ in BAD_PROPOSALS] + [proposal(MOD3, "7"), "no answer at all"]
    requests = [ProposerRequest("deduction", "prompt") for _ in texts]
    outcomes = ep.evaluate_proposals(requests, texts, step=3)
    assert [reason_key(o.reason) for o in outcomes[:len(BAD_PROPOSALS)]] == [r for *_, r in BAD_PROPOSALS]
    good = outcomes[len(BAD_PROPOSALS)]
    assert good.valid and good.task == Task("deduction", MOD3, ["7"], ["1"], "", 3)
    assert not outcomes[-1].valid and outcomes[-1].reason == "no_answer_tag"


class NondeterministicExecutor:
    """The executor's verdict for a program whose two runs differ (its own tests cover how)."""

    def validate_many(self, items):
        return [ValidationResult(False, None, "nondeterministic", "1 != 2") for _ in items]


def test_nondeterministic_proposal_is_rejected():
    ep = episodes(NondeterministicExecutor())
    [outcome] = ep.evaluate_proposals([ProposerRequest("abduction", "p")], [proposal(MOD3, "7")], step=1)
    assert not outcome.valid and outcome.reason == "nondeterministic"


def test_induction_proposal_keeps_valid_inputs_and_needs_half_of_n(executor):
    assert min_induction_pairs(10) == 5 and min_induction_pairs(4) == 2 and min_induction_pairs(2) == 2
    ep = episodes(executor)
    program = "def f(xs):\n    return xs[0]"

    def text(inputs, message="the first item"):
        blocks = "".join(f"```input\n{i}\n```\n" for i in inputs)
        return f"</think><answer>\n{blocks}```message\n{message}\n```\n</answer>"

    requests = [ProposerRequest("induction", "p", program) for _ in range(3)]
    outcomes = ep.evaluate_proposals(requests, [
        text(["[1]", "[]", "[2, 3]", "'ab'", "[4]"]),   # first N=4 kept; [] fails, 3 valid >= 2
        text(["[]", "[]", "()", "[1]"]),                # dedup → [], (), [1]: one valid < 2
        "<answer>```message\nhi\n```</answer>",         # no inputs
    ], step=2)
    first = outcomes[0]
    assert first.valid
    assert first.task.inputs == ["[1]", "[2, 3]", "'ab'"] and first.task.outputs == ["1", "2", "'a'"]
    assert first.task.program == program and first.task.message == "the first item" and first.task.step == 2
    assert not outcomes[1].valid and outcomes[1].reason == "too_few_valid_inputs"
    assert not outcomes[2].valid and outcomes[2].reason == "missing_block: input"
    assert ep._stats["azr/induction/propose/failed_inputs/error_IndexError"] == 2
