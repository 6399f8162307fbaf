"""The worker: one contained process that runs programs, one at a time.

Forked by the zygote, a worker locks itself down once (session, descriptors,
rlimits, unprivileged identity, scrubbed environment, audit hook) and then runs
programs sent to it, each in a fresh namespace and a fresh scratch directory.
Forking a process per run costs ~3 ms on small VMs (page faults dominate), a
reused worker ~0.1 ms, so workers are reused, but only while nothing happened: a
worker is replaced after any incident (timeout, memory, crash, a refused
operation, an oversized output), after any run that changed state shared with
later runs (see guard.StateGuard), and in any case after `max_runs` runs. Set
max_runs=1 for a fresh process per run. The worker reads requests on fd 3 and
answers on fd 4; both pipes lead to the trainer, which times every run.

Standard library only; imported as a top-level module inside the zygote.
"""

import ast
import builtins
import gc
import io
import json
import marshal
import os
import resource
import signal
import sys
import types

import isolation
import protocol
from audit import make_audit_hook
from checks import PARSE_ERRORS, literal_arguments, parse_call
from guard import reseed_random


class CappedText(io.TextIOBase):
    """stdout/stderr that keeps the first `cap` characters (threat: output floods)."""

    def __init__(self, cap):
        self.cap, self.parts, self.size = cap, [], 0

    def writable(self):
        return True

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("write() argument must be str")
        room = self.cap - self.size
        if room > 0:
            self.parts.append(s[:room])
            self.size += min(len(s), room)
        return len(s)

    def getvalue(self):
        return "".join(self.parts)


# ---------------------------------------------------------------- one run

def _short(exc):
    try:
        return f"{type(exc).__name__}: {exc}"[:500]
    except BaseException:
        return type(exc).__name__


def _error_kind(exc):
    return "memory" if isinstance(exc, MemoryError) else f"error: {type(exc).__name__}"


def _parse_call(inputs, literal_inputs):
    """Compile `f(<inputs>)`; with literal_inputs, return (args, kwargs) instead
    (threat: arguments that run code; literal_inputs=True refuses anything but literals)."""
    tree = parse_call(inputs)
    if not literal_inputs:
        return compile(tree, "<inputs>", "eval")
    return literal_arguments(tree.body)


_SCALARS = frozenset({int, str, bool, type(None), bytes, complex})
_isfinite = __import__("math").isfinite


def _plain(value, depth=0):
    """True when repr(value) certainly evaluates back to an equal value: built-in
    literal types all the way down (no subclasses, no nan/inf, no cycles)."""
    t = type(value)
    if t in _SCALARS:
        return t is not complex or (_isfinite(value.real) and _isfinite(value.imag))
    if t is float:
        return _isfinite(value)
    if depth > 50:
        return False
    if t is list or t is tuple or t is set:  # not frozenset: its repr is a call
        return all(_plain(v, depth + 1) for v in value)
    if t is dict:
        return all(_plain(k, depth + 1) and _plain(v, depth + 1) for k, v in value.items())
    return False


def _roundtrips(text, value, literal_eval):
    try:
        if _plain(value):
            return True
        return bool(literal_eval(text) == value)
    except BaseException:
        return False


def compile_program(program, guard, cache, code=None):
    """(code, tier, touches_files, uses_random), from `cache` when this worker saw
    the program before (the same program runs on many inputs; code objects are
    immutable). `code`: the trainer's compilation of the same source, if it made one."""
    entry = cache.get(program)
    if entry is None:
        if not isinstance(code, types.CodeType):
            code = compile(program, "<program>", "exec")
        entry = (code, *guard.classify(code))
        if len(cache) >= 256:
            del cache[next(iter(cache))]
        cache[program] = entry
    return entry


def execute(req, cfg, out, guard, violations, cache, _repr=repr, literal_eval=ast.literal_eval):
    """Run f(inputs). Returns (fields, tier, touches_files, uses_random); fields as
    encode_reply takes them."""
    def fail(kind, detail=""):
        return (False, kind, detail, None, False, out.getvalue(), violations[0] if violations else None)

    try:
        code, tier, touches, reseed = compile_program(req["program"], guard, cache, req.get("_code"))
    except PARSE_ERRORS as exc:
        return fail("syntax", _short(exc)), 0, False, False
    try:
        # The trainer sends the arguments' values when it parsed them already.
        call = req.get("_call") or _parse_call(req["inputs"], cfg["literal_inputs"])
    except ValueError as exc:
        if str(exc) == "inputs_not_literal":
            return fail("inputs_not_literal", "inputs must be Python literals"), tier, touches, reseed
        return fail("syntax: inputs", _short(exc)), tier, touches, reseed
    except PARSE_ERRORS as exc:
        return fail("syntax: inputs", _short(exc)), tier, touches, reseed
    namespace = {"__name__": "__sandbox__", "__builtins__": builtins}
    try:
        exec(code, namespace)
        fn = namespace.get("f")
        if not callable(fn):
            return fail("no_entry_function", "the program defines no function f"), tier, touches, reseed
        if isinstance(call, tuple):
            value = fn(*call[0], **call[1])
        else:
            value = eval(call, namespace)
    except BaseException as exc:
        return fail(_error_kind(exc), _short(exc)), tier, touches, reseed
    try:
        text = _repr(value)
        if type(text) is not str:
            raise TypeError("__repr__ returned a non-string")
    except BaseException as exc:  # threat: a repr that raises
        kind = "memory" if isinstance(exc, MemoryError) else f"repr_error: {type(exc).__name__}"
        return fail(kind, _short(exc)), tier, touches, reseed
    if len(text) > cfg["max_output_chars"]:  # threat: huge reprs
        return fail("output_too_large", f"the repr has {len(text)} characters"), tier, touches, reseed
    roundtrip = _roundtrips(text, value, literal_eval)
    return (True, None, "", text, roundtrip, out.getvalue(), violations[0] if violations else None), tier, touches, reseed


def _remove_tree(path):
    """Threat: leftover files, including directories a program made unreadable."""
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return
    except PermissionError:
        os.chmod(path, 0o700)
        entries = list(os.scandir(path))
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            _remove_tree(entry.path)
        else:
            os.unlink(entry.path)
    os.rmdir(path)


# An ordinary exception leaves the worker sound; these do not.
_INCIDENTS = ("memory", "crash", "output_too_large", "repr_error", "setup")


# ---------------------------------------------------------------- the worker

def lock_down(cfg, memory_mb, base, in_user_namespace):
    """Per-process containment, applied once before any user code."""
    parent = os.getppid()
    isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)  # threat: outliving the zygote
    os.setsid()  # own session and process group: one killpg reaches everything
    mem = int(memory_mb) << 20
    cpu = int((float(cfg["timeout_s"]) + 1) * int(cfg["max_runs"])) + 5
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))  # threat: spinning (backstop; the trainer times runs)
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))  # threat: unbounded memory
    fsize = int(cfg["file_size_mb"]) << 20
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))  # threat: filling the disk
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))  # threat: descriptor exhaustion
    resource.setrlimit(resource.RLIMIT_MEMLOCK, (0, 0))
    os.chdir(base)
    isolation.drop_privileges(int(cfg["run_uid"]), in_user_namespace)
    # The kernel clears the parent-death signal when credentials change (setuid above):
    # set it again, or a worker whose zygote is killed spins on as an orphan until its
    # CPU limit (seen: a timed-out loop at 100% of a core, parent pid 1, for minutes).
    isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the zygote died before the signal was armed again
        os._exit(1)
    # threat: fork bombs, leftover children and threads. Enforced for any uid but 0,
    # which is why a worker never runs as root.
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))


def encode_reply(nonce, fields, recycle, _enc=json.encoder.encode_basestring_ascii):
    """The reply frame's payload, built from references taken before any user code
    ran (a program may rebind json's module attributes; these stay the originals)."""
    ok, error, detail, output, roundtrip, stdout, violation = fields
    s = lambda v: "null" if v is None else _enc(v)  # noqa: E731
    # One byte: is this worker about to exit; then the request's nonce; then JSON.
    return (b"1" if recycle else b"0") + nonce + (
        f'[{"true" if ok else "false"},{s(error)},{s(detail)},{s(output)},'
        f'{"true" if roundtrip else "false"},{s(stdout)},{s(violation)},{s(recycle)}]').encode()


def prepare_zygote_state():
    """Put the zygote's Python-level state where a worker's will be when programs
    run, so the zygote can take the StateGuard snapshot once for all workers."""
    os.environ.clear()  # threat: secrets in the trainer's environment
    os.environ.update({"PATH": "", "LANG": "C.UTF-8"})
    sys.stdin = io.StringIO("")  # threat: blocking on stdin (input() sees end of file)


def worker_main(cfg, memory_mb, base, roots, in_user_namespace, devnull, req_fd, rep_fd, guard):
    """Entry of a freshly forked worker; never returns. `guard` was built in the zygote."""
    _exit, write_frame, loads = os._exit, protocol.write_frame, json.loads
    try:
        for fd in (0, 1, 2):  # threat: blocking on stdin, writing into the trainer's output
            os.dup2(devnull, fd)
        if rep_fd == 3:  # move it out of the way before 3 is overwritten
            rep_fd = os.dup(rep_fd)
        os.dup2(req_fd, 3)
        if rep_fd != 4:
            os.dup2(rep_fd, 4)
        os.closerange(5, 1 << 20)  # threat: inherited descriptors (the zygote's socket, ...)
        lock_down(cfg, memory_mb, base, in_user_namespace)
        reseed_random()
        guard.after_fork()
        violations, area = [], [base]
        if cfg["audit_hook"]:
            sys.addaudithook(make_audit_hook(area, roots, violations))
        gc.freeze()  # what exists now is never scanned again: collections stay cheap
        stdout_cap, max_runs = int(cfg["max_stdout_chars"]), int(cfg["max_runs"])
        runs, n, cache = 0, 1, {}
        scratch = f"{base}/r{n}"
        os.mkdir(scratch, 0o700)
        os.chdir(scratch)
    except BaseException as exc:
        # No request has arrived yet: answer the first one with the reason.
        payload = protocol.FrameReader(3).read()
        write_frame(4, encode_reply(payload[:8] if payload else b"\0" * 8,
                                    (False, "crash: setup", _short(exc), None, False, "", None), "setup"))
        _exit(1)
    requests = protocol.FrameReader(3)
    while True:
        try:
            payload = requests.read()
        except BaseException:
            payload = None
        if payload is None:
            _exit(0)
        runs += 1
        recycle = None
        nonce = payload[:8]
        try:
            head, _, extra = payload[8:].partition(b"\0")
            req = loads(head)
            if extra:  # the trainer's compiled code and argument values (marshal)
                req["_code"], req["_call"] = marshal.loads(extra)
            violations.clear()
            out = CappedText(stdout_cap)
            sys.stdout = sys.stderr = out
            area[0] = scratch
            fields, tier, touches, reseed = execute(req, cfg, out, guard, violations, cache)
            area[0] = base
            # The harness below must not call a program's len(): put builtins back.
            rebound = tier > 0 and guard.restore_builtins()
            guard.restore_streams()
            error = fields[1]
            if error and error.startswith(_INCIDENTS):
                recycle = error
            elif violations:
                recycle = "refused operation"
            elif tier == 2:
                recycle = "introspection"
            elif rebound:
                recycle = "builtins rebound"
            elif runs >= max_runs:
                recycle = "max_runs"
            else:
                recycle = guard.changed(tier)
            if not recycle and tier > 0:
                guard.restore_settings(reseed)
            if not recycle and touches:
                os.closerange(5, 1 << 20)  # descriptors the program left open
                os.chdir(base)
                try:
                    # The next run gets an empty directory: reuse this one when it is
                    # untouched, otherwise remove it and make a new one.
                    if len(os.listdir(base)) != 1:  # threat: files left beside the scratch directory
                        recycle = "files outside the scratch directory"
                    elif os.listdir(scratch) or os.stat(scratch).st_mode & 0o7777 != 0o700:
                        _remove_tree(scratch)
                        n += 1
                        scratch = f"{base}/r{n}"
                        os.mkdir(scratch, 0o700)
                    os.chdir(scratch)
                except OSError:
                    recycle = "scratch cleanup failed"
        except BaseException as exc:
            fields = (False, "crash: harness", _short(exc), None, False, "", None)
            recycle = "harness"
        try:
            write_frame(4, encode_reply(nonce, fields, recycle))
        except BaseException:
            _exit(1)
        if recycle:
            _exit(0)  # the trainer has the zygote reap us, kill anything left, remove our files
