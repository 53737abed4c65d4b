"""RefineOptions: the one home of a round's defaults and ranges, validated on construction."""

from __future__ import annotations

import pytest

from clipbranches import DEFAULT_K, InvalidArgumentError, RefineOptions
from clipbranches.learn import DEFAULT_MODEL, MODELS


def test_defaults() -> None:
    options = RefineOptions()
    assert (options.model, options.random_negatives, options.negative_weight, options.seed) == (
        DEFAULT_MODEL,
        500,
        1,
        None,
    )
    assert RefineOptions.RANDOM_NEGATIVES == (0, 10_000)
    assert RefineOptions.NEGATIVE_WEIGHT == (1, 100)
    assert DEFAULT_K == 60


@pytest.mark.parametrize("model", list(MODELS))
def test_every_registry_model_is_accepted(model: str) -> None:
    assert RefineOptions(model).model == model


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"model": "nope"}, "unknown model 'nope'; choose one of"),
        ({"random_negatives": -1}, "random_negatives must be in 0..10,000, got -1"),
        ({"random_negatives": 10_001}, "random_negatives"),
        ({"random_negatives": 2.0}, "random_negatives must be an integer"),
        ({"negative_weight": 0}, "negative_weight must be in 1..100"),
        ({"negative_weight": True}, "negative_weight must be an integer"),
        ({"seed": -1}, "seed must be in 0.."),
        ({"seed": "1"}, "seed must be an integer"),
    ],
)
def test_out_of_range_values_are_named(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidArgumentError, match=match):
        RefineOptions(**kwargs)  # type: ignore[arg-type]


def test_replace_keeps_what_is_not_given_and_validates() -> None:
    base = RefineOptions("branch", 100, 3, seed=7)
    assert base.replace(model=None, seed=None) == base
    assert base.replace(negative_weight=5) == RefineOptions("branch", 100, 5, seed=7)
    with pytest.raises(InvalidArgumentError, match="negative_weight"):
        base.replace(negative_weight=500)


def test_parse_takes_a_forms_strings() -> None:
    assert RefineOptions.parse("linear", " 20 ", "2") == RefineOptions("linear", 20, 2)
    with pytest.raises(InvalidArgumentError, match="random_negatives must be a whole number, not 'x'"):
        RefineOptions.parse("linear", "x", "2")
    with pytest.raises(InvalidArgumentError, match="unknown model"):
        RefineOptions.parse(None, "1", "1")
