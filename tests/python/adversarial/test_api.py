"""Adversarial inputs to the Python API: every one is a typed error that names what is wrong
(issue 15, "Untyped errors"); none is a ValueError, TypeError, KeyError or a silent wrong answer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from clipbranches import (
    Catalog,
    DimensionMismatchError,
    InvalidArgumentError,
    InvalidQueryError,
    SearchEngine,
    UnknownItemError,
    testing,
)
from clipbranches.learn import MODELS, BranchEnsemble, DecisionBranch, build_training_set, make_model
from clipbranches.store import Box, CalibratedQuantizer, FixedRangeQuantizer, quantizer_from_params


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> SearchEngine:
    return SearchEngine(testing.make_catalog(tmp_path_factory.mktemp("adv") / "cat", 2000, k=5))


@pytest.fixture(scope="module")
def narrow(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """A catalog of another width (16 bytes per code)."""
    return Catalog.create(tmp_path_factory.mktemp("narrow") / "cat", np.zeros((10, 16), np.uint8))


QUANTIZER_CASES: dict[str, tuple[Callable[[], Any], type[Exception], str]] = {
    "ragged_lists_to_quantize": (
        lambda: FixedRangeQuantizer().quantize([[0.1, 0.2], [0.3]]),
        InvalidArgumentError,
        "rectangular numeric array",
    ),
    "ragged_codes_to_dequantize": (
        lambda: FixedRangeQuantizer().dequantize([[1], [2, 3]]),
        InvalidArgumentError,
        "rectangular uint8 array",
    ),
    "a_string_scale": (lambda: FixedRangeQuantizer(scale="x"), InvalidArgumentError, "scale must be a number"),  # type: ignore[arg-type]
    "params_that_are_a_list": (lambda: quantizer_from_params([1, 2]), InvalidArgumentError, "must be a mapping"),  # type: ignore[arg-type]
    "a_zero_dim_calibrated_quantizer": (
        lambda: CalibratedQuantizer(np.zeros(0, np.float32), np.zeros(0, np.float32)),
        DimensionMismatchError,
        "not empty",
    ),
    "string_calibration_bounds": (
        lambda: CalibratedQuantizer(np.array(["a"]), np.array(["b"])),  # type: ignore[arg-type]
        InvalidArgumentError,
        "numeric arrays",
    ),
}


@pytest.mark.parametrize("case", list(QUANTIZER_CASES))
def test_quantizer_inputs(case: str) -> None:
    call, error, match = QUANTIZER_CASES[case]
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize(
    ("positives", "match"),
    [
        (None, "positive ids must be a list of integers, not NoneType"),
        (5, "positive ids must be a list of integers, not int"),
        ("12", "positive ids must be a list of integers, not str"),
        ([[1, 2], [3]], "flat list of integers"),
        ([[1, 2], [3, 4]], "flat list of integers, got shape \\(2, 2\\)"),
        ([1.5], "flat list of integers, got float64"),
        ([True], "flat list of integers, got bool"),
    ],
)
def test_refine_with_ids_that_are_not_a_list_of_integers(engine: SearchEngine, positives: Any, match: str) -> None:
    with pytest.raises(InvalidArgumentError, match=match):
        engine.refine(positives)


def test_an_unsigned_id_past_int64_is_unknown_not_wrapped(engine: SearchEngine) -> None:
    with pytest.raises(UnknownItemError, match="18446744073709551615"):  # not reported as [-1]
        engine.refine(np.array([2**64 - 1], np.uint64))
    with pytest.raises(UnknownItemError, match=str(2**63)):
        engine.catalog.find(np.array([2**63], np.uint64))


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"kind": "refine"}, "its params lack positives"),
        ({"kind": "text"}, "its params lack query"),
        ({"kind": "image", "k": 3}, "lack item or path"),
        ({"kind": "dream"}, "cannot redo a search of kind 'dream'"),
        ({}, "cannot redo a search of kind None"),
        ("refine", "a mapping\\), not str"),
        (None, "not NoneType"),
    ],
)
def test_redo_of_params_no_search_produced(engine: SearchEngine, params: Any, match: str) -> None:
    with pytest.raises(InvalidArgumentError, match=match):
        engine.redo(params)


@pytest.mark.parametrize(
    ("box", "match"),
    [
        (Box((0,), (float("nan"),), (3,)), "must be integers, got nan"),  # type: ignore[arg-type]
        (Box((0,), (1.5,), (3,)), "must be integers, got 1.5"),  # type: ignore[arg-type]
        (Box((0,), (True,), (3,)), "must be integers, got True"),
        (Box(0, 1, 3), "must be sequences of integers"),  # type: ignore[arg-type]
        (Box((0, 1), (1,), (3,)), "2 dims but 1 lower"),
    ],
)
def test_box_bounds_that_are_not_integers(engine: SearchEngine, box: Box, match: str) -> None:
    with pytest.raises(InvalidQueryError, match=match):
        engine.catalog.query_boxes([box])


@pytest.mark.parametrize("learner", [DecisionBranch, BranchEnsemble])
def test_apply_of_an_unfitted_learner_or_on_another_width(
    engine: SearchEngine, narrow: Catalog, learner: type[DecisionBranch | BranchEnsemble]
) -> None:
    with pytest.raises(InvalidArgumentError, match="not fitted yet"):
        learner().apply(engine.catalog)  # used to return 0 items
    codes = engine.catalog.codes[:200]
    fitted = learner(seed=0).fit(codes, np.arange(200) < 10)
    with pytest.raises(DimensionMismatchError, match="the catalog has 16 dims; the model was fitted on 32"):
        fitted.apply(narrow)  # used to run


@pytest.mark.parametrize("name", list(MODELS))
def test_every_registry_model_refuses_a_catalog_of_another_width(
    engine: SearchEngine, narrow: Catalog, name: str
) -> None:
    if name in ("tree", "forest"):
        pytest.importorskip("sklearn")
    model = make_model(name).fit(build_training_set(engine.catalog.codes, [1, 2, 3]))
    with pytest.raises((DimensionMismatchError, InvalidArgumentError)):
        model.apply(narrow)
