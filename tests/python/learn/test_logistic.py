"""The native balanced logistic regression: scikit-learn's optimum without scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest

from clipbranches import InvalidArgumentError
from clipbranches.learn.logistic import code_features, fit_logistic


def _data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 256, (520, 32), dtype=np.uint8)
    labels = np.zeros(520, bool)
    labels[:20] = True
    codes[:20, :5] = rng.integers(180, 230, (20, 5))
    weights = np.ones(520)
    weights[20:30] = rng.integers(1, 100)
    return codes, labels, weights


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_scikit_learn(seed: int) -> None:
    linear_model = pytest.importorskip("sklearn.linear_model")
    codes, labels, weights = _data(seed)
    mine = fit_logistic(codes, labels, weights, c=0.7)
    theirs = linear_model.LogisticRegression(class_weight="balanced", C=0.7, max_iter=10_000, tol=1e-12).fit(
        code_features(codes), labels, sample_weight=weights
    )
    np.testing.assert_allclose(mine.weights, theirs.coef_[0], atol=1e-4)
    assert mine.intercept == pytest.approx(theirs.intercept_[0], abs=1e-4)


def test_decision_on_raw_codes_is_the_same_function() -> None:
    codes, labels, weights = _data(3)
    model = fit_logistic(codes, labels, weights)
    w, b = model.on_codes()
    np.testing.assert_allclose(codes.astype(np.float64) @ w + b, model.decision(codes), rtol=1e-5, atol=1e-4)
    assert model.decision(codes[:20]).mean() > 0 > model.decision(codes[20:]).mean()


def test_separable_labels_stay_finite() -> None:
    codes = np.array([[0] * 4, [1] * 4, [254] * 4, [255] * 4], np.uint8)
    model = fit_logistic(codes, np.array([False, False, True, True]))
    assert np.isfinite(model.weights).all()
    assert np.isfinite(model.intercept)
    assert (model.decision(codes) > 0).tolist() == [False, False, True, True]


def test_bad_input_is_a_typed_error() -> None:
    codes, labels, weights = _data(4)
    with pytest.raises(InvalidArgumentError, match="one positive and one negative"):
        fit_logistic(codes, np.zeros(520, bool))
    with pytest.raises(InvalidArgumentError, match="one positive and one negative"):
        fit_logistic(codes, labels, np.where(labels, 0.0, 1.0))
    with pytest.raises(InvalidArgumentError, match="one row each"):
        fit_logistic(codes, labels[:10])
    with pytest.raises(InvalidArgumentError, match="finite"):
        fit_logistic(codes, labels, np.where(labels, -1.0, 1.0))
    with pytest.raises(InvalidArgumentError, match="finite"):
        fit_logistic(codes, labels, weights, c=0.0)
