import pytest

from selftaught.data import PromptRow, PromptStream, arithmetic, load_rows
from selftaught.errors import UserError
from selftaught.rewards.math_answer import answers_match, extract_answer


def test_arithmetic_splits_are_disjoint_for_any_seed():
    train = {p.prompt for seed in range(3) for p in arithmetic.generate(400, "train", seed=seed)}
    heldout = {p.prompt for seed in range(3) for p in arithmetic.generate(400, "heldout", seed=seed)}
    assert len(train) > 500 and len(heldout) > 300
    assert not train & heldout


def test_arithmetic_answers_are_right_and_solutions_verify():
    for problem in arithmetic.generate(200, "train", seed=1, difficulty=2):
        assert answers_match(extract_answer(problem.solution), problem.answer)
        numbers = [int(t) for t in problem.prompt.replace("?", " ").replace(".", " ").split() if t.isdigit()]
        a, b = numbers
        assert int(problem.answer) in {a + b, a - b, a * b, b - a}


def test_arithmetic_is_reproducible():
    assert arithmetic.generate(50, seed=3) == arithmetic.generate(50, seed=3)
    assert arithmetic.generate(50, seed=3) != arithmetic.generate(50, seed=4)


def test_sampler_is_a_resumable_stream_over_epochs():
    rows = [PromptRow(str(i)) for i in range(5)]
    full = PromptStream(rows, seed=1).take(13)
    assert sorted(r.prompt for r in full[:5]) == [str(i) for i in range(5)]  # each epoch is a permutation
    first = PromptStream(rows, seed=1)
    head = first.take(7)
    second = PromptStream(rows, seed=1)
    second.load_state_dict(first.state_dict())
    assert head + second.take(6) == full


def test_jsonl_answers_are_optional(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "a"}\n\n{"prompt": "b", "answer": 3}\n')
    assert load_rows(str(path)) == [PromptRow("a", None), PromptRow("b", "3")]


def test_custom_fields(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"question": "a", "gold": "1"}\n')
    assert load_rows(str(path), prompt_field="question", answer_field="gold") == [PromptRow("a", "1")]
    with pytest.raises(UserError, match="'prompt'"):
        load_rows(str(path))
