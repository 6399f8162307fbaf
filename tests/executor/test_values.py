"""values_equal: answers compared as Python values, never with eval."""

import pytest

from selftaught.executor import parse_value, values_equal


@pytest.mark.parametrize("a, b", [
    ("[1, 2]", "[1,2]"),                      # spacing
    ("1.0", "1.0"),
    ("1", "1.0"),                             # numbers by value, as in Python
    ("0.30000000000000004", "0.3"),           # floats within rel 1e-9
    ("1e-13", "0.0"),                         # ... and abs 1e-12
    ("(1+2j)", "(1.0000000000001+2j)"),
    ("'abc'", '"abc"'),                       # quoting style does not matter
    ("'it\\'s'", '"it\'s"'),
    ("'a\\nb'", '"a\\nb"'),
    ("{1, 2, 3}", "{3, 2, 1}"),               # sets: order does not matter
    ("set()", "set()"),
    ("{'a': 1, 'b': [1, 2]}", "{'b': [1, 2], 'a': 1}"),
    ("{'a': 0.1}", "{'a': 0.1000000000000000055}"),
    ("(1, 'x', None)", "(1,'x',None)"),
    ("True", "True"),
    ("None", " None "),                       # surrounding whitespace
    ("b'ab'", 'b"ab"'),
    ("[[1, [2, (3,)]], {'k': {1: 2.0}}]", "[[1,[2,(3,)]],{'k':{1:2}}]"),
    ("-0.0", "0.0"),
])
def test_equal(a, b):
    assert values_equal(a, b)
    assert values_equal(b, a)


@pytest.mark.parametrize("a, b", [
    ("[1, 2]", "(1, 2)"),                     # list is not tuple
    ("[1, 2]", "[2, 1]"),
    ("1", "2"),
    ("0.3", "0.31"),
    ("True", "1"),                            # bools are not numbers here
    ("False", "0"),
    ("'1'", "1"),                             # a string is not a number
    ("'abc'", "b'abc'"),                      # str is not bytes
    ("'abc'", "abc"),                         # a bare word is not a literal
    ("{1, 2}", "[1, 2]"),
    ("{1.0000000001}", "{1.0}"),              # set elements compare exactly
    ("{'a': 1}", "{'a': 1, 'b': 2}"),
    ("{'a': 1}", "{'b': 1}"),
    ("None", "'None'"),
    ("(1,)", "1"),
])
def test_not_equal(a, b):
    assert not values_equal(a, b)
    assert not values_equal(b, a)


@pytest.mark.parametrize("bad", [
    "nan", "inf", "<object object at 0x7f>", "f(1)", "__import__('os').system('true')",
    "[1, 2", "", "x" * 20, "1 +", "{'a': [}", "lambda: 1", "[" * 500 + "]" * 500,
])
def test_unparseable_is_unequal_and_never_raises(bad):
    assert values_equal(bad, bad) is False
    assert values_equal("1", bad) is False
    with pytest.raises(ValueError):
        parse_value(bad)


@pytest.mark.parametrize("bad", [None, 1, b"1", ["1"]])
def test_non_strings_are_unequal(bad):
    assert values_equal(bad, "1") is False
    assert values_equal("1", bad) is False


def test_no_code_runs_while_comparing(tmp_path):
    marker = tmp_path / "ran"
    payload = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    assert values_equal(payload, payload) is False
    assert not marker.exists()


def test_huge_inputs_are_refused_cheaply():
    big = "[" + "1, " * 5_000_000 + "1]"
    assert values_equal(big, big) is False  # over MAX_CHARS: refused, not parsed


def test_tolerances_are_configurable():
    assert not values_equal("1.0", "1.001")
    assert values_equal("1.0", "1.001", rel_tol=1e-2)
