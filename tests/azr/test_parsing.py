"""Prompt rendering and response parsing, well-formed and malformed, for every block type."""

import pytest

from selftaught.azr.parsing import (MAX_RESPONSE_CHARS, answer_section, fenced_blocks, parse_answer,
                                    parse_proposal)
from selftaught.azr.prompts import prompt_role, proposer_prompt, solver_prompt, wrap_prompt
from selftaught.azr.rewards import solver_reward
from selftaught.azr.tasks import TASK_TYPE_SPECS, TASK_TYPES, Task, seed_task

PROGRAM = "def f(xs, k):\n    return sorted(xs)[:k]"


def answer(*blocks, think=True):
    body = "\n".join(f"```{kind}\n{content}\n```" for kind, content in blocks)
    return (" reasoning </think>\n" if think else "") + f"<answer>\n{body}\n</answer>"


def induction_task():
    inputs = ["[3, 1, 2], 1", "[5, 4], 2", "[], 0", "[9, 8, 7], 3"]
    outputs = ["[1]", "[4, 5]", "[]", "[7, 8, 9]"]
    return Task("induction", PROGRAM, inputs, outputs, "the k smallest values, in order", 3)


# ---------------------------------------------------------------- prompts


@pytest.mark.parametrize("task_type", ["deduction", "abduction"])
def test_proposer_prompt_shows_references_rules_and_format(task_type):
    refs = [seed_task(task_type), Task(task_type, PROGRAM, ["[3, 1, 2], 1"], ["[1]"])]
    text = proposer_prompt(task_type, references=refs, timeout_s=5)
    assert text.startswith(f"## Task: propose a new {task_type} task\n")
    assert TASK_TYPE_SPECS[task_type].proposer_goal in text
    assert "Reference 1:" in text and "Reference 2:" in text and "Reference 3:" not in text
    assert "```python\ndef f(xs, k):\n    return sorted(xs)[:k]\n```\n```input\n[3, 1, 2], 1\n```\n```output\n[1]\n```" in text
    assert "top-level function named `f`" in text and "under 5 seconds" in text
    fmt = text.split("Answer in exactly this format")[1]
    assert "```python" in fmt and "```input" in fmt and "```message" not in fmt and "```output" not in fmt
    assert prompt_role(wrap_prompt(text)) == (task_type, "propose")


def test_proposer_prompt_without_references_has_no_reference_section():
    text = proposer_prompt("deduction", references=[])
    assert "### Reference tasks" not in text


def test_induction_proposer_prompt_gives_a_program_and_asks_for_n_inputs_and_a_message():
    text = proposer_prompt("induction", program=PROGRAM, num_inputs=10)
    assert "### Program\n```python\n" + PROGRAM + "\n```" in text
    assert "10 different inputs" in text and "10 in all" in text
    assert "Reference" not in text
    fmt = text.split("Answer in exactly this format")[1]
    assert "```input" in fmt and "```message" in fmt and "```python" not in fmt
    assert prompt_role(wrap_prompt(text)) == ("induction", "propose")


def test_solver_prompts_show_exactly_what_each_type_allows():
    task = Task("deduction", PROGRAM, ["[3, 1, 2], 1"], ["[1]"])
    deduction = solver_prompt(task)
    assert "```input\n[3, 1, 2], 1\n```" in deduction and "### Output" not in deduction
    assert deduction.split("Answer in exactly")[1].count("```output") == 1

    task.type = "abduction"
    abduction = solver_prompt(task)
    assert "### Output\n```output\n[1]\n```" in abduction and "### Input" not in abduction
    assert "[3, 1, 2], 1" not in abduction  # the gold input stays hidden
    assert abduction.split("Answer in exactly")[1].count("```input") == 1

    induction = solver_prompt(induction_task())
    assert PROGRAM not in induction  # the program stays hidden
    assert "the k smallest values, in order" in induction
    assert "[3, 1, 2], 1" in induction and "[5, 4], 2" in induction  # shown half
    assert "[], 0" not in induction and "[9, 8, 7], 3" not in induction  # held-out half
    assert induction.split("Answer in exactly")[1].count("```python") == 1
    for task_type, text in (("deduction", deduction), ("abduction", abduction), ("induction", induction)):
        assert prompt_role(wrap_prompt(text)) == (task_type, "solve")


def test_shown_pairs_are_the_first_half_and_at_least_one():
    assert induction_task().shown_pairs() == [("[3, 1, 2], 1", "[1]"), ("[5, 4], 2", "[4, 5]")]
    assert seed_task("induction").shown_pairs() == [("'Hello world'", "'Hello world'")]


def test_wrap_prompt_plain_r1_and_chat_template():
    plain = wrap_prompt("BODY")
    assert "<think>" in plain and "<answer>" in plain and plain.endswith("User: BODY\n\nAssistant: <think>")

    class ChatTokenizer:
        chat_template = "x"

        def apply_chat_template(self, messages, tokenize, add_generation_prompt):
            assert not tokenize and add_generation_prompt
            return "<|user|>" + messages[0]["content"] + "<|assistant|>"

    chat = wrap_prompt("BODY", ChatTokenizer(), "auto")
    assert chat.startswith("<|user|>") and chat.endswith("BODY<|assistant|>")
    assert wrap_prompt("BODY", ChatTokenizer(), "never") == plain
    assert prompt_role("some other text") is None


# ---------------------------------------------------------------- parsing


def test_answer_section_and_blocks():
    text = "<think> maybe <answer>no</answer> </think> <answer>\n```Python\n  def f(a):\n      return a\n```\n```input\n 1, 2 \n```\n</answer>"
    section = answer_section(text)
    assert section is not None and "no" not in section  # the last answer section wins
    assert fenced_blocks(section) == [("python", "def f(a):\n    return a"), ("input", "1, 2")]
    assert answer_section("no tags at all") is None
    assert answer_section("<answer> unclosed") is None
    assert answer_section(None) is None
    assert answer_section("<answer>x</answer>" + " " * MAX_RESPONSE_CHARS) is None


@pytest.mark.parametrize("task_type", ["deduction", "abduction"])
def test_parse_proposal_well_formed(task_type):
    parsed = parse_proposal(answer(("python", PROGRAM), ("input", "[3, 1, 2], 1")), task_type)
    assert parsed.ok and parsed.program == PROGRAM and parsed.inputs == ["[3, 1, 2], 1"]
    # an extra block of another kind is ignored; no <think> needed
    parsed = parse_proposal(answer(("python", PROGRAM), ("input", "[1], 1"), ("output", "[1]"), think=False),
                            task_type)
    assert parsed.ok and parsed.inputs == ["[1], 1"]


@pytest.mark.parametrize("text, reason", [
    ("```python\ndef f(a):\n    return a\n```\n```input\n1\n```", "no_answer_tag"),
    (answer(("input", "1")), "missing_block: python"),
    (answer(("python", PROGRAM)), "missing_block: input"),
    (answer(("python", PROGRAM), ("python", PROGRAM), ("input", "1")), "duplicate_block: python"),
    (answer(("python", PROGRAM), ("input", "1"), ("input", "2")), "duplicate_block: input"),
    (answer(("python", "   "), ("input", "1")), "empty_block: python"),
    (answer(("python", PROGRAM), ("input", "")), "empty_block: input"),
    ("<answer>\n```python\ndef f(a):\n    return a\n</answer>", "missing_block: python"),  # unclosed fence
])
def test_parse_proposal_malformed(text, reason):
    for task_type in ("deduction", "abduction"):
        parsed = parse_proposal(text, task_type)
        assert not parsed.ok and parsed.reason == reason


def test_parse_induction_proposal():
    blocks = [("input", i) for i in ["1", "2", "1", "3", "4"]] + [("message", "doubles it")]
    parsed = parse_proposal(answer(*blocks), "induction", num_inputs=3)
    assert parsed.ok and parsed.inputs == ["1", "2", "3"]  # duplicate dropped, first N kept
    assert parsed.message == "doubles it" and parsed.program is None
    for text, reason in [
        (answer(("message", "m")), "missing_block: input"),
        (answer(("input", "1"), ("input", "2")), "missing_block: message"),
        (answer(("input", "1"), ("message", "")), "empty_block: message"),
        (answer(("input", "1"), ("message", "a"), ("message", "b")), "duplicate_block: message"),
        (answer(("input", ""), ("message", "a")), "missing_block: input"),
    ]:
        parsed = parse_proposal(text, "induction", num_inputs=10)
        assert not parsed.ok and parsed.reason == reason, text


@pytest.mark.parametrize("task_type, kind, value", [
    ("deduction", "output", "[1, 2, {'a': (3, None)}]"),
    ("deduction", "output", "'it''s'"),
    ("abduction", "input", "[3, 1, 2], 1"),
    ("abduction", "input", "x=1"),
    ("induction", "python", "import math\n\ndef f(a):\n    return math.floor(a)"),
])
def test_parse_answer_well_formed(task_type, kind, value):
    parsed = parse_answer(answer((kind, value)), task_type)
    assert parsed.ok and parsed.value == value and parsed.reason is None


@pytest.mark.parametrize("task_type, text, reason", [
    ("deduction", "The output is 3.", "no_answer_tag"),
    ("deduction", answer(("input", "3")), "missing_block: output"),
    ("deduction", answer(("output", "3"), ("output", "4")), "duplicate_block: output"),
    ("deduction", answer(("output", " ")), "empty_block: output"),
    ("deduction", answer(("output", "[1, 2")), "unparsable: output"),
    ("deduction", answer(("output", "(" * 5000 + ")" * 5000)), "unparsable: output"),  # too deep
    ("abduction", answer(("output", "3")), "missing_block: input"),
    ("abduction", answer(("input", "1)(2")), "unparsable: input"),
    ("abduction", answer(("input", "1), (2")), "unparsable: input"),
    ("abduction", answer(("input", "\x00")), "unparsable: input"),
    ("abduction", answer(("input", "7  # seven")), "unparsable: input"),  # the executor could never run it
    ("induction", answer(("output", "3")), "missing_block: python"),
    ("induction", answer(("python", "def f(a)\n    return a")), "unparsable: python"),
    ("induction", answer(("python", "def g(a):\n    return a")), "unparsable: python"),
    ("induction", answer(("python", "f = lambda a: a")), "unparsable: python"),
])
def test_parse_answer_malformed_scores_minus_one(task_type, text, reason):
    parsed = parse_answer(text, task_type)
    assert not parsed.ok and parsed.reason == reason
    assert solver_reward(parsed.ok, False) == -1.0


@pytest.mark.parametrize("task_type", TASK_TYPES)
def test_parsing_never_raises_on_garbage(task_type):
    garbage = ["", "<answer></answer>", "<answer>```", "```\n```", "<answer>\n```python\n```\n</answer>",
               "\udcff<answer>\x00</answer>", "<answer>" * 1000, "```input\n" * 1000]
    for text in garbage:
        assert not parse_answer(text, task_type).ok
        assert not parse_proposal(text, task_type, 10).ok
