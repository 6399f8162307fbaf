"""PythonExecutor's public interface: run, run_many, validate and their reasons."""

import threading

import pytest
from capabilities import REQUIRED

from selftaught.executor import ExecResult, PythonExecutor, ValidationResult

ADD = "def f(a, b):\n    return a + b"


@pytest.fixture(scope="module")
def ex():
    with PythonExecutor(workers=2, timeout_s=2.0, memory_mb=256) as executor:
        yield executor


def test_run_returns_the_repr(ex):
    r = ex.run(ADD, "1, 2")
    assert isinstance(r, ExecResult)
    assert (r.ok, r.output, r.error) == (True, "3", None)
    assert 0 < r.duration_s < 2
    assert r.roundtrip and r.violation is None


@pytest.mark.parametrize("program, inputs, output", [
    ("def f(s):\n    return s[::-1]", "'abc'", "'cba'"),
    ("def f(xs):\n    return sorted(set(xs))", "[3, 1, 3]", "[1, 3]"),
    ("def f(a, b=2, *, c=3):\n    return (a, b, c)", "1, c=5", "(1, 2, 5)"),
    ("def f(d):\n    return {k: v * 2 for k, v in d.items()}", "{'x': 1}", "{'x': 2}"),
    ("def f(n):\n    return 1 / n", "4", "0.25"),
    ("def f(s):\n    return set(s)", "'aa'", "{'a'}"),
    ("import math\nfrom collections import Counter\n\ndef f(s):\n    return Counter(s).most_common(1), math.pi",
     "'abca'", "([('a', 2)], 3.141592653589793)"),
    ("class Box:\n    def __init__(self, v):\n        self.v = v\n\ndef f(v):\n    return Box(v).v", "7", "7"),
])
def test_run_values(ex, program, inputs, output):
    r = ex.run(program, inputs)
    assert r.ok, r
    assert r.output == output


def test_prints_are_captured_not_returned(ex):
    r = ex.run("def f(a):\n    print('hello', a)\n    return a", "1")
    assert r.output == "1" and r.stdout == "hello 1\n"


@pytest.mark.parametrize("program, inputs, error", [
    ("def f(a:\n    return a", "1", "syntax"),
    ("x = 1", "1", "no_entry_function"),
    ("def f(a):\n    return 1 / 0", "1", "error: ZeroDivisionError"),
    ("def f(a):\n    return a[5]", "[1]", "error: IndexError"),
    ("def f(a):\n    raise SystemExit(3)", "1", "error: SystemExit"),
    ("def f(a):\n    raise KeyboardInterrupt", "1", "error: KeyboardInterrupt"),
    (ADD, "1), print(2", "syntax: inputs"),
    (ADD, "1, [2", "syntax: inputs"),
    (ADD, "1, 2 + 3", "inputs_not_literal"),           # inputs are literals, not code
    (ADD, "1, len('ab')", "inputs_not_literal"),
    (ADD, "*[1, 2]", "inputs_not_literal"),
    ("def f(a):\n    return a", "1, 2", "error: TypeError"),
])
def test_run_errors(ex, program, inputs, error):
    r = ex.run(program, inputs)
    assert not r.ok and r.output is None
    assert r.error == error, r


def test_run_timeout_and_memory(ex):
    r = ex.run("def f(a):\n    while True:\n        pass", "1", timeout_s=0.3)
    assert (r.ok, r.error) == (False, "timeout")
    assert r.duration_s < 1.5
    r = ex.run("def f(a):\n    return bytearray(a)", str(1 << 30))
    assert (r.ok, r.error) == (False, "memory")


def test_non_string_arguments_are_results_not_exceptions(ex):
    assert ex.run(None, "1").error == "syntax"
    assert ex.run(ADD, 3).error == "syntax"


def test_run_many_keeps_order(ex):
    items = [(ADD, f"{i}, {i}") for i in range(40)]
    items.insert(7, ("def f(a):\n    return 1 / 0", "1"))
    items.insert(20, ("def f(n):\n    return sum(range(n))", "300000"))
    results = ex.run_many(items)
    assert len(results) == len(items)
    assert results[7].error == "error: ZeroDivisionError"
    assert results[20].output == str(sum(range(300000)))
    rest = [r for k, r in enumerate(results) if k not in (7, 20)]
    assert [r.output for r in rest] == [str(2 * i) for i in range(40)]
    assert ex.run_many([]) == []


def test_run_from_many_threads(ex):
    out = {}

    def work(k):
        out[k] = [ex.run(ADD, f"{k}, {j}").output for j in range(10)]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == {k: [str(k + j) for j in range(10)] for k in range(6)}


# ------------------------------------------------------------------ validate

def test_validate_ok(ex):
    v = ex.validate(ADD, "1, 2")
    assert isinstance(v, ValidationResult)
    assert (v.ok, v.output, v.reason) == (True, "3", None)


@pytest.mark.parametrize("program, inputs, reason", [
    ("def f(a:\n    return a", "1", "syntax"),
    ("def f(a):\n    return a\nreturn 1", "1", "syntax"),            # parses, does not compile
    ("def g(a):\n    return a", "1", "no_entry_function"),
    ("def h(x):\n    return x\ndef f(a):\n    return h(a)", "1", "extra_function: h"),
    ("def f():\n    return 1", "", "no_arguments"),
    ("import time\ndef f(a):\n    return a", "1", "forbidden: time"),
    ("import os\ndef f(a):\n    return os.path.exists(a)", "'/'", "forbidden: os.path"),
    ("def f(a):\n    return open('/etc/hostname').read()", "1", "forbidden: open /etc/hostname"),
    ("def f(a):\n    try:\n        open('/etc/hostname')\n    except OSError:\n        pass\n    return a", "1",
     "forbidden: open /etc/hostname"),                  # refused even when the program catches it
    ("def f(a):\n    import socket\n    return socket.socket()", "1", "forbidden: socket.__new__"),
    ("def f(a):\n    return 1 / 0", "1", "error: ZeroDivisionError"),
    ("def f(a):\n    while True:\n        pass", "1", "timeout"),
    ("def f(a):\n    return [0] * a", str(10**9), "memory"),
    ("def f(a):\n    return object()", "1", "unrepresentable"),
    ("def f(a):\n    return float('nan')", "1", "unrepresentable"),
    ("def f(a):\n    return frozenset([a])", "1", "unrepresentable"),
    ("def f(a):\n    return lambda: a", "1", "unrepresentable"),
    ("import os\ndef f(a):\n    return os.urandom(8)", "1", "nondeterministic"),
    ("def f(a):\n    return id(a) if a else []", "[1]", "nondeterministic"),
    (ADD, "1), (2", "syntax: inputs"),
    (ADD, "1, 2 * 3", "inputs_not_literal"),
])
def test_validate_reasons(ex, program, inputs, reason):
    v = ex.validate(program, inputs, timeout_s=0.5)
    assert (v.ok, v.output) == (False, None)
    assert v.reason == reason, v


@pytest.mark.parametrize("program, inputs, output", [
    ("def f(a):\n    return {3, 1, 2}", "0", "{1, 2, 3}"),
    ("def f(a):\n    return {'b': 1, 'a': [1.5, None, True]}", "0", "{'b': 1, 'a': [1.5, None, True]}"),
    ("def f(a):\n    return list({'x', 'y', 'zz', 'w', 'abc'})", "0", None),  # same hash seed everywhere
    ("def f(s):\n    return s + \"'\" + '\"'", "'q'", "'q\\'\"'"),
    ("def f(a):\n    return (a, -0.0, 1e300, 2**70, b'\\x00', 1j)", "1", "(1, -0.0, 1e+300, 1180591620717411303424, b'\\x00', 1j)"),
    ("def f(a):\n    return set()", "1", "set()"),
])
def test_validate_round_trips(ex, program, inputs, output):
    v = ex.validate(program, inputs)
    assert v.ok, v
    if output is not None:
        assert v.output == output


def test_validate_many_matches_validate(ex):
    items = [(ADD, "1, 2"), ("import random\ndef f(a):\n    return a", "1"),
             ("def f(a):\n    return 1 / 0", "1"), ("def f(a):\n    return a * 2", "'ab'")]
    many = ex.validate_many(items)
    assert [v.reason for v in many] == [None, "forbidden: random", "error: ZeroDivisionError", None]
    assert [v.output for v in many] == ["3", None, None, "'abab'"]
    assert [(v.ok, v.output, v.reason) for v in many] == [
        (v.ok, v.output, v.reason) for v in (ex.validate(p, i) for p, i in items)]


def test_forbidden_is_configurable():
    program = "import random\ndef f(a):\n    return random.random()"
    with PythonExecutor(workers=2, timeout_s=2.0, forbidden=()) as e:
        v = e.validate(program, "1")
        assert v.reason == "nondeterministic"  # each worker has its own entropy
        assert e.validate("import math\ndef f(a):\n    return math.floor(a)", "1.5").ok
    with PythonExecutor(workers=1, timeout_s=2.0, forbidden={"math"}) as e:
        assert e.validate("import math\ndef f(a):\n    return math.floor(a)", "1.5").reason == "forbidden: math"


def test_closed_executor_refuses_work():
    e = PythonExecutor(workers=1)
    e.close()
    e.close()  # idempotent
    with pytest.raises(RuntimeError):
        e.run(ADD, "1, 2")


def test_containment_report(ex):
    c = ex.containment
    assert c["workers"] == 2
    assert c["audit_hook"] is True
    assert c["rlimits"]["processes"] == 0
    assert c["filesystem"] in ("jail", "host")
    if REQUIRED:  # CI: root on a kernel with namespaces, so the sandbox must have them
        assert c["namespaces"] and c["filesystem"] == "jail", c["notes"]
    if c["namespaces"]:
        assert {"net", "pid", "mount"} <= set(c["namespaces"])
        assert c["network"] == "isolated" and c["pid_namespace"]


def test_a_sandbox_that_cannot_start_is_a_clear_error(monkeypatch):
    from selftaught.executor import core

    monkeypatch.setattr(core, "ZYGOTE", "/nonexistent/zygote.py")
    with pytest.raises(RuntimeError, match="did not start"):
        PythonExecutor(workers=2)


def test_a_killed_sandbox_process_is_replaced():
    import os
    import signal

    with PythonExecutor(workers=1, timeout_s=2.0) as e:
        assert e.run(ADD, "1, 2").output == "3"
        os.killpg(e.process_ids()[0], signal.SIGKILL)  # the zygote and its worker
        assert e.run(ADD, "2, 2").output == "4"  # answered anyway: tried again on a new sandbox
        assert e.run(ADD, "3, 4").output == "7"


def test_large_programs_and_outputs_do_not_deadlock(ex):
    program = "# " + "x" * 40_000 + "\ndef f(n):\n    return 'y' * n"
    items = [(program, "90000"), (ADD, "1, 2")] * 6
    results = ex.run_many(items, timeout_s=5.0)
    assert all(r.ok for r in results)
    assert [len(r.output) for r in results[::2]] == [90_002] * 6
