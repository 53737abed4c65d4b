"""The ``linear`` model: a class-balanced logistic regression on the codes, refitted once with
pseudo-labels drawn from the catalog itself.

Why (the learner issue's quality report, Fashion-MNIST features): with a few positives a linear
scorer already beats the box models by far, but not nearest-neighbour search told the true
number of matches. One round of self-training closes that gap: the first model's accepted
items become (lightly weighted) pseudo-positives and a sample of its rejected items
pseudo-negatives, so the second fit sees the shape of the class in the unlabelled catalog.
The pseudo-positives weigh ``pseudo_weight / p`` labelled positives in all: much at p=4, little
at p=64, where the labels alone suffice. On classes one hyperplane separates it is the best
accepted set of all models (`benchmarks/quality.py`, Fashion-MNIST, mean F1 at p=4..64:
0.701/0.733/0.756/0.761/0.759 against 0.677/0.720/0.735/0.736/0.742 for the best oracle
baseline), but on classes of several modes (OpenClipArt) it never beats nearest-neighbour
search, which is why the default is now :mod:`clipbranches.learn.hybrid`.

The fits are native (:mod:`clipbranches.learn.logistic`, numpy): no scikit-learn import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from clipbranches.exceptions import InvalidArgumentError
from clipbranches.learn.logistic import LinearScorer, fit_logistic
from clipbranches.learn.ranking import Ranked

if TYPE_CHECKING:
    from clipbranches.learn.training import TrainingSet
    from clipbranches.store.catalog import Catalog

__all__ = ["PSEUDO_WEIGHT", "SelfTrainedLinear", "refit_with_pseudo_labels"]

#: Total weight of the pseudo-positives, in labelled positives, times ``1 / p``.
PSEUDO_WEIGHT = 32.0
#: Total weight of the pseudo-negatives (that of the default 500 random negatives).
PSEUDO_NEGATIVES_WEIGHT = 500.0


def refit_with_pseudo_labels(
    training: TrainingSet,
    pseudo_positives: NDArray[np.uint8],
    pseudo_negatives: NDArray[np.uint8],
    *,
    pseudo_weight: float = PSEUDO_WEIGHT,
    negatives_weight: float = PSEUDO_NEGATIVES_WEIGHT,
    c: float = 1.0,
) -> LinearScorer:
    """The balanced logistic regression refitted on ``training`` plus pseudo-labelled codes
    (both non-empty): the pseudo-positives weigh ``pseudo_weight / p`` in all (``p`` labelled
    positives), the pseudo-negatives ``negatives_weight`` in all."""
    p = max(1, training.positives)
    inside, outside = len(pseudo_positives), len(pseudo_negatives)
    weights = np.concatenate(
        [training.weights, np.full(inside, pseudo_weight / p / inside), np.full(outside, negatives_weight / outside)]
    )
    x = np.concatenate([training.codes, pseudo_positives, pseudo_negatives])
    y = np.concatenate([training.labels, np.ones(inside, bool), np.zeros(outside, bool)])
    return fit_logistic(x, y, weights, c=c)


class SelfTrainedLinear:
    """Balanced logistic regression, refitted once on the catalog's own pseudo-labels.

    Parameters
    ----------
    seed
        Seed of the pseudo-label sample.
    pseudo_weight
        Total weight of the pseudo-positives, in labelled positives, times ``1 / p``.
    pseudo_rows
        Most pseudo-positives and pseudo-negatives drawn (each).
    c
        Inverse regularisation strength of both fits.
    name
        The registry name (``logreg`` is this model with ``pseudo_rows=0``: no refit).
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        pseudo_weight: float = PSEUDO_WEIGHT,
        pseudo_rows: int = 5000,
        c: float = 1.0,
        name: str = "linear",
    ) -> None:
        if pseudo_weight < 0 or pseudo_rows < 0 or c <= 0:
            raise InvalidArgumentError("pseudo_weight and pseudo_rows must be >= 0 and c > 0")
        self.name = name
        self.seed = seed
        self.pseudo_weight = pseudo_weight
        self.pseudo_rows = pseudo_rows
        self.c = c
        self.training: TrainingSet | None = None
        self.first: LinearScorer | None = None
        self.final: LinearScorer | None = None  # the refitted model, once `accept` ran

    def fit(self, training: TrainingSet) -> SelfTrainedLinear:
        """The first fit, on the labels alone (the refit happens in :meth:`apply`)."""
        if training.positives == 0 or training.positives == len(training):
            raise InvalidArgumentError("the linear model needs at least one positive and one negative")
        self.training = training
        self.first = fit_logistic(training.codes, training.labels, training.weights, c=self.c)
        self.final = None
        return self

    @staticmethod
    def _accept(model: LinearScorer, codes: NDArray[np.uint8]) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Rows the model accepts (decision > 0), ascending, with their decision values: one
        native SIMD pass over the codes (``_core.linear_accept``)."""
        from clipbranches import _core

        weights, bias = model.on_codes()
        rows, scores = _core.linear_accept(codes, weights, bias, 0.0)
        return rows.astype(np.int64), scores.astype(np.float64)

    def score(self, codes: NDArray[np.uint8]) -> NDArray[np.float64]:
        """Decision value of the refitted model (of the first fit before ``accept``)."""
        model = self.final or self.first
        if model is None:
            raise InvalidArgumentError("the linear model is not fitted yet")
        return model.decision(codes)

    def apply(self, catalog: Catalog) -> Ranked:
        """:meth:`accept`, ranked by decision value (then id)."""
        return self.accept(catalog).ranked()

    def accept(self, catalog: Catalog) -> Ranked:
        """Score every item, refit with pseudo-labels, score again; accepted: decision > 0."""
        if self.training is None or self.first is None:
            raise InvalidArgumentError("the linear model is not fitted yet")
        t = self.training
        codes = catalog.codes
        accepted, first_scores = self._accept(self.first, codes)
        self.final = self.first
        if not self.pseudo_rows:  # no refit: the first pass is the answer
            return Ranked(accepted, first_scores, np.zeros(len(accepted), np.uint16))
        rng = np.random.default_rng(self.seed)
        pos = rng.choice(accepted, size=min(len(accepted), self.pseudo_rows), replace=False)
        neg = _sample_outside(rng, len(codes), accepted, self.pseudo_rows)
        model = self.first
        if len(pos) and len(neg):
            model = refit_with_pseudo_labels(
                t, codes[np.sort(pos)], codes[neg], pseudo_weight=self.pseudo_weight, c=self.c
            )
        self.final = model
        rows, scores = self._accept(model, codes)
        return Ranked(rows, scores, np.zeros(len(rows), np.uint16))


def _sample_outside(rng: np.random.Generator, n: int, inside: NDArray[np.int64], size: int) -> NDArray[np.int64]:
    """Up to ``size`` distinct rows of ``0..n`` not in the sorted ``inside``, uniformly, sorted."""
    outside = n - len(inside)
    if outside <= 0 or size <= 0:
        return np.zeros(0, np.int64)
    # Draw ranks among the outside rows, then map rank r to the r-th row not in `inside`: the
    # row is r plus the number of inside rows at or before it (found by a search on inside - i).
    ranks = np.sort(rng.choice(outside, size=min(size, outside), replace=False))
    shifted = inside - np.arange(len(inside))  # inside rows below r push r up by one each
    return (ranks + np.searchsorted(shifted, ranks, side="right")).astype(np.int64)
