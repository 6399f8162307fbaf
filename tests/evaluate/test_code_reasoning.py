"""CodeI/O → triplets through the sandbox; output/input prediction scoring; triplet files."""

import json

import pytest

from selftaught.errors import UserError
from selftaught.evaluate.code_reasoning import Triplet, load_triplets, score_predictions
from selftaught.evaluate.codeio import build_triplets, static_reason_to_drop
from selftaught.executor import PythonExecutor, values_equal


@pytest.fixture(scope="module")
def executor():
    with PythonExecutor(workers=2, timeout_s=10.0, memory_mb=512) as ex:
        yield ex


GEN = "def generate_inputs(rng: Random) -> dict:\n    return {'n': rng.randint(1, 9), 'word': 'ab'}\n"


def record(code, generator=GEN):
    return {"code_sample": code, "input_generator": generator}


def test_static_filters():
    ok = "def main_solution(n, word):\n    return word * n\n"
    assert static_reason_to_drop(record(ok)) is None
    assert static_reason_to_drop(record("import numpy as np\n" + ok)) == "non-stdlib import"
    assert static_reason_to_drop(record("import random\n" + ok)) == "forbidden name"
    assert static_reason_to_drop(record(ok.replace("return", "open('x')\n    return"))) == "file or process access"
    assert static_reason_to_drop(record(ok + "\ndef f(x):\n    return x\n")) == "uses the name f"
    assert static_reason_to_drop(record("def main_solution(*args):\n    return args\n")) == "main_solution signature"
    assert static_reason_to_drop(record("x = (\n")) == "syntax"


def test_synthetic_records_become_checked_triplets(executor):
    records = [
        record("def main_solution(n, word):\n    return word * n\n"),
        record("def main_solution(n, word):\n    return {'len': len(word) + n}\n"),
        record("def main_solution(n, word):\n    raise ValueError(word)\n"),          # fails: dropped
        record("def main_solution(n, word):\n    return object()\n"),                  # no literal: dropped
        record("def main_solution(n):\n    return n\n"),                               # arguments disagree
    ]
    triplets, dropped = build_triplets(10, executor, seed=3, records=records)
    assert len(triplets) == 2 and sum(dropped.values()) == 3
    for t in triplets:
        assert t.program.startswith("def f(n, word):")
        run = executor.run(t.program, t.input)
        assert run.ok and values_equal(run.output, t.output)
    again, _ = build_triplets(10, executor, seed=3, records=records)
    assert again == triplets  # seeded: the same set every time


def test_real_codeio_records(executor):
    pytest.importorskip("reasoning_gym")
    triplets, dropped = build_triplets(4, executor, seed=0)
    assert len(triplets) == 4
    for t in triplets:
        assert "main_solution" not in t.program and "def f(" in t.program
        assert len(t.input) <= 300 and len(t.output) <= 300
    results = executor.run_many([(t.program, t.input) for t in triplets])
    assert all(r.ok and values_equal(r.output, t.output) for r, t in zip(results, triplets))


def test_input_prediction_accepts_any_working_input(executor):
    parity = Triplet("def f(x):\n    return x % 2\n", "3", "1")
    tasks = [("input", parity, "5"), ("input", parity, "3"), ("input", parity, "4"),
             ("input", parity, "__import__('os').getpid()"), ("input", parity, None),
             ("output", parity, "1"), ("output", parity, "1.0"), ("output", parity, "0")]
    assert score_predictions(tasks, executor) == [True, True, False, False, False, True, True, False]


def test_triplet_files(tmp_path):
    path = tmp_path / "deduction.jsonl"
    rows = [{"program": "def f(a):\n    return a", "input": "'Hello world'", "output": "'Hello world'",
             "message": "", "step": 0},
            {"program": "def f(x):\n    return x * 2", "inputs": ["1", "2"], "outputs": ["2", "4"]}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    triplets = load_triplets(path)
    assert [(t.input, t.output) for t in triplets] == [("'Hello world'", "'Hello world'"), ("1", "2"), ("2", "4")]

    for bad, message in [({"program": "def f(x): return x", "input": "1"}, "needs string fields"),
                         ({"program": "def g(x): return x", "input": "1", "output": "1"}, "entry function f"),
                         ([1, 2], "JSON object")]:
        path.write_text(json.dumps(rows[0]) + "\n" + json.dumps(bad) + "\n")
        with pytest.raises(UserError, match=message):
            load_triplets(path)
