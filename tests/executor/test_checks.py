"""Static checks of proposals: shape and the forbidden list of docs/reference.md §3."""

import pytest

from selftaught.executor import DEFAULT_FORBIDDEN, check_inputs, check_program

OK = "def f(a, b):\n    return a + b"


def reason(program, **kw):
    result = check_program(program, **kw)
    return None if result is None else result[0]


def test_default_forbidden_is_azr_list():
    assert DEFAULT_FORBIDDEN == {
        "logging", "random", "multiprocessing", "pebble", "subprocess", "threading",
        "datetime", "time", "hashlib", "hmac", "calendar", "bcrypt",
        "os.sys", "os.path", "sys.exit", "os.environ"}


@pytest.mark.parametrize("program, expected", [
    (OK, None),
    ("def f(a):\n    def helper(x):\n        return x\n    return helper(a)", None),  # nested helper
    ("import math\nfrom collections import Counter\nclass P:\n    pass\nK = 3\ndef f(a):\n    return a", None),
    ("def f(a:\n    return a", "syntax"),
    ("def f(a):\n\treturn a\n        return a", "syntax"),
    ("x = 1", "no_entry_function"),
    ("def g(a):\n    return a", "no_entry_function"),
    ("class f:\n    pass", "no_entry_function"),
    ("async def f(a):\n    return a", "no_entry_function"),
    ("def f(a):\n    return a\ndef f(b):\n    return b", "multiple_entry_functions"),
    ("def helper(x):\n    return x\ndef f(a):\n    return helper(a)", "extra_function: helper"),
    ("def f():\n    return 1", "no_arguments"),
    ("def f(*args):\n    return args", None),
    ("def f(**kw):\n    return kw", None),
    ("def f(*, a):\n    return a", None),
])
def test_shape(program, expected):
    assert reason(program) == expected


def test_helpers_can_be_allowed():
    program = "def helper(x):\n    return x\ndef f(a):\n    return helper(a)"
    assert reason(program, allow_helpers=True) is None


@pytest.mark.parametrize("program, hit", [
    ("import random\ndef f(a):\n    return a", "random"),
    ("def f(a):\n    import time\n    return a", "time"),
    ("import time as t\ndef f(a):\n    return a", "time"),
    ("from datetime import date\ndef f(a):\n    return a", "datetime"),
    ("import logging.handlers\ndef f(a):\n    return a", "logging"),
    ("import os\ndef f(a):\n    return os.path.join('x', a)", "os.path"),
    ("import os as o\ndef f(a):\n    return o.environ.get(a)", "os.environ"),
    ("from os import path\ndef f(a):\n    return a", "os.path"),
    ("from os import environ as e\ndef f(a):\n    return a", "os.environ"),
    ("import sys\ndef f(a):\n    sys.exit(1)", "sys.exit"),
    ("from sys import exit\ndef f(a):\n    exit(1)", "sys.exit"),
    ("import os\ndef f(a):\n    return os.sys.platform", "os.sys"),
    ("from os import *\ndef f(a):\n    return a", "os.environ"),
    ("def f(a):\n    return __import__('random').random()", "random"),
    ("import importlib\ndef f(a):\n    return importlib.import_module('hashlib')", "hashlib"),
    ("import threading, subprocess\ndef f(a):\n    return a", "threading"),
])
def test_forbidden(program, hit):
    assert reason(program) == f"forbidden: {hit}"


@pytest.mark.parametrize("program", [
    "import os\ndef f(a):\n    return os.getcwd()",      # os itself is not on the list
    "import math\ndef f(a):\n    return math.sqrt(a)",
    "def f(time):\n    return time + 1",                 # a variable named like a module
    "def f(a):\n    path = [a]\n    return path",
    "import sys\ndef f(a):\n    return sys.maxsize",
])
def test_allowed(program):
    assert reason(program) is None


def test_forbidden_list_is_configurable():
    program = "import math\nimport time\ndef f(a):\n    return math.floor(time.time())"
    assert reason(program, forbidden={"math"}) == "forbidden: math"
    assert reason(program, forbidden=set()) is None
    assert reason(program, forbidden={"time.time"}) == "forbidden: time.time"


@pytest.mark.parametrize("inputs, expected", [
    ("1, 2", None),
    ("[1, 2], {'a': (3,)}", None),
    ("a=1, b='x'", None),
    ("", None),
    ("1, 2", None),
    ("1), g(2", "syntax: inputs"),
    ("1)(2", "syntax: inputs"),
    ("[1, 2", "syntax: inputs"),
    ("__import__('time').time()", "forbidden: time"),
])
def test_inputs(inputs, expected):
    result = check_inputs(inputs)
    assert (None if result is None else result[0]) == expected


def test_non_strings():
    assert reason(None) == "syntax"
    assert check_inputs(3)[0] == "syntax: inputs"
