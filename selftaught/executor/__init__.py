"""Sandboxed Python executor for programs that models write (Absolute Zero's environment).

    from selftaught.executor import PythonExecutor
    with PythonExecutor(workers=2, timeout_s=5.0, memory_mb=512) as ex:
        r = ex.run("def f(a, b):\n    return a + b", "1, 2")     # r.ok, r.output == '3'
        v = ex.validate(program, inputs)                         # v.ok, v.output, v.reason

Containment comes from the operating system (namespaces, a filesystem jail,
rlimits, an unprivileged uid); see docs/executor.md for what is and is not contained.
"""

from .checks import DEFAULT_FORBIDDEN, check_inputs, check_program
from .core import ExecResult, PythonExecutor, ValidationResult
from .values import parse_value, values_equal

__all__ = [
    "DEFAULT_FORBIDDEN", "ExecResult", "PythonExecutor", "ValidationResult",
    "check_inputs", "check_program", "parse_value", "values_equal",
]
