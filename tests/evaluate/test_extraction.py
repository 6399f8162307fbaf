"""Answer extraction as the evaluator uses it: boxed, tagged, last number, malformed."""

import pytest

from selftaught.evaluate.code_reasoning import extract_code_answer, outputs_match
from selftaught.rewards.math_answer import answers_match, extract_answer


@pytest.mark.parametrize("response,gold", [
    ("so the total is \\boxed{240}.", "240"),
    ("\\boxed{\\frac{1}{2}} pizzas", "0.5"),
    ("first \\boxed{3}, no wait: \\boxed{4}", "4"),               # the last box wins
    ("<think>12 + 30</think><answer>42</answer>", "42"),
    ("<answer> 1,234 </answer>", "1234"),
    ("He makes 12*3 = 36 dollars, then 36 + 356 = 392.", "392"),  # the last number
    ("The answer is -7.", "-7"),
    ("\\boxed{12 <answer>5</answer> 7", "5"),                    # unbalanced box: the tag, then numbers
])
def test_math_extraction_matches_gold(response, gold):
    assert answers_match(extract_answer(response), gold)


@pytest.mark.parametrize("response", ["", "no idea", "\\boxed{}", "<answer></answer>", None])
def test_math_malformed_gives_no_answer(response):
    assert extract_answer(response) is None
    assert not answers_match(extract_answer(response), "3")


@pytest.mark.parametrize("response,mode,want", [
    ("f returns a list.\n<answer>[1, 2]</answer>", "output", "[1, 2]"),
    ("<answer>first</answer> then <answer>{'a': 1}</answer>", "output", "{'a': 1}"),
    ("```output\n'abc'\n```", "output", "'abc'"),
    ("assert f(3) == 9", "output", "9"),
    ("<answer>f(3, 'x') == (3, 'x')</answer>", "output", "(3, 'x')"),
    ("the result\n12", "output", "12"),                           # last non-empty line
    ("<answer>f(1, [2, 3])</answer>", "input", "1, [2, 3]"),
    ("<answer>1, [2, 3]</answer>", "input", "1, [2, 3]"),
    ("```input\n'hello'\n```", "input", "'hello'"),
    ("assert f('ab', 2) == 'abab'", "input", "'ab', 2"),
])
def test_code_answer_extraction(response, mode, want):
    assert extract_code_answer(response, mode) == want


@pytest.mark.parametrize("response", ["", "   \n "])
def test_code_answer_malformed(response):
    assert extract_code_answer(response, "output") is None


def test_outputs_match_by_value():
    assert outputs_match("[1, 2.0]", "[1, 2]")
    assert outputs_match('"it\'s"', "\"it's\"")
    assert outputs_match("true", "True")                          # JSON spelling
    assert outputs_match('{"a": null}', "{'a': None}")
    assert not outputs_match("[1, 2]", "(1, 2)")
    assert not outputs_match("__import__('os')", "0")             # never evaluated
    assert not outputs_match(None, "1")
