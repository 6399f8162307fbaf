"""Trainer side of the executor: PythonExecutor, ExecResult, ValidationResult.

The trainer never executes model-written code. Each of `workers` slots is a
zygote process (zygote.py) that sets up containment and forks a contained worker
(harness.py); the zygote hands this process the worker's pipes, so requests go
straight to the worker and this process times every run. After an incident the
zygote kills the worker and everything it left, and forks a fresh one. Every
failure comes back as a result with a reason: a program can make its own run
fail, never the caller.
"""

from __future__ import annotations

import collections
import json
import marshal
import os
import queue
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Iterable, Sequence

from . import proctree, protocol
from .checks import DEFAULT_FORBIDDEN, check_inputs_tree, check_program_code, literal_arguments
from .values import values_equal

ZYGOTE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "zygote.py")
START_TIMEOUT_S = 30.0
PIPELINE = 4  # requests queued per worker (see PythonExecutor._drive)
PIPELINE_MAX_BYTES = 12 << 10  # larger ones wait for an idle worker (all queued must fit a 64 KiB pipe)
GRACE_S = 5.0  # close() waits this long past the timeout for runs in flight
REAP_S = 10.0  # bound on each wait for sandbox processes to be reaped (a loaded machine)


@dataclass(frozen=True)
class ExecResult:
    """One run of f(inputs).

    ok: f returned. output: repr(f(*args)) when ok. error: None, or a reason:
    'syntax', 'syntax: inputs', 'inputs_not_literal', 'no_entry_function',
    'error: <ExceptionType>', 'timeout', 'memory', 'output_too_large',
    'repr_error: <Type>', 'crash: <signal, exit or garbled reply>', 'executor_error'.
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
    """One worker slot: the zygote process and the pipes of its current worker."""

    def __init__(self, cfg: dict):
        # An environment of our own, nothing inherited (threat: secrets in the
        # trainer's environment, PYTHONPATH and friends). PYTHONHASHSEED=0: the
        # order of sets of strings is the same in every worker and every session,
        # so a gold answer checked later is reproduced exactly. (-I would ignore
        # PYTHONHASHSEED; -s -S give the rest of isolated mode.)
        env = {"PYTHONHASHSEED": "0", "LC_ALL": "C.UTF-8", "PATH": os.defpath}
        self.ctl, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-s", "-S", "-B", ZYGOTE, json.dumps(dict(cfg, ctl_fd=theirs.fileno()))],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=env, cwd="/",
                start_new_session=True, pass_fds=(theirs.fileno(),))
        finally:
            theirs.close()
        self.w_in = self.w_out = None  # the current worker's request and reply pipes
        self.memory_mb = int(cfg["memory_mb"])
        self.report: dict | None = None
        self._kill_lock = threading.RLock()
        self._tree: list | None = None  # what begin_kill found below the zygote

    def _ask(self, message: dict | None, wait_s: float) -> dict:
        """Send a control message (None: just listen); adopt the worker pipes that come back."""
        if message is not None:
            self.ctl.send(json.dumps(message).encode())
        if not select.select([self.ctl], [], [], wait_s)[0]:
            raise TimeoutError("the sandbox process did not answer")
        data, fds, _, _ = socket.recv_fds(self.ctl, 1 << 20, 2)
        if not data:
            raise EOFError("the sandbox process exited")
        reply = json.loads(data)
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            raise RuntimeError(reply.get("error") or "the sandbox process sent no worker")
        self._close_pipes()
        self.w_in, self.w_out = fds
        return reply

    def wait_ready(self) -> dict:
        try:
            msg = self._ask(None, START_TIMEOUT_S)
        except Exception as exc:
            self.kill()
            raise RuntimeError(f"the executor's sandbox process did not start ({exc}); "
                               "run with isolation='process' if namespaces are the problem") from None
        self.report = msg["containment"]
        return self.report

    def respawn(self, memory_mb: int) -> str | None:
        """Have the zygote kill the current worker (and all it left) and fork a new
        one; returns how the old worker died when it was already dead."""
        self.memory_mb = memory_mb
        return self._ask({"op": "respawn", "memory_mb": memory_mb}, START_TIMEOUT_S).get("died")

    def _close_pipes(self) -> None:
        for fd in (self.w_in, self.w_out):
            if fd is not None:
                os.close(fd)
        self.w_in = self.w_out = None

    def pids(self) -> list[int]:
        return [self.proc.pid]

    def begin_kill(self, close_pipes: bool = True) -> None:
        """SIGKILL every process below the zygote and tell the zygote to exit; does not wait.

        Below the zygote are its worker, or init of its PID namespace (whose death
        takes every process in the namespace along, init reaping them). The zygote
        stays alive to reap its child, so the whole tree is reaped by its parents.
        `close_pipes=False` keeps our ends of the worker's pipes open for a thread
        still selecting on them (closing them under it could hand it a reused fd);
        `close()` closes them once every thread has handed its slot back.
        """
        with self._kill_lock:
            if self._tree is not None:
                return
            self._tree = proctree.descendants(self.proc.pid)
            proctree.kill_all(self._tree)
            if close_pipes:
                self._close_pipes()
            self.ctl.close()  # end of file: the zygote reaps its worker and exits

    def finish_kill(self) -> list:
        """Wait (bounded) until the zygote and everything below it are reaped; returns
        the processes still there after REAP_S (none unless the machine is stuck)."""
        self.begin_kill()
        with self._kill_lock:
            late = proctree.descendants(self.proc.pid)  # forked since begin_kill (a start racing close)
            proctree.kill_all(late)
            self._tree = self._tree + [p for p in late if p not in self._tree]
            try:
                self.proc.wait(timeout=REAP_S)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                self.proc.wait()
            return proctree.wait_gone(self._tree, REAP_S)

    def kill(self) -> None:
        """Stop the zygote and everything it started; returns when they are reaped. Idempotent."""
        self.begin_kill()
        self.finish_kill()


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
        self.literal_inputs = bool(literal_inputs)
        self._host_scratch = tempfile.mkdtemp(prefix="selftaught-exec-")
        os.chmod(self._host_scratch, 0o711)  # the unprivileged run uid must reach its directory
        # Removed at interpreter exit even if close() is never called (the zygotes
        # exit by themselves when this process's end of their socket closes).
        weakref.finalize(self, shutil.rmtree, self._host_scratch, True)
        self._cfg = {
            "isolation": isolation, "audit_hook": bool(audit_hook), "literal_inputs": bool(literal_inputs),
            "max_runs": max(1, int(max_runs_per_worker)), "max_output_chars": int(max_output_chars),
            "max_stdout_chars": int(max_stdout_chars), "file_size_mb": int(file_size_mb),
            "scratch_mb": int(scratch_mb), "run_uid": int(run_uid), "timeout_s": self.timeout_s,
            "memory_mb": self.memory_mb, "host_scratch": self._host_scratch,
        }
        self._reply_limit = 4 * (int(max_output_chars) + int(max_stdout_chars)) + 65536
        self._lock = threading.Lock()
        self._closed = False
        self._idle: queue.Queue = queue.Queue()
        self._all: list[_Zygote | None] = []
        self._started: list[_Zygote] = []  # every zygote ever started, for close() to reap
        zygotes: list[_Zygote] = []
        try:
            for i in range(self.workers):  # start them all, then wait: they start in parallel
                zygotes.append(self._new_zygote(i))
            for z in zygotes:
                z.wait_ready()
        except BaseException:
            for z in zygotes:
                z.kill()
            self._closed = True
            shutil.rmtree(self._host_scratch, ignore_errors=True)
            raise
        self._all = list(zygotes)
        for i in range(self.workers):
            self._idle.put(i)
        self.containment = dict(self._all[0].report, workers=self.workers)

    # ------------------------------------------------------------ lifecycle

    def _new_zygote(self, i: int) -> _Zygote:
        with self._lock:  # never start one that close() would not see
            if self._closed:
                raise RuntimeError("this PythonExecutor is closed")
            cfg = dict(self._cfg, host_scratch=os.path.join(self._host_scratch, f"z{i}-{time.monotonic_ns()}"))
            os.mkdir(cfg["host_scratch"], 0o711)
            z = _Zygote(cfg)
            self._started = [s for s in self._started if s._tree is None] + [z]
            return z

    def __enter__(self) -> "PythonExecutor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop every sandbox process and remove the scratch area. Idempotent.

        Synchronous: when it returns, every process this executor started has been
        reaped (each wait bounded by REAP_S). Runs in flight on other threads end
        with 'executor_error' (their workers are killed first, which wakes them);
        those threads hand their slots back before the pipes they read are closed.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            zygotes = list(self._started)
        handed_back = 0
        for z in zygotes:  # kill first: a thread waiting on a worker sees end of file at once
            z.begin_kill(close_pipes=False)
        deadline = time.monotonic() + self.timeout_s + GRACE_S
        while handed_back < len(self._all):  # the slots come back as their threads notice
            try:
                self._idle.get(timeout=max(0.0, deadline - time.monotonic()))
                handed_back += 1
            except queue.Empty:
                break
        for z in zygotes:
            if handed_back == len(self._all):
                z._close_pipes()
            z.finish_kill()
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
        items = list(items)
        feed = ((k, _request(p, i) if isinstance(p, str) and isinstance(i, str) else None)
                for k, (p, i) in enumerate(items))
        results = self._run_feed(feed, len(items), timeout_s, memory_mb)
        return [results[k] for k in range(len(items))]

    def _run_feed(self, feed, size: int, timeout_s: float | None, memory_mb: int | None) -> dict:
        """Run the (key, payload) pairs `feed` yields; {key: ExecResult}. The feed is
        pulled lazily, while workers run earlier requests (see _drive)."""
        if self._closed:
            raise RuntimeError("this PythonExecutor is closed")
        timeout = self.timeout_s if timeout_s is None else float(timeout_s)
        memory = self.memory_mb if memory_mb is None else int(memory_mb)
        results: dict = {}
        while True:  # wait for a free worker, but not past close()
            try:
                held = [self._idle.get(timeout=0.1)]
                break
            except queue.Empty:
                if self._closed:
                    raise RuntimeError("this PythonExecutor is closed") from None
        while len(held) < min(max(size, 1), self.workers):
            try:
                held.append(self._idle.get_nowait())
            except queue.Empty:
                break
        try:
            self._drive(held, iter(feed), results, timeout, memory)
        finally:
            for i in held:
                self._idle.put(i)
        return results

    def _drive(self, held: list[int], feed, results: dict, timeout: float, memory: int) -> None:
        """Send requests to the held workers, read replies as they come (select),
        time every run, and have a worker replaced after any incident.

        Each worker has up to PIPELINE requests queued in its pipe, so it never
        sleeps between runs and one wake-up of either side serves several runs
        (on a busy machine every wake-up waits for a CPU). A worker runs
        its queue in order, so a request's clock starts when the previous reply
        is read (never earlier than the worker could start it). Requests queued
        behind one that ends its worker are sent again. Preparing the next
        requests (checks, compiling) happens while workers run.
        """
        queues = {i: collections.deque() for i in held}  # in flight: [key, payload, nonce, retried]
        started: dict[int, float] = {}  # worker -> when its head request's clock started
        readers: dict[int, protocol.FrameReader] = {}
        pending: collections.deque = collections.deque()  # (key, payload, retried), next on the left
        exhausted = False

        def pull() -> bool:
            nonlocal exhausted
            while not exhausted:
                try:
                    key, payload = next(feed)
                except StopIteration:
                    exhausted = True
                    break
                if payload is None:
                    results[key] = ExecResult(False, None, "syntax", 0.0, "program and inputs must be strings")
                else:
                    pending.append((key, payload, False))
                    return True
            return False

        while True:
            if self._closed:  # close() killed the workers: settle everything, start nothing
                closed = ExecResult(False, None, "executor_error", 0.0, "the executor was closed")
                while pull():
                    pass
                for key, *_ in [*pending, *(q for i in held for q in queues[i])]:
                    results[key] = closed
                return
            for i in held:  # fill every queue up to PIPELINE
                while len(queues[i]) < PIPELINE and (pending or pull()):
                    key, payload, retried = pending[0]
                    if queues[i] and len(payload) > PIPELINE_MAX_BYTES:
                        break  # only small requests wait in a pipe: a full pipe would block us
                    pending.popleft()
                    sent = self._send(i, key, payload, retried, queues, started, readers, results, memory)
                    if sent is None:  # the worker is exiting: send it again after its replacement
                        pending.appendleft((key, payload, retried))
                        break
                    if not sent:
                        # The slot failed (the zygote died or would not start): what it
                        # had queued goes back, and this request is tried once more.
                        pending.extendleft(reversed([(k, p, r) for k, p, _, r in queues[i]]))
                        queues[i].clear()
                        if retried:
                            results[key] = ExecResult(False, None, "executor_error", 0.0, str(sent))
                        else:
                            pending.appendleft((key, payload, True))
                        break
            active = [i for i in held if queues[i]]
            if not active:
                if exhausted and not pending:
                    return
                continue
            now = time.monotonic()
            wait = max(0.0, min(started[i] for i in active) + timeout - now)
            if not exhausted and len(pending) < len(held):
                wait = 0.0  # nothing waits on us: prepare the next request meanwhile
            by_fd = {self._all[i].w_out: i for i in active}
            ready, _, _ = select.select(list(by_fd), [], [], wait)
            if not ready and wait == 0.0 and pull():
                continue
            for fd in ready:
                self._collect(by_fd[fd], timeout, memory, queues, started, readers, pending, results)
            now = time.monotonic()
            for i in active:
                if queues[i] and now >= started[i] + timeout and self._all[i] is not None:
                    # threat: spinning, sleeping, blocking: the head request overran
                    self._finish(i, ExecResult(False, None, "timeout", now - started[i]), True,
                                 memory, queues, started, readers, pending, results)

    def _send(self, i, key, payload, retried, queues, started, readers, results, memory):
        """Queue one request on worker i: True; None when the worker is going away
        with requests queued (not sent); a false _SlotFailed when the slot failed."""
        try:
            z = self._all[i]
            if z is None:
                z = self._all[i] = self._restart(i)
                readers.pop(i, None)
            if z.memory_mb != memory and not queues[i]:
                z.respawn(memory)
                readers.pop(i, None)
            # threat: forged or stale replies. A fresh nonce per request, echoed by
            # the harness: bytes a program wrote into its reply pipe can never pass
            # for a later run's answer.
            nonce = os.urandom(8)
            try:
                protocol.write_frame(z.w_in, nonce + payload)
            except OSError:  # the worker exited (after a reply that says so, or by itself)
                if queues[i]:
                    return None  # its reply or its end of file settles the queue first
                z.respawn(memory)
                readers.pop(i, None)
                protocol.write_frame(z.w_in, nonce + payload)
        except Exception as exc:  # a slot that cannot start or take work
            self._discard(i)
            return _SlotFailed(f"sandbox process lost ({type(exc).__name__}: {exc})")
        if not queues[i]:
            started[i] = time.monotonic()
        queues[i].append([key, payload, nonce, retried])
        return True

    def _collect(self, i, timeout, memory, queues, started, readers, pending, results) -> None:
        """Read what worker i wrote and settle every complete reply in it."""
        z = self._all[i]
        reader = readers.get(i)
        if reader is None or reader.fd != z.w_out:
            reader = readers[i] = protocol.FrameReader(z.w_out, self._reply_limit)
        try:
            alive = reader.fill()
        except OSError:
            alive = False
        while queues[i]:
            key, payload, nonce, retried = queues[i][0]
            duration = time.monotonic() - started[i]
            try:
                frame = reader.next_frame()
            except protocol.FrameTooLarge:  # threat: output floods
                self._finish(i, ExecResult(False, None, "output_too_large", duration), True,
                             memory, queues, started, readers, pending, results)
                return
            if frame is None:
                if not alive:  # the worker died without answering
                    self._finish(i, None, True, memory, queues, started, readers, pending, results)
                return
            if frame[1:9] != nonce:
                # Left over from an earlier run that wrote into its pipe, or forged
                # now: replace the worker and send the request once more.
                if not retried:
                    queues[i][0][3] = True
                    self._finish(i, "retry", True, memory, queues, started, readers, pending, results)
                else:
                    self._finish(i, ExecResult(False, None, "crash: garbled reply", duration), True,
                                 memory, queues, started, readers, pending, results)
                return
            try:
                ok, error, detail, output, roundtrip, stdout, violation, _ = json.loads(frame[9:])
                result = ExecResult(ok is True, output if isinstance(output, str) else None, error, duration,
                                    detail or "", stdout or "", roundtrip is True, violation)
            except (ValueError, TypeError):
                result = ExecResult(False, None, "crash: garbled reply", duration)
            exiting = frame[:1] != b"0"  # "1": the worker exits after this reply
            self._finish(i, result, exiting, memory, queues, started, readers, pending, results)
            if exiting:
                return

    def _finish(self, i, result, replace, memory, queues, started, readers, pending, results) -> None:
        """Settle worker i's head request with `result` ("retry": send it again;
        None: the worker died, ask the zygote how). With `replace`, the worker is
        replaced and the requests queued behind go back to be sent again."""
        head = queues[i].popleft()
        now = time.monotonic()
        if replace:
            requeue = [(k, p, r) for k, p, _, r in queues[i]]
            queues[i].clear()
            readers.pop(i, None)
            try:
                died = self._all[i].respawn(memory)
            except Exception as exc:  # the zygote itself failed: the slot restarts on next use
                self._discard(i)
                died = "executor_error"
                if result is None or result == "retry":
                    if not head[3]:
                        result = "retry"  # not the program's doing: once more, on a fresh slot
                    else:
                        result = ExecResult(False, None, "executor_error", now - started[i],
                                            f"sandbox process lost ({type(exc).__name__}: {exc})")
            if result is None:  # the worker died without answering
                if died is None and not head[3]:
                    # It exited cleanly, as a worker does between runs when its
                    # request pipe is gone: this request never ran. Once more.
                    result = "retry"
                else:
                    result = ExecResult(False, None, died or "crash: exit 0", now - started[i])
            if result == "retry":
                requeue.insert(0, (head[0], head[1], True))
            pending.extendleft(reversed(requeue))
        if result != "retry":
            results[head[0]] = result
        started[i] = now  # the next request in the queue starts now

    def _discard(self, i: int) -> None:
        z, self._all[i] = self._all[i], None
        if z is not None:
            z.kill()

    def _restart(self, i: int) -> _Zygote:
        z = self._new_zygote(i)
        z.wait_ready()
        return z

    # ------------------------------------------------------------ validation

    def validate(self, program: str, inputs: str, *, timeout_s: float | None = None,
                 memory_mb: int | None = None) -> ValidationResult:
        """Is (program, inputs) a valid task? Static checks, then two independent runs.

        The checks, in order: parse; exactly one entry function f taking arguments;
        the forbidden names; both runs finish without error, without a refused
        operation, within the limits; the output's repr evaluates back to the
        value; the two outputs agree. `output` is then the gold answer.
        timeout_s and memory_mb override the executor's limits for these runs.
        """
        return self.validate_many([(program, inputs)], timeout_s=timeout_s, memory_mb=memory_mb)[0]

    def validate_many(self, items: Sequence[tuple[str, str]], *, timeout_s: float | None = None,
                      memory_mb: int | None = None) -> list[ValidationResult]:
        """validate() for many proposals, their runs spread over all workers."""
        items = list(items)
        verdicts: list[ValidationResult | None] = [None] * len(items)

        def feed():  # pulled while workers run earlier proposals
            for k, (program, inputs) in enumerate(items):
                verdict, payload = self._prepare(program, inputs)
                if verdict is not None:
                    verdicts[k] = verdict
                else:
                    yield (k, 0), payload
                    yield (k, 1), payload  # determinism: two independent runs

        runs = self._run_feed(feed(), 2 * len(items), timeout_s, memory_mb)
        return [v if v is not None else _verdict(runs[(k, 0)], runs[(k, 1)]) for k, v in enumerate(verdicts)]

    def _prepare(self, program: str, inputs: str) -> tuple[ValidationResult | None, bytes | None]:
        """Static checks; then the request, with the program compiled and the
        literal arguments evaluated here, once, rather than in both workers (for
        short programs that is most of a run's time)."""
        static, code = check_program_code(program, self.forbidden, allow_helpers=self.allow_helpers)
        if not static:
            static, call = check_inputs_tree(inputs, self.forbidden)
        if static:
            return ValidationResult(False, None, static[0], static[1]), None
        try:
            values = literal_arguments(call) if self.literal_inputs else None
        except ValueError as exc:
            if str(exc) != "inputs_not_literal":
                raise
            return ValidationResult(False, None, "inputs_not_literal", "inputs must be Python literals"), None
        try:
            extra = marshal.dumps((code, values))
        except ValueError:  # not marshallable (cannot happen for literals): the worker parses
            extra = marshal.dumps((code, None))
        return None, _request(program, inputs, extra)


class _SlotFailed(str):
    """Why a slot could not take a request (false, so `if not sent` reads well)."""

    def __bool__(self) -> bool:
        return False


def _request(program: str, inputs: str, extra: bytes | None = None) -> bytes:
    """A worker request: JSON, then optionally a NUL and marshal((code, values)):
    the program compiled and the arguments evaluated by the trainer. (JSON escapes
    every control character, so the NUL is unambiguous.)"""
    head = json.dumps({"program": program, "inputs": inputs}).encode()
    return head if extra is None else head + b"\0" + extra


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
