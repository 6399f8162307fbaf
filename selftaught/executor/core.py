"""Trainer side of the executor: PythonExecutor, ExecResult, ValidationResult.

The trainer never executes model-written code. It talks to `workers` zygote
processes (zygote.py) over pipes; each zygote contains and supervises the process
that actually runs programs. Every failure comes back as a result with a reason:
a program can make its own run fail, never the caller.
"""

from __future__ import annotations

import json
import os
import queue
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Iterable, Sequence

from . import protocol
from .checks import DEFAULT_FORBIDDEN, check_inputs, check_program
from .values import values_equal

ZYGOTE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "zygote.py")
START_TIMEOUT_S = 30.0
GRACE_S = 5.0  # the zygote times runs itself; this only catches a zygote that hangs


@dataclass(frozen=True)
class ExecResult:
    """One run of f(inputs).

    ok: f returned. output: repr(f(*args)) when ok. error: None, or a reason:
    'syntax', 'syntax: inputs', 'inputs_not_literal', 'no_entry_function',
    'error: <ExceptionType>', 'timeout', 'memory', 'output_too_large',
    'repr_error: <Type>', 'crash: <signal or exit>', 'executor_error'.
    roundtrip: the output parses back (ast.literal_eval) to an equal value.
    violation: the first operation the sandbox refused (e.g. 'open /etc/passwd'),
    even when the program caught the error. stdout: the first characters printed.
    """

    ok: bool
    output: str | None
    error: str | None
    duration_s: float
    detail: str = ""
    stdout: str = ""
    roundtrip: bool = False
    violation: str | None = None


@dataclass(frozen=True)
class ValidationResult:
    """Whether a proposal (program, inputs) is a valid task; output is the gold answer.

    reason: None when ok, else 'syntax', 'no_entry_function', 'extra_function: <n>',
    'no_arguments', 'forbidden: <what>', 'error: <Type>', 'timeout', 'memory',
    'unrepresentable', 'nondeterministic', or another ExecResult error.
    """

    ok: bool
    output: str | None
    reason: str | None
    detail: str = ""
    duration_s: float = 0.0


class _Zygote:
    def __init__(self, cfg: dict):
        # An environment of our own, nothing inherited (threat: secrets in the
        # trainer's environment, PYTHONPATH and friends). PYTHONHASHSEED=0: the
        # order of sets of strings is the same in every worker and every session,
        # so a gold answer checked later is reproduced exactly. (-I would ignore
        # PYTHONHASHSEED; -s -S give the rest of isolated mode.)
        env = {"PYTHONHASHSEED": "0", "LC_ALL": "C.UTF-8", "PATH": os.defpath}
        self.proc = subprocess.Popen(
            [sys.executable, "-s", "-S", "-B", ZYGOTE, json.dumps(cfg)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd="/",
            start_new_session=True, close_fds=True)
        self.fd_in, self.fd_out = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        self.report: dict | None = None

    def wait_ready(self) -> dict:
        try:
            msg = protocol.recv_json(self.fd_out, time.monotonic() + START_TIMEOUT_S)
        except (TimeoutError, OSError, ValueError) as exc:
            msg = None
            err = exc
        else:
            err = None
        if not msg or not msg.get("ready"):
            self.kill()
            raise RuntimeError(f"the executor's sandbox process did not start ({err or 'it exited'}); "
                               "run with isolation='process' if namespaces are the problem")
        self.report = msg["containment"]
        return self.report

    def pids(self) -> list[int]:
        return [self.proc.pid]

    def kill(self) -> None:
        try:
            self.proc.stdin.close()  # a zygote that sees end of file cleans up and exits
        except OSError:
            pass
        try:
            self.proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the zygote, and in a PID namespace everything in it
        except OSError:
            pass
        self.proc.wait()
        self.proc.stdout.close()


class PythonExecutor:
    """Runs model-written programs f(inputs), contained by the operating system.

    workers: concurrent runs (default: CPU count). timeout_s, memory_mb: per run.
    forbidden: names the static check refuses (default DEFAULT_FORBIDDEN).
    isolation: 'auto' (namespaces where the kernel allows, else process limits),
    'namespaces' (fail to start without them) or 'process'.
    audit_hook: the in-process refusal layer (reasons like 'forbidden: open ...').
    literal_inputs: inputs must be Python literals (no code in arguments).
    max_runs_per_worker: runs before a worker process is replaced even without an
    incident (1 = a fresh process for every run).
    """

    def __init__(self, workers: int | None = None, timeout_s: float = 5.0, memory_mb: int = 512,
                 forbidden: Iterable[str] | None = None, *, isolation: str = "auto",
                 audit_hook: bool = True, literal_inputs: bool = True,
                 max_runs_per_worker: int = 1000, max_output_chars: int = 100_000,
                 max_stdout_chars: int = 10_000, file_size_mb: int = 16, scratch_mb: int = 64,
                 run_uid: int = 65534, allow_helpers: bool = False):
        if isolation not in ("auto", "namespaces", "process"):
            raise ValueError("isolation must be 'auto', 'namespaces' or 'process'")
        self.workers = max(1, int(workers or os.cpu_count() or 1))
        self.timeout_s, self.memory_mb = float(timeout_s), int(memory_mb)
        self.forbidden = frozenset(DEFAULT_FORBIDDEN if forbidden is None else forbidden)
        self.allow_helpers = allow_helpers
        self._host_scratch = tempfile.mkdtemp(prefix="selftaught-exec-")
        os.chmod(self._host_scratch, 0o711)  # the unprivileged run uid must reach its directory
        self._cfg = {
            "isolation": isolation, "audit_hook": bool(audit_hook), "literal_inputs": bool(literal_inputs),
            "max_runs": max(1, int(max_runs_per_worker)), "max_output_chars": int(max_output_chars),
            "max_stdout_chars": int(max_stdout_chars), "file_size_mb": int(file_size_mb),
            "scratch_mb": int(scratch_mb), "run_uid": int(run_uid), "timeout_s": self.timeout_s,
            "memory_mb": self.memory_mb, "host_scratch": self._host_scratch,
        }
        self._lock = threading.Lock()
        self._closed = False
        self._idle: queue.Queue = queue.Queue()
        self._all: list[_Zygote | None] = []
        try:
            zygotes = [self._new_zygote(i) for i in range(self.workers)]
            for i, z in enumerate(zygotes):
                z.wait_ready()
                self._all.append(z)
                self._idle.put(i)
        except BaseException:
            for z in zygotes if "zygotes" in locals() else []:
                z.kill()
            self.close()
            raise
        self.containment = dict(self._all[0].report, workers=self.workers)

    # ------------------------------------------------------------ lifecycle

    def _new_zygote(self, i: int) -> _Zygote:
        cfg = dict(self._cfg, host_scratch=os.path.join(self._host_scratch, f"z{i}-{time.monotonic_ns()}"))
        os.mkdir(cfg["host_scratch"], 0o711)
        return _Zygote(cfg)

    def __enter__(self) -> "PythonExecutor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop every sandbox process and remove the scratch area. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for _ in range(len(self._all)):  # wait for runs in flight on other threads
            try:
                self._idle.get(timeout=self.timeout_s + GRACE_S)
            except queue.Empty:
                break
        for z in self._all:
            if z is not None:
                z.kill()
        shutil.rmtree(self._host_scratch, ignore_errors=True)

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def process_ids(self) -> list[int]:
        """Host process ids of the zygotes (for tests and monitoring)."""
        return [pid for z in self._all if z is not None for pid in z.pids()]

    # ------------------------------------------------------------ running

    def run(self, program: str, inputs: str, *, timeout_s: float | None = None,
            memory_mb: int | None = None) -> ExecResult:
        """Run f(inputs) once in a contained process."""
        return self.run_many([(program, inputs)], timeout_s=timeout_s, memory_mb=memory_mb)[0]

    def run_many(self, items: Sequence[tuple[str, str]], *, timeout_s: float | None = None,
                 memory_mb: int | None = None) -> list[ExecResult]:
        """Run many (program, inputs) pairs on all free workers; results in input order.

        One thread drives every worker it holds with select(): no thread pool, no
        futures, so the trainer spends ~30 us per run. Safe to call from several
        threads; each call takes the workers that are free (at least one).
        """
        if self._closed:
            raise RuntimeError("this PythonExecutor is closed")
        items = list(items)
        results: list[ExecResult | None] = [None] * len(items)
        timeout = self.timeout_s if timeout_s is None else float(timeout_s)
        memory = self.memory_mb if memory_mb is None else int(memory_mb)
        todo = []
        for k, (program, inputs) in enumerate(items):
            if isinstance(program, str) and isinstance(inputs, str):
                todo.append((k, protocol.REQUEST.pack(timeout, memory)
                             + json.dumps({"program": program, "inputs": inputs}).encode()))
            else:
                results[k] = ExecResult(False, None, "syntax", 0.0, "program and inputs must be strings")
        if not todo:
            return results  # type: ignore[return-value]
        held = [self._idle.get()]
        while len(held) < min(len(todo), self.workers):
            try:
                held.append(self._idle.get_nowait())
            except queue.Empty:
                break
        try:
            self._drive(held, todo[::-1], results, timeout)
        finally:
            for i in held:
                self._idle.put(i)
        return results  # type: ignore[return-value]

    def _drive(self, held: list[int], todo: list, results: list, timeout: float) -> None:
        busy: dict[int, tuple[int, int, float]] = {}  # fd -> (worker index, item index, deadline)
        free = list(held)
        while todo or busy:
            while todo and free:
                i = free.pop()
                k, payload = todo.pop()
                try:
                    z = self._all[i]
                    if z is None:
                        z = self._all[i] = self._restart(i)
                    protocol.write_frame(z.fd_in, payload)
                except Exception as exc:  # a zygote that cannot start or take work
                    self._discard(i)
                    results[k] = ExecResult(False, None, "executor_error", 0.0, f"{type(exc).__name__}: {exc}")
                    free.append(i)
                    continue
                busy[z.fd_out] = (i, k, time.monotonic() + timeout + GRACE_S)
            if not busy:
                continue
            wait = max(0.0, min(d for _, _, d in busy.values()) - time.monotonic())
            ready, _, _ = select.select(list(busy), [], [], wait)
            now = time.monotonic()
            for fd in list(busy):
                i, k, deadline = busy[fd]
                if fd not in ready and now < deadline:
                    continue
                del busy[fd]
                free.append(i)
                try:
                    if fd not in ready:
                        raise TimeoutError
                    frame = protocol.read_frame(fd, deadline)
                    if frame is None:
                        raise EOFError
                    results[k] = _result(frame)
                except Exception as exc:  # the zygote died, hung or spoke garbage: replace it
                    self._discard(i)
                    results[k] = ExecResult(False, None, "executor_error", timeout,
                                            f"sandbox process lost ({type(exc).__name__})")

    def _discard(self, i: int) -> None:
        z, self._all[i] = self._all[i], None
        if z is not None:
            z.kill()

    def _restart(self, i: int) -> _Zygote:
        z = self._new_zygote(i)
        z.wait_ready()
        return z

    # ------------------------------------------------------------ validation

    def validate(self, program: str, inputs: str, **kw) -> ValidationResult:
        """Is (program, inputs) a valid task? Static checks, then two independent runs.

        The checks, in order: parse; exactly one entry function f taking arguments;
        the forbidden names; both runs finish without error, without a refused
        operation, within the limits; the output's repr evaluates back to the
        value; the two outputs agree. `output` is then the gold answer.
        Keyword arguments (timeout_s, memory_mb) are passed to run_many.
        """
        return self.validate_many([(program, inputs)], **kw)[0]

    def validate_many(self, items: Sequence[tuple[str, str]], **kw) -> list[ValidationResult]:
        """validate() for many proposals, their runs spread over all workers."""
        items = list(items)
        verdicts: list[ValidationResult | None] = []
        runs: list[tuple[str, str]] = []
        for program, inputs in items:
            static = (check_program(program, self.forbidden, allow_helpers=self.allow_helpers)
                      or check_inputs(inputs, self.forbidden))
            if static:
                verdicts.append(ValidationResult(False, None, static[0], static[1]))
            else:
                verdicts.append(None)
                runs += [(program, inputs), (program, inputs)]  # determinism: two runs
        results = iter(self.run_many(runs, **kw))
        return [v if v is not None else _verdict(next(results), next(results)) for v in verdicts]


def _result(frame: bytes) -> ExecResult:
    """Decode a zygote reply: its JSON header, a newline, the worker's JSON array."""
    head, _, body = frame.partition(b"\n")
    info = json.loads(head)
    if not body:
        return ExecResult(False, None, info.get("error") or "crash", float(info["duration_s"]),
                          info.get("detail") or "")
    ok, error, detail, output, roundtrip, stdout, violation, _ = json.loads(body)
    return ExecResult(ok is True, output if isinstance(output, str) else None, error,
                      float(info["duration_s"]), detail or "", stdout or "", roundtrip is True, violation)


def _verdict(first: ExecResult, second: ExecResult) -> ValidationResult:
    took = first.duration_s + second.duration_s
    for r in (first, second):
        if r.violation:  # refused even if the program caught the error
            return ValidationResult(False, None, f"forbidden: {r.violation}", r.detail, took)
    for r in (first, second):
        if not r.ok:
            return ValidationResult(False, None, r.error, r.detail, took)
    if not (first.roundtrip and second.roundtrip):
        return ValidationResult(False, None, "unrepresentable",
                                "the output's repr does not evaluate back to the value", took)
    if first.output != second.output and not values_equal(first.output, second.output):
        return ValidationResult(False, None, "nondeterministic",
                                f"{first.output[:80]} != {second.output[:80]}", took)
    return ValidationResult(True, first.output, None, "", took)
