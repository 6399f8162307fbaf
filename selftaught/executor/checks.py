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
import types

# AZR's list (docs/reference.md §3). A dotted entry forbids that attribute path
# ("os.path" forbids os.path.join and `from os import path`, not `import os`).
DEFAULT_FORBIDDEN: frozenset[str] = frozenset({
    "logging", "random", "multiprocessing", "pebble", "subprocess", "threading",
    "datetime", "time", "hashlib", "hmac", "calendar", "bcrypt",
    "os.sys", "os.path", "sys.exit", "os.environ",
})

PARSE_ERRORS = (SyntaxError, ValueError, OverflowError, MemoryError, RecursionError)
"""What parsing hostile source can raise."""


def parse_call(inputs: str) -> ast.Expression:
    """`f(<inputs>)` as an expression tree. Raises one of PARSE_ERRORS unless the
    inputs are the arguments of exactly one call to f (threat: "1), g(2" smuggling
    a second expression in)."""
    tree = ast.parse(f"f({inputs})", "<inputs>", "eval")
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
        code = compile(program, "<program>", "exec")
    except PARSE_ERRORS as exc:
        return ("syntax", f"{type(exc).__name__}: {exc}"), None
    verdict = shape_of(code, allow_helpers)
    if verdict is None:
        forbidden = frozenset(forbidden)
        if _mentions(forbidden).search(program):
            hit = find_forbidden(ast.parse(program), forbidden)
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
