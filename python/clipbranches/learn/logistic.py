"""Class-balanced, L2-regularised logistic regression on uint8 codes, fitted by Newton's method
in numpy (no scikit-learn: the first refine round of a process costs no import).

The objective is scikit-learn's ``LogisticRegression(class_weight="balanced", C=c)``:
``0.5 |w|^2 + c * sum_i s_i log(1 + exp(-y_i (w . x_i + b)))`` with the intercept not
penalised, where ``s_i`` is the sample weight times the class weight
``W / (2 * W_class)`` (``W``: the total sample weight, ``W_class``: that of the row's class).
With 33 parameters a Newton step is one 33x33 solve, and 6-12 steps reach the optimum to float
precision, in about a millisecond for a round's ~500 rows (`tests/python/test_logistic.py`
compares it with scikit-learn).

Features are the codes centred and scaled as ``(code - 128) / 128`` (about [-1, 1]).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from clipbranches.exceptions import InvalidArgumentError

__all__ = ["LinearScorer", "code_features", "fit_logistic"]

#: Newton steps at most (the optimum is reached in 6-12 on real labels).
MAX_STEPS = 50
#: Stop when the largest step of a parameter is below this.
TOLERANCE = 1e-8


def code_features(codes: NDArray[np.uint8]) -> NDArray[np.float64]:
    """``(code - 128) / 128`` as float64, ``(n, dim)``."""
    return (np.asarray(codes, np.float64) - 128.0) / 128.0


@dataclass(frozen=True)
class LinearScorer:
    """A fitted linear decision ``w . (code - 128) / 128 + b``.

    Attributes
    ----------
    weights : float64 (dim,)
    intercept : float
    """

    weights: NDArray[np.float64]
    intercept: float

    def decision(self, codes: NDArray[np.uint8]) -> NDArray[np.float64]:
        """The decision value of each row of ``codes`` ``(n, dim)``."""
        return code_features(codes) @ self.weights + self.intercept

    def on_codes(self) -> tuple[NDArray[np.float32], float]:
        """The same decision on raw codes, ``w' . code + b'``, for the native linear scan."""
        return (self.weights / 128.0).astype(np.float32), float(self.intercept - self.weights.sum())


def fit_logistic(
    codes: NDArray[np.uint8], labels: NDArray[np.bool_], weights: NDArray[np.float64] | None = None, *, c: float = 1.0
) -> LinearScorer:
    """Fit the balanced logistic regression (see the module docstring).

    Raises
    ------
    InvalidArgumentError
        Labels of one class only, mismatched lengths, a weight that is negative or not finite,
        ``c`` not positive.
    """
    x = code_features(codes)
    y = np.asarray(labels, bool)
    s = np.ones(len(y)) if weights is None else np.asarray(weights, np.float64)
    if x.ndim != 2 or len(y) != len(x) or len(s) != len(x):
        raise InvalidArgumentError(f"codes {x.shape}, labels {y.shape} and weights {s.shape} must have one row each")
    if not (np.isfinite(s).all() and (s >= 0).all()) or not c > 0:
        raise InvalidArgumentError("weights must be finite and >= 0, and c > 0")
    total, positive = float(s.sum()), float(s[y].sum())
    if not 0 < positive < total:
        raise InvalidArgumentError("logistic regression needs at least one positive and one negative (of weight > 0)")
    s = s * np.where(y, total / (2.0 * positive), total / (2.0 * (total - positive))) * c
    design = np.hstack([x, np.ones((len(x), 1))])
    penalty = np.ones(design.shape[1])
    penalty[-1] = 0.0  # the intercept is not penalised
    theta = np.zeros(design.shape[1])
    target = y.astype(np.float64)
    for _ in range(MAX_STEPS):
        p = _sigmoid(design @ theta)
        gradient = penalty * theta + design.T @ (s * (p - target))
        hessian = (design.T * (s * p * (1.0 - p))) @ design + np.diag(penalty)
        # A tiny ridge keeps the solve defined when the intercept's curvature vanishes
        # (every point fitted with certainty).
        step = np.linalg.solve(hessian + 1e-10 * np.eye(len(theta)), gradient)
        theta -= step
        if np.abs(step).max() < TOLERANCE:
            break
    return LinearScorer(theta[:-1].copy(), float(theta[-1]))


def _sigmoid(z: NDArray[np.float64]) -> NDArray[np.float64]:
    out = np.empty_like(z)
    positive = z >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-z[positive]))
    e = np.exp(z[~positive])
    out[~positive] = e / (1.0 + e)
    return out
