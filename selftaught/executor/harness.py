"""The worker: one contained process that runs programs, one at a time.

Forked by the zygote, a worker locks itself down once (session, descriptors,
rlimits, unprivileged identity, scrubbed environment, audit hook) and then runs
programs sent to it, each in a fresh namespace and a fresh scratch directory.
Forking a process per run costs ~3 ms on small VMs (page faults dominate), a
reused worker ~0.1 ms, so workers are reused, but only while nothing happened:
the zygote discards a worker after any incident (timeout, memory, crash, a refused
operation, an oversized output) and after any run that changed state shared with
later runs (see StateGuard), and in any case after `max_runs` runs. Set
max_runs=1 for a fresh process per run.

Standard library only; imported as a top-level module inside the zygote.
"""

import ast
import builtins
import gc
import io
import json
import opcode
import os
import resource
import signal
import sys
import types

import isolation
import protocol

STORE_ATTR, DELETE_ATTR = opcode.opmap["STORE_ATTR"], opcode.opmap["DELETE_ATTR"]


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


# ---------------------------------------------------------------- audit hook

_DENIED_EVENTS = frozenset({
    # threat: network
    "socket.__new__", "socket.bind", "socket.connect", "socket.getaddrinfo",
    "socket.gethostbyname", "socket.sendto", "socket.sendmsg",
    # threat: starting processes, fork bombs, leftover children
    "subprocess.Popen", "os.system", "os.fork", "os.forkpty", "os.startfile", "pty.spawn",
    # threat: signals to other processes
    "os.kill", "os.killpg", "signal.pthread_kill",
    # threat: environment, limits, escaping scratch through links or descriptors
    "os.fchdir", "os.putenv", "os.unsetenv", "resource.setrlimit", "resource.prlimit",
    "os.symlink", "os.link", "os.chown", "os.chflags", "os.setxattr", "os.removexattr",
    # threat: tampering with the harness through the heap
    "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys._current_frames",
})
_DENIED_PREFIXES = ("socket.", "ctypes.", "os.exec", "os.spawn", "os.posix_spawn", "_winapi.", "winreg.")
_DENIED_IMPORTS = frozenset({"ctypes", "_ctypes", "cffi"})
_PATH_EVENTS = frozenset({"os.chdir", "os.mkdir", "os.remove", "os.rmdir", "os.rename", "os.truncate",
                          "os.utime", "os.chmod", "shutil.rmtree", "shutil.copyfile", "shutil.move",
                          "os.listdir", "os.scandir", "glob.glob", "os.listxattr", "os.getxattr"})
_READ_EVENTS = frozenset({"os.listdir", "os.scandir", "glob.glob", "os.listxattr", "os.getxattr"})
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def make_audit_hook(area, read_roots, violations):
    """Refuse, and record, what a self-play program has no business doing.

    Paths may be used inside area[0] (the current run's scratch directory while a
    program runs, the worker's whole area while the harness cleans up); the
    standard library may be read (imports). The OS layers hold where this is
    bypassed.
    """
    roots = tuple(r + "/" for r in read_roots)
    normpath, fsdecode, getcwd = os.path.normpath, os.fsdecode, os.getcwd

    def where(path):
        if isinstance(path, int) or path is None:
            return None  # a descriptor the process already holds
        try:
            p = fsdecode(path)
        except TypeError:
            return "?"
        return normpath(p if p.startswith("/") else getcwd() + "/" + p)

    def deny(what):
        if not violations:
            violations.append(what)
        raise PermissionError(f"sandbox: {what} is not allowed")

    def allowed(p, reading):
        base = area[0]
        return p is None or p == base or p.startswith(base + "/") or (
            reading and (p + "/").startswith(roots))

    def hook(event, args):
        if event in _DENIED_EVENTS or event.startswith(_DENIED_PREFIXES):
            deny(event)
        elif event == "open":
            path, mode, flags = args
            writes = any(c in mode for c in "wax+") if mode else bool(flags and flags & _WRITE_FLAGS)
            p = where(path)
            if not allowed(p, not writes):
                deny(f"open {p}")
        elif event == "import":
            if args[0].partition(".")[0] in _DENIED_IMPORTS:
                deny(f"import {args[0]}")
        elif event in _PATH_EVENTS:
            for a in args[:2]:
                if isinstance(a, (str, bytes, os.PathLike)):
                    p = where(a)
                    if not allowed(p, event in _READ_EVENTS):
                        deny(f"{event} {p}")

    return hook


# ---------------------------------------------------------------- shared state

# Tier 2: names that reach interpreter internals (frames, code objects, the import
# system, dynamic attribute access). A run that names one of these is trusted with
# nothing: its worker is replaced afterwards.
_TIER2_NAMES = frozenset({
    "setattr", "delattr", "getattr", "vars", "globals", "locals", "exec", "eval", "compile",
    "breakpoint", "builtins", "gc", "importlib", "inspect", "ctypes", "copyreg", "attrgetter",
    "methodcaller", "update_wrapper", "wraps", "signal", "resource", "weakref", "pickle",
    "marshal", "_getframe", "f_back", "f_globals", "f_locals", "f_builtins", "tb_frame",
    "gi_frame", "cr_frame", "ag_frame", "tb_next", "mro",
})
# Dunder names a program uses to define or call ordinary methods. Any other dunder
# (__class__, __dict__, __globals__, __code__, __subclasses__, ...) is tier 2.
_BENIGN_DUNDERS = frozenset(f"__{n}__" for n in (
    "init new repr str eq ne lt le gt ge hash len getitem setitem delitem iter next "
    "reversed contains call bool int float index complex bytes format round floor ceil trunc "
    "add sub mul matmul truediv floordiv mod divmod pow neg pos abs invert and or xor lshift "
    "rshift radd rsub rmul rmatmul rtruediv rfloordiv rmod rdivmod rpow rand ror rxor rlshift "
    "rrshift iadd isub imul imatmul itruediv ifloordiv imod ipow iand ior ixor ilshift irshift "
    "enter exit post_init slots module qualname doc name main annotations match_args "
    "classcell orig_bases missing copy deepcopy sizeof"
).split())
# Tier 1 names beyond those computed from the modules (see StateGuard).
_TIER1_NAMES = frozenset({"sys", "os", "environ", "decimal", "DefaultContext", "BasicContext",
                          "ExtendedContext", "dataclass", "total_ordering", "register", "random"})
_MUTABLE = (list, dict, set, bytearray)
# Ways from an imported-at-start module to files and descriptors (any other module
# would be a new import, which retires the worker anyway).
_FILE_NAMES = frozenset({"open", "os", "io", "codecs", "posix", "select", "socket", "mmap", "fcntl",
                         "pipe", "dup", "dup2", "chdir", "fdopen"})


# Names too common to signal anything (builtins, methods of built-in types).
_COMMON_NAMES = frozenset(dir(builtins)).union(*(dir(t) for t in (list, dict, set, str, bytes, int, float, tuple)))


def _is_inert(v):
    """Enum members, named constants and typing constructs: never mutated by
    ordinary code."""
    import enum

    return (isinstance(v, (enum.Enum, int, float, str, bytes, tuple, frozenset))
            or type(v).__module__ == "typing")


def _is_plain_instance(v):
    return not isinstance(v, (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType,
                              types.MethodType)) and type(getattr(v, "__dict__", None)) is dict


def _shallow_copy(x):
    if isinstance(x, (dict, types.MappingProxyType)):
        return dict(x)
    if isinstance(x, list):
        return list(x)
    if isinstance(x, set):
        return set(x)
    return bytes(x)


class StateGuard:
    """Detects a program that changed state a later run in this worker would see.

    A program's compiled code is sorted into tiers before it runs (classify):
    0. it stores no attributes and names nothing that reaches shared state:
       only new imports are checked (sys.modules, ~2 us);
    1. it stores attributes (`self.x = ...`), or names private names, module-level
       containers, instances or their bound methods (`random.seed`,
       `calendar.setfirstweekday`), sys, os, ...: builtins, every module's
       bindings, every mutable standard-library class, module-level containers
       and instances are compared with a snapshot (~0.2 ms);
    2. it names interpreter internals (frames, code objects, getattr, eval, ...):
       the worker is replaced after the run.
    Process settings a program may change (recursion limit, timers, umask, decimal
    context, ...) are restored after every run. What this misses (e.g. attributes
    set on standard-library functions) is bounded by max_runs; see docs/executor.md.
    """

    def __init__(self):
        self.streams = (sys.stdin, sys.stdout, sys.stderr)
        self.recursion_limit = sys.getrecursionlimit()
        self.int_digits = sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else None
        self.modules = dict(sys.modules)
        modules = list(self.modules.items())
        live = [builtins.__dict__] + [vars(m) for _, m in modules]
        labels = ["builtins"] + [f"module {name}" for name, _ in modules]
        names, seen, classes = set(), set(), []

        def note(module_name, name):
            # A program reaches this state by naming it, or the module that holds it.
            if name[:1] == "_":
                return  # private names put a program in tier 1 anyway
            if len(name) >= 6 and name not in _COMMON_NAMES:
                names.add(name)
            else:
                names.update(module_name.split("."))

        for mname, module in modules:
            for name, v in list(vars(module).items()):
                if id(v) in seen or name[:2] == "__":
                    continue
                seen.add(id(v))
                if isinstance(v, type):
                    if v.__flags__ & (1 << 9) and not v.__flags__ & (1 << 8):  # heap, mutable
                        classes.append((mname, name, v))
                elif _is_inert(v):
                    continue
                elif isinstance(v, _MUTABLE) and "cache" not in name.lower():
                    live.append(v)
                    labels.append(f"{mname}.{name}")
                    note(mname, name)
                elif isinstance(v, types.MethodType) and not isinstance(v.__self__, (type, types.ModuleType)):
                    note(mname, name)  # e.g. random.seed: a bound method of a hidden instance
                elif _is_plain_instance(v):
                    live.append(v.__dict__)
                    labels.append(f"{mname}.{name}.__dict__")
                    note(mname, name)
        for mname, cname, cls in classes:
            live.append(cls.__dict__)
            labels.append(f"class {mname}.{cname}")
            for name, v in cls.__dict__.items():
                if isinstance(v, _MUTABLE) and "cache" not in name.lower() and name[:2] != "__":
                    live.append(v)
                    labels.append(f"{mname}.{cname}.{name}")
                    note(mname, name)
        environ = getattr(os.environ, "_data", None)
        if isinstance(environ, dict):
            live.append(environ)
            labels.append("os.environ")
        self.live, self.labels = live, labels
        self.snap = [_shallow_copy(x) for x in live]
        self.tier1_names = _TIER1_NAMES | names
        self.decimal = sys.modules.get("decimal")
        self.decimal_default = repr(self.decimal.DefaultContext) if self.decimal else None

    def classify(self, code):
        """(tier, touches_files) of compiled `code`; see the class docstring.

        touches_files: the program names a way to files, descriptors or the
        working directory (open, os, io, ...), so the harness checks the scratch
        directory and closes stray descriptors after it; otherwise it need not.
        """
        tier, touches, stack = 0, False, [code]
        tier1 = self.tier1_names
        while stack:
            c = stack.pop()
            ops = c.co_code[::2]
            if STORE_ATTR in ops or DELETE_ATTR in ops:
                tier = 1
            names = list(c.co_names)
            for k in c.co_consts:
                if type(k) is str:
                    names.append(k)
                elif isinstance(k, types.CodeType):
                    stack.append(k)
            for name in names:
                if name in _TIER2_NAMES or (name[:2] == "__" and name[-2:] == "__" and name not in _BENIGN_DUNDERS):
                    return 2, True
                if name[:1] == "_" or name in tier1:
                    tier = 1
                elif name in _FILE_NAMES:
                    touches = True
        return tier, touches or tier > 0

    def after_fork(self):
        """Re-take the snapshot of what fork itself changes (threading's bookkeeping)."""
        for k, label in enumerate(self.labels):
            if "threading" in label:
                self.snap[k] = _shallow_copy(self.live[k])

    def restore_builtins(self):
        """Put back every builtin a program rebound (the run is still judged by
        changed(): rebinding a builtin needs a tier-2 name)."""
        if self.live[0] != self.snap[0]:
            self.live[0].clear()
            self.live[0].update(self.snap[0])
            return True
        return False

    def restore_streams(self):
        sys.stdin, sys.stdout, sys.stderr = self.streams

    def changed(self, tier):
        """What changed since the snapshot, or None."""
        if sys.modules != self.modules:
            return "a module was imported"  # its state was never snapshotted
        if tier >= 1:
            if self.live != self.snap:
                where = next(lab for lab, a, b in zip(self.labels, self.live, self.snap) if a != b)
                return f"standard-library state changed: {where}"
            if self.decimal and repr(self.decimal.DefaultContext) != self.decimal_default:
                return "decimal.DefaultContext changed"
        return None

    def restore_settings(self, reseed):
        """Undo process settings a run may change (none of them is audited)."""
        sys.setrecursionlimit(self.recursion_limit)
        if self.int_digits is not None:
            sys.set_int_max_str_digits(self.int_digits)
        sys.settrace(None)
        sys.setprofile(None)
        os.umask(0o077)
        gc.enable()
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        signal.setitimer(signal.ITIMER_PROF, 0)
        if self.decimal:
            self.decimal.setcontext(self.decimal.Context())
        if reseed:
            reseed_random()


def reseed_random():
    """Fresh entropy, so nondeterminism stays visible to the double run even though
    every worker is forked from the same zygote."""
    random = sys.modules.get("random")
    if random is not None:
        random.seed()


# ---------------------------------------------------------------- one run

def _short(exc):
    try:
        return f"{type(exc).__name__}: {exc}"[:500]
    except BaseException:
        return type(exc).__name__


def _error_kind(exc):
    return "memory" if isinstance(exc, MemoryError) else f"error: {type(exc).__name__}"


_SYNTAX = (SyntaxError, ValueError, OverflowError, MemoryError, RecursionError)


def _parse_call(inputs, literal_inputs):
    """Compile `f(<inputs>)`; with literal_inputs, return (args, kwargs) instead.

    Threat: inputs such as "1), g(2" that smuggle a second expression, or
    arguments that run code (literal_inputs=True refuses anything but literals).
    """
    tree = ast.parse(f"f({inputs})", "<inputs>", "eval")
    call = tree.body
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "f"):
        raise SyntaxError("inputs must be the arguments of one call f(...)")
    if not literal_inputs:
        return compile(tree, "<inputs>", "eval")
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        raise ValueError("inputs_not_literal")
    try:
        args = [ast.literal_eval(a) for a in call.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    except ValueError:
        raise ValueError("inputs_not_literal") from None
    return args, kwargs


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


def compile_program(program, guard, cache):
    """(code, tier, touches_files), from `cache` when this worker saw the program
    before (the same program runs on many inputs; code objects are immutable)."""
    entry = cache.get(program)
    if entry is None:
        code = compile(program, "<program>", "exec")
        entry = (code, *guard.classify(code))
        if len(cache) >= 256:
            del cache[next(iter(cache))]
        cache[program] = entry
    return entry


def execute(req, cfg, out, guard, violations, cache, _repr=repr, literal_eval=ast.literal_eval):
    """Run f(inputs). Returns (fields, tier, touches_files); fields as encode_reply takes them."""
    def fail(kind, detail=""):
        return (False, kind, detail, None, False, out.getvalue(), violations[0] if violations else None)

    try:
        code, tier, touches = compile_program(req["program"], guard, cache)
    except _SYNTAX as exc:
        return fail("syntax", _short(exc)), 0, False
    try:
        call = _parse_call(req["inputs"], cfg["literal_inputs"])
    except ValueError as exc:
        if str(exc) == "inputs_not_literal":
            return fail("inputs_not_literal", "inputs must be Python literals"), tier, touches
        return fail("syntax: inputs", _short(exc)), tier, touches
    except _SYNTAX as exc:
        return fail("syntax: inputs", _short(exc)), tier, touches
    namespace = {"__name__": "__sandbox__", "__builtins__": builtins}
    try:
        exec(code, namespace)
        fn = namespace.get("f")
        if not callable(fn):
            return fail("no_entry_function", "the program defines no function f"), tier, touches
        if isinstance(call, tuple):
            value = fn(*call[0], **call[1])
        else:
            value = eval(call, namespace)
    except BaseException as exc:
        return fail(_error_kind(exc), _short(exc)), tier, touches
    try:
        text = _repr(value)
        if type(text) is not str:
            raise TypeError("__repr__ returned a non-string")
    except BaseException as exc:  # threat: a repr that raises
        kind = "memory" if isinstance(exc, MemoryError) else f"repr_error: {type(exc).__name__}"
        return fail(kind, _short(exc)), tier, touches
    if len(text) > cfg["max_output_chars"]:  # threat: huge reprs
        return fail("output_too_large", f"the repr has {len(text)} characters"), tier, touches
    roundtrip = _roundtrips(text, value, literal_eval)
    return (True, None, "", text, roundtrip, out.getvalue(), violations[0] if violations else None), tier, touches


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
    isolation.prctl(isolation.PR_SET_PDEATHSIG, signal.SIGKILL)  # threat: outliving the zygote
    os.setsid()  # own session and process group: one killpg reaches everything
    mem = int(memory_mb) << 20
    cpu = int((float(cfg["timeout_s"]) + 1) * int(cfg["max_runs"])) + 5
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))  # threat: spinning (backstop; the zygote times runs)
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))  # threat: unbounded memory
    fsize = int(cfg["file_size_mb"]) << 20
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))  # threat: filling the disk
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))  # threat: descriptor exhaustion
    resource.setrlimit(resource.RLIMIT_MEMLOCK, (0, 0))
    os.chdir(base)
    isolation.drop_privileges(int(cfg["run_uid"]), in_user_namespace)
    # threat: fork bombs, leftover children and threads. Enforced for any uid but 0,
    # which is why a worker never runs as root.
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))


def encode_reply(nonce, fields, recycle, _enc=json.encoder.encode_basestring_ascii):
    """JSON for the zygote, built from references taken before any user code ran
    (a program may rebind json's module attributes; these stay the originals)."""
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
    _exit, write_frame, read_frame, loads = os._exit, protocol.write_frame, protocol.read_frame, json.loads
    try:
        for fd in (0, 1, 2):  # threat: blocking on stdin, writing into the trainer's output
            os.dup2(devnull, fd)
        os.dup2(req_fd, 3)
        os.dup2(rep_fd, 4)
        os.closerange(5, 1 << 20)  # threat: inherited pipes to the trainer and zygote
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
        payload = read_frame(3)
        write_frame(4, encode_reply(payload[:8] if payload else b"\0" * 8,
                                    (False, "crash: setup", _short(exc), None, False, "", None), "setup"))
        _exit(1)
    while True:
        try:
            payload = read_frame(3)
        except BaseException:
            payload = None
        if payload is None:
            _exit(0)
        runs += 1
        recycle = None
        nonce = payload[:8]
        try:
            req = loads(payload[8:])
            violations.clear()
            out = CappedText(stdout_cap)
            sys.stdout = sys.stderr = out
            area[0] = scratch
            fields, tier, touches = execute(req, cfg, out, guard, violations, cache)
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
                guard.restore_settings(reseed=True)
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
            _exit(0)  # the zygote reaps us, kills anything left and removes our files
