"""math-verify in a killable process with a hard deadline per comparison.

sympy can run for minutes on a model-written answer, holding the GIL in
big-integer code, so no thread of the trainer can interrupt it and
math-verify's own ``signal.alarm`` timeout works only on the main thread.
So the trainer never runs it: `SymbolicVerifier.verify` sends the pair to a
small server process and waits with a bound.

    trainer process ── pipe ──► server (imports math-verify once, no threads)
                                  └─ fork ─► checker (runs one comparison at a time)

The server forwards each comparison to its checker and lets it use at most
`deadline_s` of CPU time (or less, when the caller asks: what is left of a step's
budget) and WALL_CAP_S of wall time (for a starved machine); past either it
SIGKILLs the checker and forks a fresh one from its already-imported state (a few
milliseconds, not the second a cold import takes), and answers "timed out". Every
answer carries the CPU time the checker spent on it. The client waits
WALL_CAP_S + _GRACE_S; a server that misses that (or dies) is killed and
restarted on the next call. Every wait is bounded, from any
thread: at most one comparison runs at a time (a lock), so a caller waits at
most its queue position × the bound.

The server and its checkers ignore SIGINT and SIGTERM: a scheduler that signals
every process of a job (SLURM's preemption) must not take them away while the
trainer finishes its step. They end when the trainer closes the pipe (it exits,
or dies).

This file is also the server's script: it is started as
``python symbolic_worker.py`` so the server imports math-verify only (not
torch through the package's ``__init__``).
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time

logger = logging.getLogger(__name__)
DEFAULT_DEADLINE_S = 1.0  # CPU seconds for one comparison; ordinary ones take milliseconds
WALL_CAP_S = 10.0  # and at most this much wall time, however starved of CPU the machine is
_GRACE_S = 5.0  # the server's own overhead (a re-fork) on top of the wall cap
_STARTUP_S = 60.0  # the cold import of math-verify/sympy, on a loaded machine
_CHECKER_MEMORY_BYTES = 4 << 30  # address-space cap of a checker (RLIMIT_AS)
_HEADER = struct.Struct("!I")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# -- framing: 4-byte length + UTF-8 JSON, over raw file descriptors -------------------------

def _write_message(fd: int, obj) -> None:
    data = json.dumps(obj).encode()
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def _is_reply(message) -> bool:
    """[verdict (true/false/null), CPU seconds]: what the server answers a comparison."""
    return (isinstance(message, list) and len(message) == 2 and message[0] in (True, False, None)
            and isinstance(message[1], (int, float)) and not isinstance(message[1], bool))


NO_REPLY = "no reply"
"""What `_read_message` returns on end of file or when its deadline passes: never a message
(messages are JSON true/false/null, [verdict, CPU seconds], "ready" or a request object), so a
late reply is told apart from a "timed out" one."""


def _read_exact(fd: int, n: int, until: float | None) -> bytes | None:
    """n bytes from fd, or None on EOF or when the monotonic deadline `until` passes."""
    chunks, got = [], 0
    while got < n:
        if until is not None:
            left = until - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
        chunk = os.read(fd, n - got)
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _read_message(fd: int, until: float | None = None):
    """The next message, or NO_REPLY on end of file or past the monotonic deadline `until`."""
    header = _read_exact(fd, _HEADER.size, until)
    if header is None:
        return NO_REPLY
    body = _read_exact(fd, _HEADER.unpack(header)[0], until)
    return NO_REPLY if body is None else json.loads(body)


# -- the server side (runs in its own process) ---------------------------------------------

def _wrap_latex(s: str) -> str:
    """math-verify's LaTeX extractor needs a math environment around the answer."""
    if "$" in s or "\\boxed" in s or "\\(" in s or "\\[" in s:
        return s
    return f"${s}$"


def _compare(predicted: str, gold: str) -> bool:
    from math_verify import parse, verify

    gold_parsed = parse(_wrap_latex(gold), parsing_timeout=None)
    pred_parsed = parse(_wrap_latex(predicted), parsing_timeout=None)
    if not gold_parsed or not pred_parsed:
        return False
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=None))


# Every checker is forked from this warmed state: what a kind of comparison imports or caches on
# first use (a factorisation: ~0.2 s) is paid once here, not again after every replaced checker.
_WARM_UP = [("1", "1"), ("x = 3", "3"), (r"\frac{\sqrt{8}}{4}", r"\frac{\sqrt2}{2}"), ("2x+1", "1+2x"),
            (r"\{1,2\}", r"\{2,1\}"), (r"(1, 2]", r"(1,2]"), (r"\text{(B)}", "B"), (r"\pi/2", r"\frac{\pi}{2}"),
            (r"x^{2}-1", "(x-1)(x+1)"), (r"\sqrt{2}", "2"), (r"\sin^{2}(x)+\cos^{2}(x)", "1"), ("0.5", r"\frac{1}{2}")]


def _checker_loop(jobs: int, verdicts: int) -> None:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (_CHECKER_MEMORY_BYTES, _CHECKER_MEMORY_BYTES))
    except (ImportError, ValueError, OSError):
        pass
    while True:
        job = _read_message(jobs)
        if job is None:
            os._exit(0)
        try:
            verdict = _compare(job["p"], job["g"])
        except BaseException:  # noqa: BLE001 - any failure is "no match"; MemoryError included
            verdict = False
        _write_message(verdicts, verdict)


class _Checker:
    """The forked child that runs comparisons; replaced when it misses a deadline."""

    def __init__(self):
        job_r, self.jobs = os.pipe()
        self.verdicts, verdict_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(self.jobs)
            os.close(self.verdicts)
            _checker_loop(job_r, verdict_w)
        os.close(job_r)
        os.close(verdict_w)

    def cpu_seconds(self) -> float:
        try:
            with open(f"/proc/{self.pid}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime + stime
        except (OSError, IndexError, ValueError):
            return 0.0  # no /proc: the wall cap alone bounds it

    def ask(self, predicted: str, gold: str, deadline_s: float) -> tuple[bool | None, float]:
        """(True/False, or None when it used `deadline_s` of CPU or WALL_CAP_S of wall time or died;
        the CPU seconds it used).

        CPU time, not wall time, is the deadline: on a machine whose CPUs are taken by
        other work an ordinary comparison may wait seconds for a CPU, while an explosive
        one burns its CPU and is killed."""
        started = self.cpu_seconds()
        try:
            _write_message(self.jobs, {"p": predicted, "g": gold})
        except OSError:
            return None, 0.0
        cpu_limit = started + deadline_s
        wall_limit = time.monotonic() + max(WALL_CAP_S, deadline_s)
        while True:
            now = self.cpu_seconds()
            cpu_left, wall_left = cpu_limit - now, wall_limit - time.monotonic()
            if cpu_left <= 0 or wall_left <= 0:
                return None, now - started
            # One process cannot use CPU faster than the clock runs: no need to look before cpu_left.
            if select.select([self.verdicts], [], [], min(wall_left, max(cpu_left, 0.002)))[0]:
                verdict = _read_message(self.verdicts, wall_limit)
                return (None if verdict == NO_REPLY else verdict), self.cpu_seconds() - started

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(self.pid, 0)
        os.close(self.jobs)
        os.close(self.verdicts)


def _serve(requests: int, replies: int) -> None:
    logging.disable(logging.CRITICAL)  # math-verify logs whole answers on every timeout
    for job_wide in (signal.SIGINT, signal.SIGTERM):  # the trainer ends us (see the module docstring)
        signal.signal(job_wide, signal.SIG_IGN)
    import math_verify  # noqa: F401 - imported once here, inherited by every checker

    for pair in _WARM_UP:  # import and warm what comparisons use, once, before the first fork
        _compare(*pair)
    checker = _Checker()
    _write_message(replies, "ready")
    while True:
        request = _read_message(requests)
        if request == NO_REPLY:  # the trainer closed the pipe or died
            checker.kill()
            return
        verdict, cpu = checker.ask(request["p"], request["g"], request["t"])
        if verdict is None:
            checker.kill()
            checker = _Checker()
        _write_message(replies, [verdict, cpu])


# -- the client side (the trainer's process) ------------------------------------------------

class SymbolicVerifier:
    """A handle on one server process; thread-safe, restarts the server when it misbehaves."""

    def __init__(self, deadline_s: float = DEFAULT_DEADLINE_S):
        self.deadline_s = deadline_s
        self._lock = threading.Lock()
        self._server: subprocess.Popen | None = None
        self._ready = False
        self._owner = os.getpid()
        self._warned = False

    def start(self) -> None:
        """Start the server now (its cold import then overlaps other work); idempotent."""
        with self._lock:
            self._start_locked()

    def _start_locked(self) -> None:
        if self._owner != os.getpid():  # a forked copy must not share the parent's pipes
            self._server, self._owner = None, os.getpid()
        if self._server is not None and self._server.poll() is None:
            return
        self._server = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True)
        self._ready = False

    def verify(self, predicted: str, gold: str, cpu_s: float | None = None) -> bool | None:
        """math-verify's verdict, or None when it did not come within the deadline."""
        return self.check(predicted, gold, cpu_s)[0]

    def check(self, predicted: str, gold: str, cpu_s: float | None = None) -> tuple[bool | None, float]:
        """(`verify`'s verdict, the CPU seconds the comparison took). `cpu_s`: a shorter CPU
        deadline than `deadline_s` for this comparison (what is left of a budget). Neither the
        wait for another thread's comparison nor the server's cold start is counted."""
        with self._lock:
            started = time.monotonic()
            try:
                self._start_locked()
                server = self._server
                if not self._ready:
                    if _read_message(server.stdout.fileno(), time.monotonic() + _STARTUP_S) != "ready":
                        self._stop_locked()
                        if not self._warned:
                            self._warned = True
                            logger.warning("the math-verify worker process did not start; symbolic answers "
                                           "count as timed out (is math-verify installed for %s?)", sys.executable)
                        return None, 0.0
                    self._ready = True
                deadline = self.deadline_s if cpu_s is None else min(cpu_s, self.deadline_s)
                started = time.monotonic()
                _write_message(server.stdin.fileno(), {"p": predicted, "g": gold, "t": deadline})
                reply = _read_message(server.stdout.fileno(),
                                      time.monotonic() + max(WALL_CAP_S, deadline) + _GRACE_S)
            except (OSError, ValueError):
                reply = NO_REPLY
            if _is_reply(reply):
                verdict, cpu = reply
                return verdict, float(cpu)  # None: the checker timed out and was replaced; the server is fine
            # No reply in time, or a garbled one: the server may answer late, into the next
            # comparison, so it is replaced; the wait counts as CPU spent (nothing better is known).
            self._stop_locked()
            return None, time.monotonic() - started

    def close(self) -> None:
        with self._lock:
            self._stop_locked()

    def _stop_locked(self) -> None:
        server, self._server, self._ready = self._server, None, False
        if server is None or self._owner != os.getpid():
            return
        try:
            os.killpg(server.pid, signal.SIGKILL)  # the server and its checker
        except (ProcessLookupError, PermissionError):
            pass
        server.wait(timeout=10)
        for stream in (server.stdin, server.stdout):
            try:
                stream.close()
            except OSError:
                pass


if __name__ == "__main__":
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]  # our files must not shadow others
    _serve(sys.stdin.fileno(), sys.stdout.fileno())
