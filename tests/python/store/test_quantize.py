"""Quantizers: the native kernels against their numpy twins, edges, inverses, parameters."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from clipbranches import DimensionMismatchError, InvalidArgumentError, testing
from clipbranches.store import CalibratedQuantizer, FixedRangeQuantizer, quantizer_from_params

floats = st.floats(width=32, allow_nan=False, allow_infinity=True)
embeddings = hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, max_side=40), elements=floats)


@settings(max_examples=200, deadline=None)
@given(x=embeddings, scale=st.floats(0.1, 1000), offset=st.floats(-300, 300))
def test_fixed_native_matches_numpy_twin(x: np.ndarray, scale: float, offset: float) -> None:
    q = FixedRangeQuantizer(scale, offset)
    np.testing.assert_array_equal(q.quantize(x), testing.quantize_numpy(q, x))


@settings(max_examples=200, deadline=None)
@given(data=st.data(), rows=st.integers(0, 30), dim=st.integers(1, 40))
def test_calibrated_native_matches_numpy_twin(data: st.DataObject, rows: int, dim: int) -> None:
    x = data.draw(hnp.arrays(np.float32, (rows, dim), elements=floats))
    low = data.draw(hnp.arrays(np.float32, dim, elements=st.floats(-1e3, 1e3, width=32)))
    width = data.draw(hnp.arrays(np.float32, dim, elements=st.floats(0.015625, 1e3, width=32)))
    q = CalibratedQuantizer(low, low + width)
    np.testing.assert_array_equal(q.quantize(x), testing.quantize_numpy(q, x))


def test_fixed_is_the_papers_formula() -> None:
    x = np.array([-1.0, -0.999, 0.0, 0.5, 0.999, 1.0, -7.0, 7.0], dtype=np.float32)
    expected = np.clip(x * 127.5 + 128, 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(FixedRangeQuantizer().quantize(x), expected)
    assert FixedRangeQuantizer().quantize(x).tolist() == [0, 0, 128, 191, 255, 255, 0, 255]


def test_dequantize_error_is_at_most_half_a_step() -> None:
    x = np.random.default_rng(1).uniform(-1, 0.995, size=(1000, 32)).astype(np.float32)
    fixed = FixedRangeQuantizer()
    assert np.abs(fixed.dequantize(fixed.quantize(x)) - x).max() <= 0.5 / 127.5 + 1e-6
    calibrated = CalibratedQuantizer.fit(x, quantile=0.0)
    step = (calibrated.high - calibrated.low) / 255
    assert (np.abs(calibrated.dequantize(calibrated.quantize(x)) - x) <= step / 2 + 1e-6).all()


def test_calibrated_spends_more_levels_than_fixed_on_narrow_data() -> None:
    x = np.random.default_rng(2).normal(0, 0.15, size=(5000, 8)).astype(np.float32)
    fixed, calibrated = FixedRangeQuantizer(), CalibratedQuantizer.fit(x)
    fixed_err = np.abs(fixed.dequantize(fixed.quantize(x)) - x).mean()
    calibrated_err = np.abs(calibrated.dequantize(calibrated.quantize(x)) - x).mean()
    # N(0, 0.15) spans about a third of [-1, 1]: the fitted range halves the step
    assert calibrated_err < 0.6 * fixed_err


def test_fit_handles_constant_dimensions_and_rejects_empty_samples() -> None:
    x = np.zeros((10, 3), np.float32)
    q = CalibratedQuantizer.fit(x)
    assert (q.high > q.low).all()
    with pytest.raises(InvalidArgumentError, match="empty sample"):
        CalibratedQuantizer.fit(np.zeros((0, 3), np.float32))
    with pytest.raises(InvalidArgumentError, match="quantile"):
        CalibratedQuantizer.fit(x, quantile=0.7)


def test_bad_inputs_are_named() -> None:
    fixed = FixedRangeQuantizer()
    nan = np.zeros((3, 4), np.float32)
    nan[2, 1] = np.nan
    for quantize in (fixed.quantize, functools.partial(testing.quantize_numpy, fixed)):
        with pytest.raises(InvalidArgumentError, match="NaN at row 2, dimension 1"):
            quantize(nan)
    with pytest.raises(InvalidArgumentError, match="numeric"):
        fixed.quantize(np.array(["a", "b"]))
    with pytest.raises(DimensionMismatchError, match="shape"):
        fixed.quantize(np.zeros((2, 2, 2), np.float32))
    with pytest.raises(InvalidArgumentError, match="scale > 0"):
        FixedRangeQuantizer(scale=0.0)
    with pytest.raises(InvalidArgumentError, match="dimension 1"):
        CalibratedQuantizer(np.array([0.0, 1.0]), np.array([1.0, 1.0]))
    with pytest.raises(DimensionMismatchError, match="equal length"):
        CalibratedQuantizer(np.zeros(2), np.ones(3))
    with pytest.raises(DimensionMismatchError, match="2 dimensions, data has 3"):
        CalibratedQuantizer(np.zeros(2), np.ones(2)).quantize(np.zeros((1, 3), np.float32))
    with pytest.raises(InvalidArgumentError, match="uint8"):
        fixed.dequantize(np.zeros(3, np.int32))


def test_params_round_trip_and_bad_params() -> None:
    calibrated = CalibratedQuantizer(np.array([-1.0, 0.0]), np.array([1.0, 2.0]))
    for q in (FixedRangeQuantizer(100.0, 120.0), calibrated):
        restored = quantizer_from_params(q.params())
        x = np.random.default_rng(3).normal(size=(20, 2)).astype(np.float32)
        np.testing.assert_array_equal(restored.quantize(x), q.quantize(x))
    with pytest.raises(InvalidArgumentError, match="unknown quantizer kind 'pq'"):
        quantizer_from_params({"kind": "pq"})
    with pytest.raises(InvalidArgumentError, match="incomplete"):
        quantizer_from_params({"kind": "fixed", "scale": 1.0})


def test_single_vectors_keep_their_shape() -> None:
    assert FixedRangeQuantizer().quantize(np.zeros(5)).shape == (5,)
