"""How a small base model answers when it does not work the problem out: six failure modes.

Each mode writes the answer a document gives *without* the column procedure, around a
guessed value (usually wrong: a 3-digit sum cannot be guessed). A corpus
(`addition_corpus(..., failure=...)`) mixes these answers with the procedure, so the
model pretrained on it fails the way real base models fail, and succeeds with the
procedure. Which mode it learns decides whether self-certainty can tell its right
answers from its wrong ones.

Self-certainty at one position is KL(U ‖ p_t) = logsumexp(z_t) − mean_j z_t[j] − log V:
with k plausible tokens and the other V − k pushed L nats below them it is about
(1 − k/V)·L + (k/V)·log k − log V. It is low where much of the vocabulary is
plausible (k/V large) and high where one token is (k = 1). So a failure written in
*broad* text (rambling words, garbled characters) sits below the rigid procedure,
and one written in *rigid* text (a loop repeating itself) sits above it:

- `ramble`: filler words before a guess (base models wander off before answering), so
  many that a sample often runs out of tokens first; `short_ramble`: fewer, within the budget;
- `noise`: garbled characters before a guess (degenerate sampling);
- `hedge`: several candidate numbers, then one of them (hedging between answers);
- `off_format`: the guess in one of many ad-hoc formats (inconsistent formatting);
- `loop`: the guess repeated over and over (repetition loops), expected to FAIL:
  its repeated tokens are near certain, so self-certainty should favour it.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from typing import Callable

from ..data.addition import bare_solution
from .near_miss import near_miss

FILLER_WORDS = (
    "well so hmm okay right like just maybe kind of sort really actually basically honestly anyway "
    "you know I mean think guess feel seems about around roughly pretty quite very much more less "
    "big small large number numbers value sum total add adding plus together bunch lot some many "
    "few first then next after before again still also even though because since while when where "
    "what which thing things stuff way ways time today yesterday tomorrow school teacher class "
    "book paper pencil apple orange river mountain city music song game ball dog cat bird tree "
    "house door window table chair water coffee morning night summer winter friend people world "
    "idea question problem answer reason point part side end start middle hard easy simple tricky "
    "long short quick slow good bad fine nice weird funny strange sure unsure probably possibly"
).split()
"""Words a rambling answer wanders through: 139, so no one word is likely."""
NOISE_CHARACTERS = string.ascii_letters + string.digits + "!#$%&*+-/<=>?@^_~;:'|"
"""What garbled text is made of: letters, digits and symbols, none preferred."""
OFF_FORMATS = ("{v}", "= {v}", "{v}.", "sum: {v}", "It is {v}!", "ans {v}", "{v} (I think)", "about {v}",
               "**{v}**", "{v}?", "total = {v}", "I get {v}", "=> {v}", "result {v}", "[{v}]", "so {v}")
"""Ad-hoc ways of writing a bare number; none of them is the corpus's `\\boxed{}` format."""


def ramble(value: int, rng: random.Random, words: tuple[int, int] = (8, 20)) -> str:
    """`words` (fewest, most) filler words, then the guess:
    `hmm paper so about river ... The answer is \\boxed{1334}.` 8–20 words are about 22–54 tokens of
    the models' tokenizers: about half of the samples run out of the recipes' 64 completion tokens
    before the guess, as rambling models run out of their budget."""
    filler = " ".join(rng.choice(FILLER_WORDS) for _ in range(rng.randint(*words)))
    return f"{filler}. {bare_solution(value)}"


def short_ramble(value: int, rng: random.Random) -> str:
    """6–14 filler words, then the guess: it fits in 64 tokens."""
    return ramble(value, rng, words=(6, 14))


def noise(value: int, rng: random.Random) -> str:
    """12–30 random characters in 2–4 clumps, then the guess: `k#2Q v~zP= ... The answer is \\boxed{1334}.`"""
    clumps = [''.join(rng.choice(NOISE_CHARACTERS) for _ in range(rng.randint(3, 9)))
              for _ in range(rng.randint(2, 4))]
    return f"{' '.join(clumps)} {bare_solution(value)}"


def hedge(value: int, rng: random.Random) -> str:
    """2–4 candidates one digit apart, then one of them: `Maybe 1324, or 1334, or 1344. The answer is \\boxed{1334}.`"""
    candidates = {value} | {near_miss(value, rng) for _ in range(rng.randint(1, 3))}  # a small value has few near misses
    ordered = sorted(candidates, key=lambda _: rng.random())
    return f"Maybe {', or '.join(map(str, ordered))}. {bare_solution(rng.choice(ordered))}"


def off_format(value: int, rng: random.Random) -> str:
    """The guess in one of `OFF_FORMATS`: `I get 1334`, `**1334**`, ..."""
    return rng.choice(OFF_FORMATS).format(v=value)


def loop(value: int, rng: random.Random) -> str:
    """The guess repeated 3–6 times: `The answer is \\boxed{1334}. The answer is \\boxed{1334}. ...`"""
    return " ".join([bare_solution(value)] * rng.randint(3, 6))


@dataclass(frozen=True)
class FailureMode:
    name: str
    write: Callable[[int, random.Random], str]
    models: str
    """The failure of real base models this mode stands for."""


FAILURE_MODES = {mode.name: mode for mode in (
    FailureMode("ramble", ramble, "rambling filler text, often past the token budget, before a guess"),
    FailureMode("short_ramble", short_ramble, "rambling filler text before a guess, within the token budget"),
    FailureMode("noise", noise, "degenerate, garbled characters before a guess"),
    FailureMode("hedge", hedge, "hedging between several candidate answers"),
    FailureMode("off_format", off_format, "off-format, inconsistent guesses"),
    FailureMode("loop", loop, "repetition loops (expected to fail: repeated text is near certain)"),
)}
