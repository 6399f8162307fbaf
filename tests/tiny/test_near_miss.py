"""Careless answers (selftaught.tiny.near_miss): one small part changed, never the value itself."""

import random

import pytest

from selftaught.tiny.near_miss import near_miss


@pytest.mark.parametrize("value", [0, 7, 42, -13, 1334, True, "", "kiwi", "WORL", [], [3, 1, 2], (4, "a"),
                                   {}, {"a": 2, "x": 7}, None, [[1, 2], {"b": 3}]])
def test_a_near_miss_differs_from_the_value_in_one_small_part(value):
    rng = random.Random(0)
    for _ in range(50):
        missed = near_miss(value, rng)
        assert missed != value and type(missed) in (type(value), int)
        if isinstance(value, (list, tuple)) and value:
            assert len(missed) == len(value) and sum(a != b for a, b in zip(missed, value)) == 1
        if isinstance(value, str) and value:
            assert len(missed) == len(value) and sum(a != b for a, b in zip(missed, value)) == 1
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            assert abs(missed - value) in {10 ** k for k in range(len(str(value)))}


def test_positive_integers_stay_non_negative_as_tiny_math_built_them():
    rng = random.Random(1)
    assert all(near_miss(v, rng) >= 0 for v in range(0, 2000, 7) for _ in range(3))
