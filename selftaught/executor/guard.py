"""StateGuard: may a worker that just ran a program run the next one?

Workers are reused between runs (forking per run costs ~3 ms), so a program must
not leave behind state a later program would see: rebound module attributes,
patched classes, filled module-level tables, changed process settings. This
module decides, per program, how hard to look, and looks.

Standard library only; imported as a top-level module inside the zygote.
"""

import builtins
import gc
import opcode
import os
import sys
import types

STORE_ATTR, DELETE_ATTR = opcode.opmap["STORE_ATTR"], opcode.opmap["DELETE_ATTR"]

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
        random = sys.modules.get("random")
        self.random_names = {"random", "Random", "SystemRandom"} | (
            {n for n, v in vars(random).items() if getattr(v, "__self__", None) is getattr(random, "_inst", 0)}
            if random else set())
        self.tier1_names |= self.random_names
        self.decimal = sys.modules.get("decimal")
        self.decimal_default = repr(self.decimal.DefaultContext) if self.decimal else None

    def classify(self, code):
        """(tier, touches_files, uses_random) of compiled `code`; see the class docstring.

        touches_files: the program names a way to files, descriptors or the
        working directory (open, os, io, ...), so the harness checks the scratch
        directory and closes stray descriptors after it; otherwise it need not.
        uses_random: it names the random module or one of its functions, so the
        generator is reseeded after it (a later run must not see a known state).
        """
        tier, touches, uses_random, stack = 0, False, False, [code]
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
                    return 2, True, True
                if name[:1] == "_" or name in tier1:
                    tier = 1
                    uses_random = uses_random or name in self.random_names
                elif name in _FILE_NAMES:
                    touches = True
        return tier, touches or tier > 0, uses_random

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
        gc.enable()  # (timers and signal handlers need `signal`, a tier-2 name)
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
