"""Worked execution traces (selftaught.data.trace) against the real calls."""

import ast
import builtins

import pytest

from selftaught.data import programs
from selftaught.data.trace import worked_trace


def _calls(split, n=120):
    for item in programs.generate(n, split=split, seed=3, examples=4):
        for args, output in zip(item.inputs, item.outputs):
            yield item, args, output


@pytest.mark.parametrize("split", ["pretrain", "dev", "heldout"])
def test_every_template_traces_to_the_real_output(split):
    families = set()
    for item, args, output in _calls(split):
        trace = worked_trace(item.program, args)
        assert trace is not None, (item.program, args)
        families.add(item.family)
        last = trace.splitlines()[-1]
        assert last.startswith("return ") and last.endswith(" = " + output), (item.program, args, trace)
    assert families == {"arithmetic", "conditional", "loop", "list", "string", "dict"}


def test_every_step_of_a_chain_has_the_same_value():
    # Each " = " step after the source is a closed expression: Python must give it
    # the call's value (checked independently of the tracer's own bookkeeping).
    checked = 0
    for item, args, output in _calls("pretrain", 60):
        line = worked_trace(item.program, args).splitlines()[-1]
        steps = line[len("return "):].split(" = ")
        for step in steps[1:]:
            if not any(isinstance(node, ast.Name) and node.id not in dir(builtins)
                       for node in ast.walk(ast.parse(step, mode="eval"))):
                assert repr(eval(step)) == output, (item.program, args, step)
                checked += 1
    assert checked > 100


def test_a_long_sum_is_added_one_value_at_a_time():
    trace = worked_trace("def f(xs):\n    return sum(x for x in xs if x > 1)", "[4, 3, 9, 7]")
    assert trace.splitlines()[-1].endswith("= sum([4, 3, 9, 7]) = 4 + 3 + 9 + 7 = 7 + 9 + 7 = 16 + 7 = 23")
    assert worked_trace("def f(xs):\n    return sum(xs)", "[4, 5]").splitlines()[-1].endswith(
        "= sum([4, 5]) = 9")  # two values: one step


def test_loop_traces_one_line_per_iteration():
    program = "def f(n):\n    total = 0\n    for i in range(n):\n        total += i * 3\n    return total"
    trace = worked_trace(program, "4").splitlines()
    assert trace[0] == "n = 4" and trace[1] == "total = 0"
    assert trace[2:6] == ["i = 0: total = 0 + 0 * 3 = 0 + 0 = 0", "i = 1: total = 0 + 1 * 3 = 0 + 3 = 3",
                          "i = 2: total = 3 + 2 * 3 = 3 + 6 = 9", "i = 3: total = 9 + 3 * 3 = 9 + 9 = 18"]
    assert trace[6] == "return total = 18"


def test_a_return_inside_a_loop_keeps_its_iteration_line():
    program = "def f(xs):\n    for x in xs:\n        if x > 2:\n            return x\n    return 0"
    assert worked_trace(program, "[1, 3, 5]").splitlines() == [
        "xs = [1, 3, 5]", "x = 1: if 1 > 2 = False", "x = 3: if 3 > 2 = True; return 3"]


def test_branch_and_comprehension_steps():
    assert worked_trace("def f(a):\n    if a > 3:\n        return a - 1\n    return a + 1", "2").splitlines() == [
        "a = 2", "if a > 3 = 2 > 3 = False", "return a + 1 = 2 + 1 = 3"]
    trace = worked_trace("def f(xs):\n    return [x * 2 for x in xs if x % 2 == 1]", "[1, 4, 5]")
    assert trace.splitlines()[-1] == ("return [x * 2 for x in xs if x % 2 == 1] = [x * 2 for x in [1, 4, 5] "
                                      "if x % 2 == 1] = [1 * 2, 5 * 2] = [2, 10]")


@pytest.mark.parametrize("program, args", [
    ("def f(n):\n    while n > 0:\n        n -= 1\n    return n", "3"),          # while: not covered
    ("def f(a):\n    def g(b):\n        return b\n    return g(a)", "1"),      # nested function
    ("def f(a):\n    return sorted([a, 1], reverse=True)", "3"),                # keyword arguments
    ("def f(a):\n    return 1 // a", "0"),                                      # the call raises
    ("def f(a):\n    a + 1", "2"),                                              # returns None
    ("def f(a, b):\n    return a", "1"),                                        # wrong argument count
    ("def f(a):\n    return a +", "1"),                                         # not Python
    ("x = 1", "1"),                                                             # no function
])
def test_uncovered_or_failing_programs_give_no_trace(program, args):
    assert worked_trace(program, args) is None
