"""The failure modes of the Intuitor designs: each writes a guess the gold check reads as that
guess, never the procedure, and plugging one into the addition corpus leaves tiny-math's
corpus exactly as it was."""

import hashlib
import random
import re

import pytest

from selftaught.data import addition
from selftaught.rewards.math_answer import extract_answer
from selftaught.tiny.addition_corpus import addition_corpus
from selftaught.tiny.failure_modes import FAILURE_MODES, FILLER_WORDS, NOISE_CHARACTERS

TINY_MATH_CORPUS_SHA256 = "9b09eb667ff3ec2e03045cd088bf4a9225f25b79b5b36dbf173c9a56f0961d83"
"""sha256 of the first 2000 + 1000 documents of tiny-math's corpus (seed 0), computed with the
corpus code before failure modes existed: its build must still reproduce its model."""


def test_tiny_math_corpus_is_unchanged_by_the_failure_hook():
    documents = addition_corpus(2000, procedure_share=0.3, wrong_share=0.5, columns_share=0.5, seed=0)
    text = "".join(f"{d.context}|{d.continuation}\n" for d in documents)
    assert hashlib.sha256(text.encode()).hexdigest() == TINY_MATH_CORPUS_SHA256


@pytest.mark.parametrize("name", list(FAILURE_MODES))
def test_a_failure_answers_with_its_guess_and_never_the_procedure(name):
    rng = random.Random(0)
    write = FAILURE_MODES[name].write
    for value in [0, 1, 8, 10, 99, 1000, *(rng.randint(200, 1998) for _ in range(300))]:  # guesses can be tiny
        text = " " + write(value, rng)
        assert not addition.uses_procedure(text)
        answer = int(extract_answer(text))
        if name == "hedge":  # it names 2–4 candidates one digit apart and settles on one of them
            candidates = [int(c) for c in re.findall(r"\d+", text.split(".")[0])]
            assert 2 <= len(candidates) <= 4 and value in candidates and answer in candidates
        else:
            assert answer == value, text


def test_ramble_and_noise_are_drawn_from_broad_pools():
    rng = random.Random(1)
    rambles = [FAILURE_MODES["ramble"].write(1334, rng) for _ in range(200)]
    words = {w for text in rambles for w in text.split(". The answer")[0].split()}
    assert len(set(FILLER_WORDS)) == len(FILLER_WORDS) >= 100 and len(words) > 0.9 * len(set(FILLER_WORDS))
    noise = "".join(FAILURE_MODES["noise"].write(1334, rng).split(" The answer")[0] for _ in range(200))
    assert set(noise.replace(" ", "")) <= set(NOISE_CHARACTERS) and len(set(noise)) > 0.9 * len(NOISE_CHARACTERS)


@pytest.mark.parametrize("name", list(FAILURE_MODES))
def test_a_design_corpus_is_pretrain_only_and_its_procedures_are_right(name):
    documents = addition_corpus(600, procedure_share=0.3, wrong_share=0.5, columns_share=0.5, seed=0,
                                failure=FAILURE_MODES[name].write)
    plain = [d for d in documents if not d.context.endswith("columns.\nAnswer:")]
    assert len(plain) == 600 and len(documents) == 900
    for document in documents:
        a, b = map(int, re.search(r"(\d+)\D+(\d+)", document.context).groups())
        template = next(i for i, t in enumerate(addition.TEMPLATES)
                        if t.format(a=a, b=b) in document.context)
        assert addition.split_of(a, b, template) == "pretrain"
        if addition.uses_procedure(document.continuation):
            assert document.continuation.strip() == addition.procedure_solution(a, b)
        else:  # every answer that skips the procedure fails this design's way, none is a clean bare answer
            assert document.continuation.strip() != addition.bare_solution(int(extract_answer(document.continuation)))
    share = sum(addition.uses_procedure(d.continuation) for d in plain) / len(plain)
    assert 0.24 < share < 0.36
