"""The trainer's side of the worker protocol, on the paths the other tests leave out.

A program can write into its own reply pipe (fd 4 in the worker): an oversized
frame header, or a reply that looks well formed but lacks the request's nonce.
Neither may pass for an answer, and neither may hurt the runs queued behind it
in the same pipe. A program that finds the nonce (in the harness's frame) writes
its own run's reply: it decides its own result, as it could by returning a
value, but never hands the caller a field of another type. A slot whose sandbox cannot be restarted ends its runs with
'executor_error' and is started again on next use.
"""

import json
import os
import signal
import time

import pytest
from test_containment import alive, process_tree

from selftaught.executor import PythonExecutor

ADD = "def f(a, b):\n    return a + b"
FLOOD = "import os, struct\ndef f(a, b):\n    os.write(4, struct.pack('>I', 1 << 30))\n    return a"
FORGED_BODY = b"0" + b"\0" * 8 + json.dumps([True, None, "", "'forged'", True, "", None, 0]).encode()
FORGE = ("import os, struct\ndef f(a, b):\n"
         f"    body = {FORGED_BODY!r}\n"
         "    os.write(4, struct.pack('>I', len(body)) + body)\n    return a")


@pytest.fixture(scope="module")
def ex():
    # One worker: the runs beside an incident sit in the same pipe, behind it.
    with PythonExecutor(workers=1, timeout_s=2.0, memory_mb=256) as executor:
        yield executor


@pytest.mark.parametrize("hostile, error", [(FLOOD, "output_too_large"), (FORGE, "crash: garbled reply")])
def test_what_a_program_writes_to_its_reply_pipe_is_no_answer(ex, hostile, error):
    items = [(ADD, f"{k}, 1") if k % 4 else (hostile, f"{k}, 1") for k in range(12)]
    results = ex.run_many(items)
    for k, r in enumerate(results):
        if k % 4:
            assert (r.ok, r.output) == (True, str(k + 1)), (k, r)
        else:
            assert (r.ok, r.output, r.error) == (False, None, error), (k, r)
    assert ex.run(ADD, "1, 2").output == "3"


def kill_tree_and_wait(root: int) -> None:
    """SIGKILL `root` and every process below it; return once they have all exited
    (the worker is in a session of its own: killing the zygote's group misses it)."""
    tree = process_tree([root])
    for pid in tree:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10.0
    while any(alive(pid) for pid in tree) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(alive(pid) for pid in tree)


def test_a_slot_that_cannot_restart_ends_its_run_with_executor_error(monkeypatch):
    from selftaught.executor import core

    with PythonExecutor(workers=1, timeout_s=2.0) as e:
        assert e.run(ADD, "1, 2").output == "3"
        monkeypatch.setattr(core, "ZYGOTE", "/nonexistent/zygote.py")  # every restart fails
        kill_tree_and_wait(e.process_ids()[0])  # the zygote and its worker
        r = e.run(ADD, "2, 2")  # its one retry fails too: settled, not raised
        assert (r.ok, r.output, r.error) == (False, None, "executor_error")
        assert "sandbox process lost" in r.detail
        monkeypatch.undo()
        assert e.run(ADD, "3, 4").output == "7"  # started again on next use


# ------------------------------------------------------------------ a program's own reply

def forger(fields) -> str:
    """A program that writes its own run's reply, with the request's nonce (found in
    the harness's frame) and `fields`, ahead of the harness's reply."""
    return ("import json, os, struct, sys\ndef f(a):\n    frame = sys._getframe()\n"
            "    while 'nonce' not in frame.f_locals:\n        frame = frame.f_back\n"
            f"    body = b'0' + frame.f_locals['nonce'] + json.dumps({fields!r}).encode()\n"
            "    os.write(4, struct.pack('>I', len(body)) + body)\n    return a")


ILL_TYPED = [
    [False, 123, "", None, False, "", None, None],               # error not a string
    [False, "error: X", ["x"], None, False, "", None, None],     # detail
    [False, "error: X", "", None, False, 5, None, None],         # stdout
    [False, "error: X", "", None, False, "", {"v": 1}, None],    # violation
    [True, None, "", None, True, "", None, None],                # ok without an output
    [True, None, "", ["1"], True, "", None, None],               # output not a string
    [False, None, "", None, False, "", None, None],              # failed without an error
]


@pytest.mark.parametrize("audit_hook", [True, False])
def test_a_reply_a_program_writes_itself_is_never_ill_typed(audit_hook):
    with PythonExecutor(workers=1, timeout_s=2.0, audit_hook=audit_hook) as e:
        # The channel is open: a program decides its own result (as it could by
        # returning a value), so this test reaches the trainer's parsing.
        forged = e.run(forger([False, "error: Forged", "", None, False, "", None, None]), "1")
        assert forged.error == "error: Forged", f"the forger no longer reaches the trainer: {forged}"
        for fields in ILL_TYPED:
            r = e.run(forger(fields), "1")
            assert (r.ok, r.output, r.error) == (False, None, "crash: garbled reply"), (fields, r)
            v = e.validate(forger(fields), "1")
            assert (v.ok, v.reason) == (False, "crash: garbled reply"), (fields, v)
        results = e.run_many([(forger(ILL_TYPED[0]), "1")] + [(ADD, f"{k}, 1") for k in range(6)])
        assert results[0].error == "crash: garbled reply"
        assert [r.output for r in results[1:]] == [str(k + 1) for k in range(6)]  # neighbours unhurt


def test_reply_parsing_takes_only_what_the_harness_writes():
    from selftaught.executor.core import ExecResult, _parse_reply

    good = [False, "error: KeyError", "'k'", None, False, "out", "open /x", None]
    assert _parse_reply(json.dumps(good).encode(), 0.5) == ExecResult(
        False, None, "error: KeyError", 0.5, "'k'", "out", False, "open /x")
    ok = [True, None, "", "[1, 2]", True, "", None, "max_runs"]
    assert _parse_reply(json.dumps(ok).encode(), 0.5) == ExecResult(True, "[1, 2]", None, 0.5, "", "", True, None)
    for body in [b"", b"\xff", b"{", b'"abcdefgh"', b"[1, 2]", json.dumps(good[:7]).encode(),
                 *(json.dumps(fields).encode() for fields in ILL_TYPED)]:
        r = _parse_reply(body, 0.5)
        assert (r.ok, r.output, r.error, r.duration_s) == (False, None, "crash: garbled reply", 0.5), body
