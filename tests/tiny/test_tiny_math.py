"""The addition task and the shipped selftaught-tiny-math: content-decided splits, a
procedure that is right by construction, a corpus that never touches RL prompts or
held-out problems, and a model card that records what the build measured."""

import json
import random
import re

import pytest
from transformers import AutoModelForCausalLM

from selftaught.data import addition, load_rows
from selftaught.errors import UserError
from selftaught.models import ALIASES, TINY_MATH_ASSET, load_model
from selftaught.tiny.addition_corpus import ANSWER_CONTEXT, COLUMNS_CONTEXT, addition_corpus

OPERANDS = re.compile(r"(\d+)\D+(\d+)")


def test_splits_are_decided_by_content_and_disjoint():
    seen = {split: set(addition.generate(300, split, seed=0)) for split in addition.SPLITS}
    for split, problems in seen.items():
        assert len(problems) == 300
        assert all(addition.split_of(p.a, p.b, p.template) == split for p in problems)
    for a in addition.SPLITS:
        for b in addition.SPLITS:
            if a != b:
                assert not seen[a] & seen[b]
    again = addition.generate(300, "heldout", seed=5)  # another seed: other problems, same split
    assert all(addition.split_of(p.a, p.b, p.template) == "heldout" for p in again)


def test_split_shares_follow_the_hash():
    rng = random.Random(0)
    counts = {split: 0 for split in addition.SPLITS}
    for _ in range(20_000):
        counts[addition.split_of(rng.randint(100, 999), rng.randint(100, 999), rng.randrange(4))] += 1
    for split, share in addition.SPLIT_SHARES.items():
        assert abs(counts[split] / 20_000 - share / 10) < 0.02, (split, counts)


def _long_addition_by_hand(a: int, b: int) -> list[tuple[int, int, int, int]]:
    """Schoolbook addition on the decimal strings, the slow obvious way."""
    da, db = str(a)[::-1], str(b)[::-1]
    steps, carry = [], 0
    for i in range(max(len(da), len(db))):
        x = int(da[i]) if i < len(da) else 0
        y = int(db[i]) if i < len(db) else 0
        steps.append((x, y, carry, x + y + carry))
        carry = 1 if x + y + carry >= 10 else 0
    return steps


def test_procedure_is_the_schoolbook_method_and_reads_off_the_answer():
    rng = random.Random(1)
    for _ in range(500):
        a, b = rng.randint(100, 999), rng.randint(100, 999)
        text = addition.procedure_solution(a, b)
        steps = [tuple(map(int, m)) for m in re.findall(r"(\d)\+(\d)\+(\d)=(\d+)", text)]
        assert steps == _long_addition_by_hand(a, b)
        digits = "".join(str(t % 10) for *_, t in steps)[::-1]
        assert (str(steps[-1][3] // 10) if steps[-1][3] >= 10 else "") + digits == str(a + b)
        assert text.endswith(f"\\boxed{{{a + b}}}.") and addition.uses_procedure(" " + text)
    assert not addition.uses_procedure(" " + addition.bare_solution(12))


def test_corpus_holds_only_pretrain_problems_in_both_habits():
    documents = addition_corpus(4000, procedure_share=0.3, wrong_share=0.5, columns_share=0.5, seed=0)
    assert len(documents) == 6000
    plain = [d for d in documents if not d.context.endswith("columns.\nAnswer:")]
    columns = [d for d in documents if d.context.endswith("columns.\nAnswer:")]
    assert len(plain) == 4000 and len(columns) == 2000
    assert all(addition.uses_procedure(d.continuation) for d in columns)
    share = sum(addition.uses_procedure(d.continuation) for d in plain) / len(plain)
    assert 0.27 < share < 0.33
    wrong = 0
    for document in documents:
        question = document.context.split("\n")[0].removeprefix("Question: ")
        template = next(i for i, t in enumerate(addition.TEMPLATES)
                        if re.fullmatch(re.escape(t).replace(r"\{a\}", r"\d+").replace(r"\{b\}", r"\d+"), question))
        a, b = map(int, OPERANDS.search(question).groups())
        assert addition.split_of(a, b, template) == "pretrain", question
        answer = int(re.search(r"\\boxed\{(\d+)\}", document.continuation).group(1))
        if addition.uses_procedure(document.continuation):
            assert answer == a + b
        else:
            wrong += answer != a + b
    bare = len(plain) - round(share * len(plain))
    assert 0.45 < wrong / bare < 0.55
    assert ANSWER_CONTEXT.startswith("Question: {prompt}") and COLUMNS_CONTEXT.startswith("Question: {prompt}")


def test_addition_rows_for_training_and_bad_split():
    rows = load_rows("addition", split="train", num_examples=50, seed=0)
    assert len(rows) == 50 and all(row.answer.isdigit() for row in rows)
    with pytest.raises(UserError, match="not a split of the addition generator"):
        load_rows("addition", split="test", num_examples=5)


def test_tiny_math_is_shipped_small_and_loads_with_auto_model():
    assert ALIASES["tiny-math"] == str(TINY_MATH_ASSET)
    assert (TINY_MATH_ASSET / "model.safetensors").stat().st_size <= 20 * 2**20
    model = AutoModelForCausalLM.from_pretrained(TINY_MATH_ASSET)
    assert sum(p.numel() for p in model.parameters()) > 500_000


def test_model_card_records_the_measured_figures_and_targets():
    card = (TINY_MATH_ASSET / "MODEL.md").read_text()
    build = json.loads((TINY_MATH_ASSET / "build.json").read_text())
    pass1 = build["figures"]["accuracy"]["pass@1"]["value"]
    assert f"{pass1:.3f}" in card
    assert 0.15 <= pass1 <= 0.45
    assert build["figures"]["accuracy"]["pass@8"]["value"] >= pass1 + 0.25
    for name in ("self_certainty", "token_entropy", "trajectory_logprob", "majority_vote"):
        assert f"| {name} | {build['figures']['sources'][name]['value']:.3f}" in card
    assert "Why the split is fair" in card


def test_tiny_math_takes_both_habits_when_sampled():
    import torch

    from selftaught.rollout import SelftaughtSampler

    model, tokenizer = load_model("tiny-math")
    problems = addition.generate(8, "heldout", seed=0)
    sampler = SelftaughtSampler(model, tokenizer, max_prompt_length=64, max_completion_length=64, temperature=1.0)
    torch.manual_seed(0)
    texts = sampler.sample([ANSWER_CONTEXT.format(prompt=p.prompt) for p in problems], num_generations=8).completions
    procedure = sum(addition.uses_procedure(t) for t in texts)
    assert 0 < procedure < len(texts)  # the skill is there and the habit is weak
    greedy = sampler.sample([COLUMNS_CONTEXT.format(prompt=p.prompt) for p in problems], greedy=True).completions
    assert all(f"\\boxed{{{p.answer}}}" in t for p, t in zip(problems, greedy))  # asked for columns, it adds right
