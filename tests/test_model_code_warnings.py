"""Model-written source never writes a Python warning into the user's log.

compile() and ast.parse() warn about dubious source (SyntaxWarning / DeprecationWarning:
`1if x`, '\\d', `x is 1`, `1(2)`). Every place the trainer's process parses model output
(the executor's static checks, AZR's answer parsing, value comparison) goes through
`compile_model_code`: no warning reaches the warnings machinery's output, the verdicts are
those of plain compile(), and the warnings that point at a likely bug are counted.
"""

import subprocess
import sys
import textwrap
import warnings

import pytest

from conftest import ROOT

from selftaught.azr.parsing import parse_answer
from selftaught.executor import check_inputs, check_program, values_equal
from selftaught.executor.checks import compile_model_code, model_code_warnings

WARNED = {  # source → (what Python says, counted under)
    "def f(x):\n    return 1if x else 2": ("invalid decimal literal", None),
    "def f(x):\n    return '\\d'": ("invalid escape sequence", None),
    "def f(x):\n    return x is 1": ('"is" with a literal', "is_with_literal"),
    "def f(x):\n    return 1(x)": ("'int' object is not callable", "not_callable"),
    "def f(x):\n    return [1, 2][1, 2]": ("list indices must be integers", "bad_index"),
    "def f(x):\n    assert (x, 'positive')\n    return x": ("assertion is always true", "assert_always_true"),
}


def plain_compile_warns(source: str) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compile(source, "<reference>", "exec")
    return [str(w.message) for w in caught]


@pytest.mark.parametrize("source", list(WARNED))
def test_the_sources_do_warn_under_plain_compile(source):
    assert any(WARNED[source][0] in message for message in plain_compile_warns(source))


@pytest.mark.parametrize("source", list(WARNED))
def test_no_warning_escapes_the_checks_and_the_verdict_is_unchanged(source):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # in front of our filters: they must come back in front
        assert check_program(source) is None  # valid: it compiles, defines f(x)
        assert parse_answer(f"<answer>```python\n{source}\n```</answer>", "induction").ok
        assert parse_answer("<answer>```output\n1if 1 else 2\n```</answer>", "deduction").ok
        assert check_inputs("1if 1 else 2") is None
        assert values_equal("'\\d'", "'\\\\d'")
    assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize("source", list(WARNED))
def test_likely_bugs_are_counted_and_cosmetic_warnings_are_not(source):
    kind = WARNED[source][1]
    before = model_code_warnings()
    check_program(source)
    after = model_code_warnings()
    changed = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    assert changed == ({kind: 1} if kind else {})


def test_a_real_syntax_error_is_reported_under_the_sources_own_name_even_after_a_warning():
    verdict = check_program("def f(x):\n    y = 1if x else 2\n    return y +\n")
    assert verdict[0] == "syntax" and "<program>" in verdict[1] and "warnings ignored" not in verdict[1]
    with pytest.raises(SyntaxError) as error:
        compile_model_code("x = (", "<answer>", "exec")
    assert error.value.filename == "<answer>"


def test_compiled_code_behaves_like_plain_compile():
    namespace = {}
    exec(compile_model_code("def f(x):\n    return 1if x else 2", "<program>", "exec"), namespace)
    assert namespace["f"](True) == 1 and namespace["f"](0) == 2


def test_nothing_reaches_stderr_from_many_threads_even_with_warnings_as_errors():
    """The log a user redirects: a fresh interpreter with -W default (every warning shown),
    model code parsed from 4 threads at once; stderr must stay empty."""
    script = textwrap.dedent(f"""
        import threading
        from selftaught.azr.parsing import parse_answer
        from selftaught.executor import check_program, values_equal
        from selftaught.executor.checks import model_code_warnings
        SOURCES = {list(WARNED)!r}
        def work():
            for _ in range(50):
                for source in SOURCES:
                    check_program(source)
                    parse_answer("<answer>```python\\n" + source + "\\n```</answer>", "induction")
                values_equal("'\\\\d'", "'x'")
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads: t.start()
        for t in threads: t.join()
        print(model_code_warnings())
    """)
    for flag in ("default", "error"):
        result = subprocess.run([sys.executable, "-W", flag, "-c", script], cwd=ROOT, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0 and result.stderr == "", result.stderr[-2000:]
        counts = eval(result.stdout)
        # every likely-bug source was counted at each of its 4 × 50 program checks and answer parses
        assert counts["is_with_literal"] >= 4 * 50 and counts["not_callable"] >= 4 * 50
