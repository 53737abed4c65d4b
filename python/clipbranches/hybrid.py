"""The ``hybrid`` model: a global linear score plus local nearest-positive evidence, cut where
the estimated F1 peaks (no knowledge of how many items match).

Score of an item ``x`` (each term z-scored on a uniform sample of the catalog)::

    s(x) = z(f(x)) - alpha * z(d+(x)) - penalty(x)

- ``f``: a class-balanced logistic regression on the round's training set
  (:mod:`clipbranches.logistic`), the global direction of the class;
- ``d+``: Euclidean distance to the nearest labelled positive, which holds classes made of
  several modes (styles, sub-topics) that one hyperplane cannot;
- ``penalty``: items nearer to a labelled negative than to any positive lose
  ``negative_weight * (d+ - d-) / sd(d+)``: a user's "not this" pushes its neighbourhood down,
  harder with a larger weight.

The cut (``cut="pu"``): the catalog is a mixture of the class (share ``pi``) and the rest, and
the labelled positives are a sample of the class. With scores of the positives from models
that did not see them (k-fold refits of ``f``, distance to the nearest *other* positive), the
share of a uniform catalog sample above a threshold ``t`` over the positives' share above ``t``
bounds ``pi`` from above; its minimum estimates ``pi``. Then the expected F1 of cutting at
``t`` is ``2 pi R(t) / (A(t) + pi)`` (``R``: the positives' share above ``t``, smoothed;
``A``: the sample's), and the model accepts what scores above its argmax.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from clipbranches.exceptions import InvalidArgumentError
from clipbranches.learn import Ranked
from clipbranches.logistic import LinearScorer, fit_logistic

if TYPE_CHECKING:
    from clipbranches.catalog import Catalog
    from clipbranches.training import TrainingSet

__all__ = ["HybridModel"]

#: Catalog rows sampled to z-score the terms and to estimate the shares (a fixed sample).
SAMPLE_ROWS = 4096
#: Folds of the refits that score the positives out of sample.
FOLDS = 5


class HybridModel:
    """See the module docstring.

    Parameters
    ----------
    seed
        Seed of the calibration sample.
    alpha
        Weight of the local term against the linear one (z units).
    cut
        ``"pu"`` (estimated-F1 cut, the default), ``"linear"`` (accept where ``f > 0``),
        ``"quantile:Q"`` (above the ``Q`` quantile of the positives' out-of-sample scores).
    """

    def __init__(self, seed: int = 0, *, alpha: float = 1.0, cut: str = "pu", name: str = "hybrid") -> None:
        if not alpha >= 0:
            raise InvalidArgumentError(f"alpha must be >= 0, got {alpha!r}")
        self.name = name
        self.seed = seed
        self.alpha = alpha
        self.cut = cut
        self.training: TrainingSet | None = None
        self.linear: LinearScorer | None = None
        self._stats: NDArray[np.float64] | None = None  # z-score statistics, set by `accept`

    def fit(self, training: TrainingSet) -> HybridModel:
        if training.positives == 0 or training.positives == len(training):
            raise InvalidArgumentError("the hybrid model needs at least one positive and one negative")
        self.training = training
        self.linear = fit_logistic(training.codes, training.labels, training.weights)
        return self

    # -- scores --------------------------------------------------------------------------------

    def _parts(
        self, codes: NDArray[np.uint8], linear: LinearScorer, exclude_self: bool = False
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Linear decision, distance to the nearest positive and to the nearest labelled
        negative (inf without one) of each row of ``codes``."""
        t = self._training()
        positives = t.codes[t.labels].astype(np.float64)
        negatives = t.codes[~t.labels & t.labelled].astype(np.float64)
        x = codes.astype(np.float64)
        f = linear.decision(codes)
        dp = _min_distance(x, positives, exclude_self)
        dn = _min_distance(x, negatives, False) if len(negatives) else np.full(len(x), np.inf)
        return f, dp, dn

    def _training(self) -> TrainingSet:
        if self.training is None or self.linear is None:
            raise InvalidArgumentError("the hybrid model is not fitted yet")
        return self.training

    def _combine(
        self, f: NDArray[np.float64], dp: NDArray[np.float64], dn: NDArray[np.float64], stats: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        mf, sf, md, sd = stats
        t = self._training()
        weight = float(t.weights[~t.labels & t.labelled].max()) if (~t.labels & t.labelled).any() else 0.0
        penalty = weight * np.maximum(dp - dn, 0.0) / sd
        return (f - mf) / sf - self.alpha * (dp - md) / sd - penalty

    def _calibrate(self, catalog: Catalog) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Scores of a uniform catalog sample, and the z-score statistics."""
        from clipbranches.training import random_pool

        assert self.linear is not None
        rows = np.sort(random_pool(len(catalog), SAMPLE_ROWS))
        f, dp, dn = self._parts(np.asarray(catalog.codes[rows]), self.linear)
        stats = np.array([f.mean(), max(f.std(), 1e-9), dp.mean(), max(dp.std(), 1e-9)])
        return self._combine(f, dp, dn, stats), stats

    def _positive_scores(self, stats: NDArray[np.float64]) -> NDArray[np.float64]:
        """Out-of-sample scores of the labelled positives: k-fold refits for the linear term,
        the nearest other positive for the distance."""
        t = self._training()
        assert self.linear is not None
        pos_rows = np.flatnonzero(t.labels)
        p = len(pos_rows)
        f = np.empty(p)
        if p < 2:
            f[:] = self.linear.decision(t.codes[pos_rows])
        else:
            folds = np.arange(p) % min(FOLDS, p)
            for k in np.unique(folds):
                held = pos_rows[folds == k]
                keep = np.ones(len(t), bool)
                keep[held] = False
                model = fit_logistic(t.codes[keep], t.labels[keep], t.weights[keep])
                f[folds == k] = model.decision(t.codes[held])
        _, dp, dn = self._parts(t.codes[pos_rows], self.linear, exclude_self=True)
        if p < 2:
            dp[:] = 0.0
        return self._combine(f, dp, dn, stats)

    def scores(self, catalog: Catalog) -> NDArray[np.float64]:
        """The score of every catalog row (ranking beyond the cut, for evaluation)."""
        assert self.linear is not None
        _, stats = self._calibrate(catalog)
        return self._combine(*self._parts(np.asarray(catalog.codes), self.linear), stats)

    def threshold(self, catalog: Catalog) -> float:
        """The score above which the model accepts."""
        sample, stats = self._calibrate(catalog)
        positives = self._positive_scores(stats)
        return choose_threshold(self.cut, sample, positives, stats)

    # -- the model interface ---------------------------------------------------------------

    def accept(self, catalog: Catalog) -> Ranked:
        assert self.linear is not None
        sample, stats = self._calibrate(catalog)
        cut = choose_threshold(self.cut, sample, self._positive_scores(stats), stats)
        self._stats = stats
        s = self._combine(*self._parts(np.asarray(catalog.codes), self.linear), stats)
        rows = np.flatnonzero(s > cut)
        return Ranked(rows.astype(np.int64), s[rows], np.zeros(len(rows), np.uint16))

    def apply(self, catalog: Catalog) -> Ranked:
        return self.accept(catalog).ranked()

    def score(self, codes: NDArray[np.uint8]) -> NDArray[np.float64]:
        """The score of each row of ``codes`` (after :meth:`accept`, which calibrates it)."""
        if self._stats is None or self.linear is None:
            raise InvalidArgumentError("the hybrid model scores rows only after it was applied to a catalog")
        return self._combine(*self._parts(np.asarray(codes), self.linear), self._stats)


def choose_threshold(
    rule: str, sample: NDArray[np.float64], positives: NDArray[np.float64], stats: NDArray[np.float64]
) -> float:
    """The cut of a rule (see :class:`HybridModel`)."""
    if rule == "linear":
        raise InvalidArgumentError("cut 'linear' is applied on the linear term")
    if rule.startswith("quantile:"):
        return float(np.quantile(positives, float(rule.split(":", 1)[1])))
    if rule == "pu":
        return pu_threshold(sample, positives)
    raise InvalidArgumentError(f"unknown cut rule {rule!r}")


def pu_threshold(sample: NDArray[np.float64], positives: NDArray[np.float64]) -> float:
    """The threshold of largest estimated F1 (module docstring)."""
    from math import erf, sqrt

    p = len(positives)
    spread = max(float(positives.std()), 0.25 * float(sample.std()), 1e-6)
    h = 1.06 * spread * p ** (-0.2)  # Silverman's bandwidth
    grid = np.unique(np.concatenate([sample, positives]))
    sample_sorted = np.sort(sample)
    above = 1.0 - np.searchsorted(sample_sorted, grid, side="right") / len(sample)  # A(t): share > t
    z = (positives[None, :] - grid[:, None]) / (h * sqrt(2.0))
    recall = 0.5 * (1.0 + np.vectorize(erf)(z)).mean(axis=1)  # R(t), smoothed
    ratio = np.where(recall > 0.05, above / np.maximum(recall, 1e-12), np.inf)
    pi = float(np.clip(ratio.min(), 1.0 / len(sample), 1.0))
    f1 = 2.0 * pi * recall / (above + pi)
    return float(grid[int(np.argmax(f1))])


def _min_distance(x: NDArray[np.float64], refs: NDArray[np.float64], exclude_self: bool) -> NDArray[np.float64]:
    """Euclidean distance of each row of ``x`` to its nearest row of ``refs`` (skipping the
    row at the same index when ``exclude_self``: ``x`` is ``refs``)."""
    d2 = (x * x).sum(1)[:, None] - 2.0 * x @ refs.T + (refs * refs).sum(1)[None, :]
    if exclude_self:
        np.fill_diagonal(d2, np.inf)
    return np.sqrt(np.maximum(d2.min(axis=1), 0.0))
