"""Compare answers as Python values, parsed from their reprs without running code.

Rules (values_equal):
- Both sides are parsed with ``ast.literal_eval`` (never ``eval``); anything that
  is not a literal (``nan``, ``inf``, ``<object at 0x...>``, bare words) or is
  over `max_chars` makes the answer unequal, never an exception.
- Numbers compare by value: ``1 == 1.0``; floats (and complex parts) with
  ``math.isclose(rel_tol=1e-9, abs_tol=1e-12)``, so ``0.1 + 0.2`` equals ``0.3``.
  ``True``/``False`` are not numbers here: ``True`` does not equal ``1``.
- Strings compare exactly after parsing, so quoting style does not matter
  (``'it\\'s'`` equals ``"it's"``); ``str`` never equals ``bytes``.
- Lists and tuples compare element-wise and are different types (``[1]`` is not
  ``(1,)``), as in Python.
- Dicts: the same keys (Python key equality), values compared by these rules.
- Sets and frozensets: Python set equality (exact elements, no float tolerance);
  a set equals a frozenset with the same elements, as in Python.
"""

from __future__ import annotations

import ast
import math

from .checks import compile_model_code

MAX_CHARS = 10_000_000


def parse_value(text: str, max_chars: int = MAX_CHARS):
    """The value a repr denotes; raises ValueError when it is not a Python literal."""
    if not isinstance(text, str):
        raise ValueError("not a string")
    if len(text) > max_chars:
        raise ValueError("too long")
    try:
        return ast.literal_eval(compile_model_code(text.strip(), "<value>", "eval", ast.PyCF_ONLY_AST))
    except Exception as exc:  # SyntaxError, ValueError, MemoryError, RecursionError, ...
        raise ValueError(f"not a literal: {type(exc).__name__}") from None


def values_equal(a_repr: str, b_repr: str, *, rel_tol: float = 1e-9, abs_tol: float = 1e-12) -> bool:
    """True when two reprs denote the same Python value under the rules above."""
    try:
        a, b = parse_value(a_repr), parse_value(b_repr)
        return _equal(a, b, rel_tol, abs_tol)
    except Exception:
        return False


def _is_number(x) -> bool:
    return isinstance(x, (int, float, complex)) and not isinstance(x, bool)


def _equal(a, b, rel_tol, abs_tol) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if _is_number(a) and _is_number(b):
        if isinstance(a, int) and isinstance(b, int):
            return a == b
        a, b = complex(a), complex(b)
        return (math.isclose(a.real, b.real, rel_tol=rel_tol, abs_tol=abs_tol)
                and math.isclose(a.imag, b.imag, rel_tol=rel_tol, abs_tol=abs_tol))
    if isinstance(a, (list, tuple)):
        return (type(a) is type(b) and len(a) == len(b)
                and all(_equal(x, y, rel_tol, abs_tol) for x, y in zip(a, b)))
    if isinstance(a, dict):
        return (isinstance(b, dict) and a.keys() == b.keys()
                and all(_equal(a[k], b[k], rel_tol, abs_tol) for k in a))
    if isinstance(a, (set, frozenset)):
        return isinstance(b, (set, frozenset)) and a == b
    if isinstance(a, (str, bytes)) or a is None or a is Ellipsis:
        return type(a) is type(b) and a == b
    return False
