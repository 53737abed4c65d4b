"""The training set of a round: labels first, weights, the fixed random pool, every bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clipbranches import DimensionMismatchError, InvalidArgumentError, RefineOptions
from clipbranches.learn import build_training_set
from clipbranches.learn.training import POOL_SEED, random_pool

CODES = np.random.default_rng(1).integers(0, 256, size=(3000, 8), dtype=np.uint8)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 20_000), st.integers(1, 600))
def test_the_random_pool_is_distinct_in_range_and_fixed(n: int, size: int) -> None:
    pool = random_pool(n, size)
    assert len(pool) == min(n, size)
    assert len(np.unique(pool)) == len(pool)
    assert pool.min() >= 0
    assert pool.max() < n
    np.testing.assert_array_equal(pool, random_pool(n, size))  # the same in every round
    assert POOL_SEED == 0xC11B  # changing it would change every saved round's answer


@settings(max_examples=60, deadline=None)
@given(
    st.sets(st.integers(0, 2999), min_size=1, max_size=30),
    st.sets(st.integers(0, 2999), max_size=30),
    st.integers(0, 1000),
    st.integers(1, 100),
    st.integers(0, 2**32),
)
def test_labels_come_first_and_random_negatives_avoid_them(
    pos: set[int], neg: set[int], random_negatives: int, weight: int, seed: int
) -> None:
    neg -= pos
    ts = build_training_set(
        CODES, sorted(pos), sorted(neg), random_negatives=random_negatives, negative_weight=weight, seed=seed
    )
    p, q = len(pos), len(neg)
    assert ts.positives == p
    assert ts.rows[:p].tolist() == sorted(pos)
    assert ts.rows[p : p + q].tolist() == sorted(neg)
    assert ts.labels[:p].all()
    assert not ts.labels[p:].any()
    assert (ts.weights[p : p + q] == weight).all()
    assert (ts.weights[:p] == 1).all()
    assert (ts.weights[p + q :] == 1).all()
    assert ts.labelled[: p + q].all()
    assert not ts.labelled[p + q :].any()
    drawn = ts.rows[p + q :]
    available = np.setdiff1d(random_pool(len(CODES)), list(pos | neg))
    assert len(drawn) == min(random_negatives, len(available))
    assert np.isin(drawn, available).all(), "random negatives come from the fixed pool, without the labels"
    assert not np.isin(drawn, list(pos | neg)).any()
    np.testing.assert_array_equal(ts.codes, CODES[ts.rows])
    again = build_training_set(
        CODES, sorted(pos), sorted(neg), random_negatives=random_negatives, negative_weight=weight, seed=seed
    )
    np.testing.assert_array_equal(again.rows, ts.rows)


def test_defaults_are_the_refine_options() -> None:
    ts = build_training_set(CODES, [1, 2])
    assert len(ts) == 2 + RefineOptions().random_negatives


@pytest.mark.parametrize(
    ("positives", "negatives", "kwargs", "error", "match"),
    [
        ([], [1], {}, InvalidArgumentError, "at least one positive"),
        ([1, 2], [2], {}, InvalidArgumentError, "both positive and negative: \\[2\\]"),
        ([3000], [], {}, InvalidArgumentError, "positive rows out of range 0..2999: \\[3000\\]"),
        ([-1], [], {}, InvalidArgumentError, "out of range"),
        ([1.5], [], {}, InvalidArgumentError, "positive rows must be integers"),
        ([True], [], {}, InvalidArgumentError, "must be integers"),
        ([1], [], {"random_negatives": 10_001}, InvalidArgumentError, "random_negatives must be in 0..10,000"),
        ([1], [], {"random_negatives": "5"}, InvalidArgumentError, "random_negatives must be an integer"),
        ([1], [], {"negative_weight": 0}, InvalidArgumentError, "negative_weight must be in 1..100"),
    ],
)
def test_bad_labels_and_options_are_named(
    positives: list[object], negatives: list[object], kwargs: dict[str, object], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        build_training_set(CODES, positives, negatives, **kwargs)  # type: ignore[arg-type]


def test_codes_must_be_a_uint8_matrix() -> None:
    with pytest.raises(DimensionMismatchError, match="uint8"):
        build_training_set(CODES.astype(np.int16), [1])  # type: ignore[arg-type]
    with pytest.raises(DimensionMismatchError, match="uint8"):
        build_training_set(CODES[0], [1])


def test_training_set_rules() -> None:
    ts = build_training_set(CODES, [5, 6, 6], [7, 8], random_negatives=300, negative_weight=4, seed=3)
    assert ts.positives == 2
    assert list(ts.rows[:4]) == [5, 6, 7, 8]
    assert list(ts.weights[:4]) == [1.0, 1.0, 4.0, 4.0]
    assert len(ts) == 4 + 300
    assert not np.isin(ts.rows[4:], [5, 6, 7, 8]).any(), "random negatives exclude labelled items"
    assert len(np.unique(ts.rows)) == len(ts.rows)
    np.testing.assert_array_equal(ts.codes, CODES[ts.rows])
    again = build_training_set(CODES, [5, 6], [7, 8], random_negatives=300, negative_weight=4, seed=3)
    np.testing.assert_array_equal(ts.rows, again.rows)


@pytest.mark.parametrize(
    ("positives", "negatives", "kwargs", "match"),
    [
        ([], [1], {}, "at least one positive"),
        ([20_000], [], {}, "out of range"),
        ([-1], [], {}, "out of range"),
        ([1.5], [], {}, "integers"),
        ([1], [1], {}, "both positive and negative"),
        ([1], [], {"random_negatives": -1}, "random_negatives"),
        ([1], [], {"random_negatives": 10_001}, "random_negatives"),
        ([1], [], {"negative_weight": 0}, "negative_weight"),
        ([1], [], {"negative_weight": 101}, "negative_weight"),
        ([1], [], {"negative_weight": 2.5}, "negative_weight"),
    ],
)
def test_training_set_errors(positives: list, negatives: list, kwargs: dict, match: str) -> None:
    with pytest.raises(InvalidArgumentError, match=match):
        build_training_set(CODES, positives, negatives, **kwargs)


def test_random_pool_is_fixed_and_distinct() -> None:
    big = random_pool(100_000_000)
    assert len(np.unique(big)) == len(big) == 10_000
    assert big.max() < 100_000_000
    np.testing.assert_array_equal(big, random_pool(100_000_000))
    assert sorted(random_pool(50)) == list(range(50))
