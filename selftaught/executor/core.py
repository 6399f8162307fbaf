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
import enum
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
from dataclasses import dataclass, field
from typing import Hashable, Iterable, Iterator, Sequence

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
        self.finish_kill()  # it begins the kill first


# ------------------------------------------------------------ one call's state
#
# A call to run_many/validate_many holds some worker slots and drives them from
# one thread. What it shares between sending, reading and settling is a _Batch:
# the requests still to send, one _Lane per held slot (the requests written into
# that worker's pipe, in the order the worker runs them), and the results.


@dataclass(slots=True)
class _Request:
    """One run to do: its key in the results, the request bytes (see _request),
    and whether it has had its one retry (a request that is not the program's
    doing to fail gets one; failing again settles it)."""

    key: Hashable
    payload: bytes
    retried: bool = False


@dataclass(slots=True)
class _InFlight:
    """A request written into a worker's pipe, waiting for its reply."""

    request: _Request
    nonce: bytes  # echoed by the harness: a reply without it is not this request's answer


@dataclass(slots=True)
class _Lane:
    """One held worker slot: its requests in flight, and the clock of the first."""

    slot: int  # index into PythonExecutor._all
    in_flight: collections.deque[_InFlight] = field(default_factory=collections.deque)  # head first
    clock_started: float = 0.0  # when the head request's clock started (its worker could start it)
    reader: protocol.FrameReader | None = None  # None: make one for the current worker's reply pipe


@dataclass(slots=True)
class _Batch:
    """The state of one run_many/validate_many call while it drives its workers."""

    feed: Iterator  # (key, payload) pairs, pulled lazily; payload None: not strings
    timeout_s: float
    memory_mb: int
    lanes: list[_Lane]
    results: dict[Hashable, ExecResult] = field(default_factory=dict)
    pending: collections.deque[_Request] = field(default_factory=collections.deque)  # next on the left
    exhausted: bool = False  # the feed has yielded its last pair

    def pull(self) -> bool:
        """Move the feed's next request to the end of `pending`; False once the feed is
        exhausted. Items that are not strings are settled here, never sent."""
        while not self.exhausted:
            try:
                key, payload = next(self.feed)
            except StopIteration:
                self.exhausted = True
                break
            if payload is None:
                self.results[key] = ExecResult(False, None, "syntax", 0.0,
                                               "program and inputs must be strings")
            else:
                self.pending.append(_Request(key, payload))
                return True
        return False

    def requeue(self, requests: Iterable[_Request]) -> None:
        """Put `requests` back at the front of `pending`, in their order."""
        self.pending.extendleft(reversed(list(requests)))


class _Outcome(enum.Enum):
    """How a worker's head request ended, when its worker is replaced (_replace_worker)."""

    RESULT = "result"      # the ExecResult that comes with it is the run's result
    RETRY = "retry"        # not the program's doing: send it again, as its one retry
    NO_REPLY = "no reply"  # the worker died without answering: the zygote says how


class _SlotLost(Exception):
    """A slot's zygote died or would not start; the message says why."""


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
        batch = _Batch(iter(feed), timeout, memory, [_Lane(i) for i in held])
        try:
            self._drive(batch)
        finally:
            for i in held:
                self._idle.put(i)
        return batch.results

    def _drive(self, batch: _Batch) -> None:
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
        while True:
            if self._closed:  # close() killed the workers: settle everything, start nothing
                self._settle_all_closed(batch)
                return
            for lane in batch.lanes:
                self._fill(batch, lane)
            active = [lane for lane in batch.lanes if lane.in_flight]
            if not active:
                if batch.exhausted and not batch.pending:
                    return
                continue
            wait = max(0.0, min(lane.clock_started for lane in active) + batch.timeout_s - time.monotonic())
            if not batch.exhausted and len(batch.pending) < len(batch.lanes):
                wait = 0.0  # nothing waits on us: prepare the next request meanwhile
            by_fd = {self._all[lane.slot].w_out: lane for lane in active}
            ready, _, _ = select.select(list(by_fd), [], [], wait)
            if not ready and wait == 0.0 and batch.pull():
                continue
            for fd in ready:
                self._collect(batch, by_fd[fd])
            now = time.monotonic()
            for lane in active:
                overran = now >= lane.clock_started + batch.timeout_s
                if lane.in_flight and overran and self._all[lane.slot] is not None:
                    # threat: spinning, sleeping, blocking: the head request overran
                    self._replace_worker(batch, lane, _Outcome.RESULT,
                                         ExecResult(False, None, "timeout", now - lane.clock_started))

    def _settle_all_closed(self, batch: _Batch) -> None:
        """End every request of the call, sent or not, with 'executor_error'."""
        closed = ExecResult(False, None, "executor_error", 0.0, "the executor was closed")
        while batch.pull():
            pass
        in_flight = [entry.request for lane in batch.lanes for entry in lane.in_flight]
        for request in [*batch.pending, *in_flight]:
            batch.results[request.key] = closed

    def _fill(self, batch: _Batch, lane: _Lane) -> None:
        """Write pending requests into lane's worker's pipe, up to PIPELINE of them."""
        while len(lane.in_flight) < PIPELINE and (batch.pending or batch.pull()):
            request = batch.pending[0]
            if lane.in_flight and len(request.payload) > PIPELINE_MAX_BYTES:
                return  # only small requests wait in a pipe: a full pipe would block us
            batch.pending.popleft()
            try:
                queued = self._send(batch, lane, request)
            except _SlotLost as lost:
                self._slot_lost(batch, lane, request, str(lost))
                return
            if not queued:  # the worker is exiting: send it again after its replacement
                batch.pending.appendleft(request)
                return

    def _slot_lost(self, batch: _Batch, lane: _Lane, request: _Request, reason: str) -> None:
        """The slot could not take `request`: what it had queued goes back, and the
        request is tried once more (on a fresh slot) unless it had its retry."""
        batch.requeue(entry.request for entry in lane.in_flight)
        lane.in_flight.clear()
        if request.retried:
            batch.results[request.key] = ExecResult(False, None, "executor_error", 0.0, reason)
        else:
            request.retried = True
            batch.pending.appendleft(request)

    def _send(self, batch: _Batch, lane: _Lane, request: _Request) -> bool:
        """Write `request` into lane's worker's pipe: True. False when the worker is
        going away with requests still queued (not sent: their replies settle first).
        Raises _SlotLost, the slot discarded, when it cannot start or take work."""
        try:
            zygote = self._all[lane.slot]
            if zygote is None:
                zygote = self._all[lane.slot] = self._restart(lane.slot)
                lane.reader = None
            if zygote.memory_mb != batch.memory_mb and not lane.in_flight:
                zygote.respawn(batch.memory_mb)
                lane.reader = None
            # threat: forged or stale replies. A fresh nonce per request, echoed by
            # the harness: bytes a program wrote into its reply pipe can never pass
            # for a later run's answer.
            nonce = os.urandom(8)
            try:
                protocol.write_frame(zygote.w_in, nonce + request.payload)
            except OSError:  # the worker exited (after a reply that says so, or by itself)
                if lane.in_flight:
                    return False  # its reply or its end of file settles the queue first
                zygote.respawn(batch.memory_mb)
                lane.reader = None
                protocol.write_frame(zygote.w_in, nonce + request.payload)
        except Exception as exc:  # a slot that cannot start or take work
            self._discard(lane.slot)
            raise _SlotLost(f"sandbox process lost ({type(exc).__name__}: {exc})") from None
        if not lane.in_flight:
            lane.clock_started = time.monotonic()
        lane.in_flight.append(_InFlight(request, nonce))
        return True

    def _collect(self, batch: _Batch, lane: _Lane) -> None:
        """Read what lane's worker wrote and settle every complete reply in it."""
        zygote = self._all[lane.slot]
        if lane.reader is None or lane.reader.fd != zygote.w_out:
            lane.reader = protocol.FrameReader(zygote.w_out, self._reply_limit)
        reader = lane.reader
        try:
            alive = reader.fill()
        except OSError:
            alive = False
        while lane.in_flight:
            head = lane.in_flight[0]
            duration = time.monotonic() - lane.clock_started
            try:
                frame = reader.next_frame()
            except protocol.FrameTooLarge:  # threat: output floods
                self._replace_worker(batch, lane, _Outcome.RESULT,
                                     ExecResult(False, None, "output_too_large", duration))
                return
            if frame is None:
                if not alive:  # the worker died without answering
                    self._replace_worker(batch, lane, _Outcome.NO_REPLY)
                return
            if frame[1:9] != head.nonce:
                # Left over from an earlier run that wrote into its pipe, or forged
                # now: replace the worker and send the request once more.
                if head.request.retried:
                    self._replace_worker(batch, lane, _Outcome.RESULT,
                                         ExecResult(False, None, "crash: garbled reply", duration))
                else:
                    self._replace_worker(batch, lane, _Outcome.RETRY)
                return
            result = _parse_reply(frame[9:], duration)
            if frame[:1] == b"0":
                self._settle_head(batch, lane, result)
            else:  # "1": the worker exits after this reply
                self._replace_worker(batch, lane, _Outcome.RESULT, result)
                return

    def _settle_head(self, batch: _Batch, lane: _Lane, result: ExecResult) -> None:
        """Lane's head request ran to `result`; the worker goes on with the next."""
        head = lane.in_flight.popleft()
        batch.results[head.request.key] = result
        lane.clock_started = time.monotonic()  # the next request in the queue starts now

    def _replace_worker(self, batch: _Batch, lane: _Lane, outcome: _Outcome,
                        result: ExecResult | None = None) -> None:
        """End lane's head request with `outcome` (and `result`, for RESULT), and have
        the zygote replace the worker; the requests queued behind go back to be sent
        again. RETRY spends the head's one retry."""
        request = lane.in_flight.popleft().request
        now = time.monotonic()
        if outcome is _Outcome.RETRY:
            request.retried = True  # if the slot is lost now too, the request is settled
        queued_behind = [entry.request for entry in lane.in_flight]
        lane.in_flight.clear()
        lane.reader = None
        try:
            died, lost = self._all[lane.slot].respawn(batch.memory_mb), None
        except Exception as exc:  # the zygote itself failed: the slot restarts on next use
            self._discard(lane.slot)
            died, lost = None, f"sandbox process lost ({type(exc).__name__}: {exc})"
        if outcome is not _Outcome.RESULT:  # the program's run did not decide it
            if lost is not None:  # not the program's doing: once more, on a fresh slot
                if request.retried:
                    outcome, result = _Outcome.RESULT, ExecResult(
                        False, None, "executor_error", now - lane.clock_started, lost)
                else:
                    outcome = _Outcome.RETRY
            elif outcome is _Outcome.NO_REPLY:
                if died is None and not request.retried:
                    # It exited cleanly, as a worker does between runs when its
                    # request pipe is gone: this request never ran. Once more.
                    outcome = _Outcome.RETRY
                else:
                    outcome, result = _Outcome.RESULT, ExecResult(
                        False, None, died or "crash: exit 0", now - lane.clock_started)
        if outcome is _Outcome.RETRY:
            request.retried = True
            batch.requeue([request, *queued_behind])
        else:
            batch.results[request.key] = result
            batch.requeue(queued_behind)
        lane.clock_started = now  # the next request in the queue starts now

    def _discard(self, i: int) -> None:
        """Kill slot i's zygote and all below it; the slot restarts on next use."""
        z, self._all[i] = self._all[i], None
        if z is not None:
            z.kill()

    def _restart(self, i: int) -> _Zygote:
        """A new zygote for slot i, its worker ready."""
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


def _request(program: str, inputs: str, extra: bytes | None = None) -> bytes:
    """A worker request: JSON, then optionally a NUL and marshal((code, values)):
    the program compiled and the arguments evaluated by the trainer. (JSON escapes
    every control character, so the NUL is unambiguous.)"""
    head = json.dumps({"program": program, "inputs": inputs}).encode()
    return head if extra is None else head + b"\0" + extra


def _parse_reply(body: bytes, duration_s: float) -> ExecResult:
    """A worker's reply after its flag and nonce: the JSON list the harness writes.

    threat: a program can write its own run's reply (it runs in the worker, beside
    the nonce). It may decide its own result, as it could by returning a value, but
    anything that is not what the harness writes (a string where ExecResult has one,
    an output when ok, an error when not) is a 'crash: garbled reply', never a
    field of another type for the caller to trip over.
    """
    try:
        fields = json.loads(body)
    except ValueError:
        return ExecResult(False, None, "crash: garbled reply", duration_s)
    if not (isinstance(fields, list) and len(fields) == 8):
        return ExecResult(False, None, "crash: garbled reply", duration_s, "not the harness's reply")
    ok, error, detail, output, roundtrip, stdout, violation, _ = fields
    texts_or_none = all(v is None or isinstance(v, str) for v in (error, detail, output, stdout, violation))
    settled = isinstance(output, str) and error is None if ok is True else isinstance(error, str)
    if not (texts_or_none and settled):
        return ExecResult(False, None, "crash: garbled reply", duration_s, "not the harness's reply")
    return ExecResult(ok is True, output, error, duration_s, detail or "", stdout or "",
                      roundtrip is True, violation)


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
