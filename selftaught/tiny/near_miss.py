"""Careless answers: a value with one small part changed.

The built-in models' corpora write some bare answers wrong, the way careless answers in
real text are wrong: one digit, one letter or one element off. A model pretrained on
them learns that an answer written without working is unreliable, so on problems it has
not seen its bare answers are mostly wrong while its worked ones stay right.
"""

from __future__ import annotations

import random
import string


def near_miss(value, rng: random.Random):
    """`value` (a Python literal) with one digit, letter, element or entry changed; never equal to it."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        place = 10 ** rng.randrange(len(str(abs(value))))
        return value + place if value < place or rng.random() < 0.5 else value - place
    if isinstance(value, str):
        if not value:
            return rng.choice(string.ascii_lowercase)
        at = rng.randrange(len(value))
        letter = rng.choice([c for c in string.ascii_lowercase if c != value[at].lower()])
        return value[:at] + (letter.upper() if value[at].isupper() else letter) + value[at + 1:]
    if isinstance(value, (list, tuple)):
        if not value:
            return type(value)([0])
        at = rng.randrange(len(value))
        changed = list(value)
        changed[at] = near_miss(changed[at], rng)
        return type(value)(changed)
    if isinstance(value, dict):
        if not value:
            return {"a": 0}
        key = rng.choice(sorted(value, key=repr))
        return {**value, key: near_miss(value[key], rng)}
    if value is None:
        return 0
    raise TypeError(f"no near miss for {type(value).__name__}")
