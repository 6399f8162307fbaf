"""`selftaught eval --config RECIPE`: a .jsonl benchmark read with the recipe's fields and asked
in the recipe's prompt format (as train asks it), the recipe's model unless --model names one,
and bad input as one line, exit 2."""

import json

import pytest
import yaml

from selftaught.cli import main
from selftaught.config import DataConfig
from selftaught.evaluate.config import eval_config

FAST = ["--max-new-tokens", "4", "--batch-size", "4"]
DATA = {"prompt_field": "question", "answer_field": "solution", "prompt_template": "Q: {prompt}\nA:",
        "system_prompt": "Answer with a number."}


@pytest.fixture
def recipe(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({"model": {"name_or_path": "tiny-random"}, "data": DATA}))
    return path


@pytest.fixture
def questions(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text('{"question": "What is 2 + 2?", "solution": "4"}\n{"question": "What is 3 * 3?", "solution": "9"}\n')
    return path


def _results(out) -> dict:
    return json.loads((out / "results.json").read_text())


def test_a_jsonl_is_read_with_the_recipes_fields_and_asked_in_its_format(recipe, questions, tmp_path):
    out = tmp_path / "eval"
    assert main(["eval", "--config", str(recipe), "--benchmark", str(questions), "--output-dir", str(out),
                 *FAST]) == 0
    results = _results(out)
    assert results["model"] == "tiny-random"  # the recipe's model: no --model given
    items = results["benchmarks"]["mine"]["items"]
    # tiny-random has no chat template: the system prompt, then the filled template, as train's format_prompt
    assert [item["prompt"] for item in items] == ["Answer with a number.\n\nQ: What is 2 + 2?\nA:",
                                                  "Answer with a number.\n\nQ: What is 3 * 3?\nA:"]
    assert [item["gold"] for item in items] == ["4", "9"]
    assert results["settings"]["data"]["prompt_field"] == "question"


def test_an_explicit_model_and_set_overrides_win_over_the_recipe(recipe, questions, tmp_path):
    out = tmp_path / "eval"
    assert main(["eval", "--config", str(recipe), "--model", "tiny", "--set", "data.system_prompt=null",
                 "--benchmark", str(questions), "--output-dir", str(out), *FAST]) == 0
    results = _results(out)
    assert results["model"] == "tiny"
    assert results["benchmarks"]["mine"]["items"][0]["prompt"] == "Q: What is 2 + 2?\nA:"


def test_the_recipes_chat_template_choice_applies_unless_the_flag_is_given():
    recipe_data = DataConfig(use_chat_template="never")
    assert eval_config(model="tiny", benchmarks=["arith"], data=recipe_data).use_chat_template == "never"
    assert eval_config(model="tiny", benchmarks=["arith"], data=recipe_data,
                       use_chat_template="auto").use_chat_template == "auto"
    assert eval_config(model="tiny", benchmarks=["arith"]).use_chat_template == "auto"


def test_the_python_api_takes_the_same_description(questions, tmp_path):
    from selftaught.evaluate.runner import evaluate

    results = evaluate("tiny-random", [str(questions)], data=DataConfig(**DATA), output_dir=None, max_new_tokens=4)
    assert results["benchmarks"]["mine"]["items"][1]["prompt"] == "Answer with a number.\n\nQ: What is 3 * 3?\nA:"


@pytest.mark.parametrize("extra,rows,message", [
    ([], '{"prompt": "What is 2 + 2?", "solution": "4"}\n', "no non-empty string 'question' field"),
    ([], '{"question": "What is 2 + 2?", "answer": "4"}\n', "no 'solution'"),
    (["--set", "data.promt_field=question"], None, "unknown key 'data.promt_field'"),
    (["--set", "oops"], None, "--set expects key=value"),
])
def test_bad_rows_and_bad_keys_are_one_line_exit_2(extra, rows, message, recipe, questions, tmp_path, capsys):
    if rows is not None:
        questions.write_text(rows)
    assert main(["eval", "--config", str(recipe), *extra, "--benchmark", str(questions),
                 "--output-dir", str(tmp_path / "eval")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
