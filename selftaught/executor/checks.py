"""Static checks of a proposed program: shape and forbidden names (docs/reference.md §3).

These are a first filter for determinism and intent, not a security boundary:
names are easy to hide (``__import__("ti" + "me")``), which is why every run is
contained by the operating system as well (see sandbox docs).
"""

from __future__ import annotations

import ast
import functools
import inspect
import re
import threading
import types
import warnings
from collections import Counter

# AZR's list (docs/reference.md §3). A dotted entry forbids that attribute path
# ("os.path" forbids os.path.join and `from os import path`, not `import os`).
DEFAULT_FORBIDDEN: frozenset[str] = frozenset({
    "logging", "random", "multiprocessing", "pebble", "subprocess", "threading",
    "datetime", "time", "hashlib", "hmac", "calendar", "bcrypt",
    "os.sys", "os.path", "sys.exit", "os.environ",
})

PARSE_ERRORS = (SyntaxError, ValueError, OverflowError, MemoryError, RecursionError)
"""What parsing hostile source can raise."""


# -- compiling model-written source without warnings in the user's log -----------------------
#
# compile() and ast.parse() warn about dubious source (`1if x`, '\d', `x is 1`, `1(2)`) through
# Python's warnings machinery, which prints them into the trainer's log. Model-written source is
# compiled under a name of its own (<program>, <inputs>, <answer>, <value>), for which
# process-wide filters ignore the cosmetic warnings and make every other one an error: clean
# source compiles once. Source that warns fails there, is counted by what the warning says, and
# is compiled again under the name's quiet twin, whose filter ignores every warning. Filters on
# those names, not warnings.catch_warnings(): that swaps process-wide state and is not
# thread-safe. They are installed when this module is imported (so a sandbox worker's state
# snapshot includes them) and put back in front if a catch_warnings() block has replaced them.

_STRICT = r"<(program|inputs|answer|value)>\Z"
_QUIET = r"<(program|inputs|answer|value) \(warnings ignored\)>\Z"
COSMETIC = r"invalid escape sequence|invalid \w+ literal"
"""Warnings that change nothing a program does: an invalid escape ('\\d' is '\\\\d') or a number run
into a word (`1if` is `1 if`). Silenced, not counted."""
_FILTERS = (("ignore", COSMETIC, _STRICT), ("error", "", _STRICT), ("ignore", "", _QUIET))  # first match wins

LIKELY_BUGS = {
    '"is" with a literal': "is_with_literal", '"is not" with a literal': "is_with_literal",
    "is not callable": "not_callable", "is not subscriptable": "not_subscriptable",
    "indices must be integers": "bad_index", "assertion is always true": "assert_always_true",
}
"""Warnings that say a program probably does not do what it means, and the name each is counted
under (`model_code_warnings`); a warning not listed here or in COSMETIC counts as 'other'."""
_warnings_seen: Counter = Counter()
_warnings_lock = threading.Lock()


def _pattern(regex) -> str:
    return "" if regex is None else getattr(regex, "pattern", regex)  # a compiled regex, or a plain str


def _filters_in_front() -> None:
    head = [(f[0], _pattern(f[1]), _pattern(f[3])) for f in warnings.filters[:len(_FILTERS)]]
    if head != list(_FILTERS):
        for action, message, module in reversed(_FILTERS):
            warnings.filterwarnings(action, message=message, module=module)


def model_code_warnings() -> dict[str, int]:
    """How many model-written sources this process compiled that Python warned about, by what the
    first such warning says (LIKELY_BUGS; 'other'); cosmetic warnings are not counted."""
    with _warnings_lock:
        return dict(_warnings_seen)


def compile_model_code(source: str, name: str, mode: str, flags: int = 0, *, count: bool = True):
    """compile(source, name, mode, flags) for model-written source, its warnings kept out of the log.

    `name` is one of <program>, <inputs>, <answer>, <value> (the filename in a SyntaxError).
    Raises what compile raises (PARSE_ERRORS); `count`: note a warning in `model_code_warnings`."""
    _filters_in_front()
    try:
        return compile(source, name, mode, flags, dont_inherit=True)
    except (SyntaxError, Warning) as strict:
        warned = getattr(strict, "msg", None) or str(strict)
    try:
        result = compile(source, name[:-1] + " (warnings ignored)>", mode, flags, dont_inherit=True)
    except SyntaxError as error:  # a real syntax error: report it under the source's own name
        error.filename = name
        raise error from None
    if count:
        kind = next((key for text, key in LIKELY_BUGS.items() if text in warned), "other")
        with _warnings_lock:
            _warnings_seen[kind] += 1
    return result


_filters_in_front()


def parse_call(inputs: str) -> ast.Expression:
    """`f(<inputs>)` as an expression tree. Raises one of PARSE_ERRORS unless the
    inputs are the arguments of exactly one call to f (threat: "1), g(2" smuggling
    a second expression in)."""
    tree = compile_model_code(f"f({inputs})", "<inputs>", "eval", ast.PyCF_ONLY_AST)
    call = tree.body
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "f"):
        raise SyntaxError("inputs must be the arguments of one call f(...)")
    return tree


def _hits(dotted: str, forbidden) -> str | None:
    """The forbidden entry that `dotted` (a module or attribute path) falls under."""
    parts = dotted.split(".")
    for i in range(1, len(parts) + 1):
        prefix = ".".join(parts[:i])
        if prefix in forbidden:
            return prefix
    return None


def _dotted(node) -> str | None:
    names = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        names.append(node.id)
        return ".".join(reversed(names))
    return None


@functools.lru_cache(maxsize=32)
def _mentions(forbidden: frozenset) -> re.Pattern:
    """A pattern that matches wherever a forbidden entry's first name appears as a word."""
    roots = sorted({f.split(".")[0] for f in forbidden})
    return re.compile(r"\b(?:%s)\b" % "|".join(map(re.escape, roots))) if roots else re.compile(r"(?!)")


def find_forbidden(tree: ast.AST, forbidden, source: str | None = None) -> str | None:
    """First forbidden module or attribute path the program names, or None.

    With `source`, a program whose text never mentions a forbidden name as a word
    is cleared without walking its tree (the usual case, and the walk is slow).
    """
    forbidden = frozenset(forbidden)
    if source is not None and not _mentions(forbidden).search(source):
        return None
    aliases: dict[str, str] = {}  # local name -> module path, from import statements
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                hit = _hits(alias.name, forbidden)
                if hit:
                    return hit
                aliases[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            hit = _hits(node.module, forbidden)
            if hit:
                return hit
            for alias in node.names:
                if alias.name == "*":
                    star = [f for f in forbidden if f.startswith(node.module + ".")]
                    if star:
                        return sorted(star)[0]
                    continue
                hit = _hits(f"{node.module}.{alias.name}", forbidden)
                if hit:
                    return hit
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
            dotted = _dotted(node)
            if dotted:
                head, _, rest = dotted.partition(".")
                full = aliases.get(head, head) + ("." + rest if rest else "")
                hit = _hits(full, forbidden)
                if hit and "." in hit:  # bare module names count only when imported
                    return hit
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            # __import__("time"), importlib.import_module("time")
            func = _dotted(node.func) or ""
            if func.split(".")[-1] in ("__import__", "import_module") and isinstance(node.args[0].value, str):
                hit = _hits(node.args[0].value, forbidden)
                if hit:
                    return hit
    return None


def check_program(program: str, forbidden=DEFAULT_FORBIDDEN, *, allow_helpers: bool = False
                  ) -> tuple[str, str] | None:
    """Check a proposal's shape and names; return (reason, detail) or None when fine.

    Reasons: 'syntax', 'no_entry_function', 'multiple_entry_functions',
    'extra_function: <name>' (top-level helpers; nest them inside f, or pass
    allow_helpers=True), 'no_arguments' (f must take at least one argument),
    'forbidden: <name>'.
    """
    return check_program_code(program, forbidden, allow_helpers=allow_helpers)[0]


def check_program_code(program: str, forbidden=DEFAULT_FORBIDDEN, *, allow_helpers: bool = False):
    """check_program's verdict and the compiled module (None when it does not compile).

    The shape is read from the compiled code (cheaper than an AST); the tree is
    built only when the text mentions a forbidden name.
    """
    if not isinstance(program, str):
        return ("syntax", "the program must be a string"), None
    try:
        code = compile_model_code(program, "<program>", "exec")
    except PARSE_ERRORS as exc:
        return ("syntax", f"{type(exc).__name__}: {exc}"), None
    verdict = shape_of(code, allow_helpers)
    if verdict is None:
        forbidden = frozenset(forbidden)
        if _mentions(forbidden).search(program):
            tree = compile_model_code(program, "<program>", "exec", ast.PyCF_ONLY_AST, count=False)
            hit = find_forbidden(tree, forbidden)
            if hit:
                verdict = f"forbidden: {hit}", f"the program uses {hit}"
    return verdict, code


_FUNCTION = inspect.CO_OPTIMIZED | inspect.CO_NEWLOCALS  # set for functions, not class bodies
_ANONYMOUS = {"<lambda>", "<listcomp>", "<setcomp>", "<dictcomp>", "<genexpr>"}


def shape_of(module_code, allow_helpers: bool = False) -> tuple[str, str] | None:
    """The entry-function rules, read from a compiled module: the functions defined
    at its top level are the function code objects among its constants."""
    defs = [c for c in module_code.co_consts if isinstance(c, types.CodeType)
            and c.co_flags & _FUNCTION == _FUNCTION and c.co_name not in _ANONYMOUS]
    entries = [c for c in defs if c.co_name == "f"]
    if not entries:
        return "no_entry_function", "define a top-level function f"
    if len(entries) > 1:
        return "multiple_entry_functions", "f is defined more than once"
    f = entries[0]
    if f.co_flags & (inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR):
        return "no_entry_function", "f must be a plain function, not async"
    if not allow_helpers:
        extra = [c.co_name for c in defs if c.co_name != "f"]
        if extra:
            return f"extra_function: {extra[0]}", "nest helper functions inside f"
    if not (f.co_argcount or f.co_kwonlyargcount or f.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS)):
        return "no_arguments", "f must take at least one argument"
    return None


def check_inputs(inputs: str, forbidden=DEFAULT_FORBIDDEN) -> tuple[str, str] | None:
    """Inputs must be the argument list of one call f(...) and name nothing forbidden."""
    return check_inputs_tree(inputs, forbidden)[0]


def check_inputs_tree(inputs: str, forbidden=DEFAULT_FORBIDDEN):
    """check_inputs's verdict and the parsed call f(...) (None when it does not parse)."""
    if not isinstance(inputs, str):
        return ("syntax: inputs", "inputs must be a string"), None
    try:
        tree = parse_call(inputs)
    except PARSE_ERRORS as exc:
        return ("syntax: inputs", f"{type(exc).__name__}: {exc}"), None
    call = tree.body
    hit = find_forbidden(tree, forbidden, inputs)
    if hit:
        return (f"forbidden: {hit}", f"the inputs use {hit}"), call
    return None, call


def literal_arguments(call: ast.Call) -> tuple[list, dict]:
    """The values of a call's arguments, which must all be literals.

    Raises ValueError otherwise (starred arguments, **mappings, names, calls,
    arithmetic: inputs are data, not code).
    """
    if any(isinstance(a, ast.Starred) for a in call.args) or any(k.arg is None for k in call.keywords):
        raise ValueError("inputs_not_literal")
    try:
        return ([ast.literal_eval(a) for a in call.args],
                {k.arg: ast.literal_eval(k.value) for k in call.keywords})
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise ValueError("inputs_not_literal") from None
