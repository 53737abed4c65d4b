"""The ``hybrid`` model: a global linear score plus local nearest-positive evidence, cut at an
estimate of how many catalog items belong to the class (no one tells it the true number).

Score of an item ``x``, each term z-scored on a fixed uniform sample of the catalog::

    s(x) = z(f(x)) - alpha * z(d+(x)) - w- * max(0, d+(x) - d-(x)) / sd(d+)

- ``f``: a class-balanced logistic regression on the round's training set
  (:mod:`clipbranches.learn.logistic`), the global direction of the class;
- ``d+``: Euclidean distance to the nearest labelled positive, which holds classes made of
  several modes (styles, sub-topics) that one hyperplane cannot (`benchmarks/quality.py`:
  OpenClipArt's categories);
- the last term: items nearer to a labelled negative (``d-``) than to every positive lose ground
  in proportion to the negatives' weight ``w-`` (``negative_weight``): a user's "not this" pushes
  its neighbourhood down, harder with a larger weight.

The cut. The catalog holds an unknown share ``pi`` of the class, and the best F1 comes from
accepting about that share. Two estimates, both from the catalog sample:

- *held-out ranks*: k-fold refits (``FOLDS``) score the positives they did not see, and each
  held-out positive's rank among the sample (the share of the sample above it) is one draw of
  where a class member lands; with recall ``R`` reached at share ``q``, precision
  ``pi R / q <= 1`` bounds ``pi <= q / R``, and the tightest bound over the ranks with
  ``R >= 1/4`` is the estimate (noisy with few positives; the best cut from p=16 on);
- *the linear share*: the share of the sample that a self-trained linear model accepts (the
  ``linear`` model's recipe, run on the sample): steady, and close to the truth for classes one
  hyperplane separates (Fashion-MNIST, digits), but off for classes of several modes.

They are blended in log space with weight ``p / (p + s)`` on the first, so a round with few
positives leans on the steady estimate and one with many on the held-out one. ``s`` depends on
the class: when the distance term ranks the held-out positives clearly higher than the linear
term alone (the class has several modes) the linear share is off and ``s`` is small
(``SHRINK_POSITIVES``); otherwise the linear share is the better estimate and ``s`` is large
(``LINEAR_SHRINK_POSITIVES``). The model accepts the items scoring above the sample's ``1 - pi``
quantile.

Speed: everything but the final pass works on the 4,096-row sample (fits of 33 parameters,
five k-fold refits). The pass over the catalog is native (``_core.Hybrid``,
``rust/index/src/hybrid.rs``): the linear score and the distances to every labelled code as
exact f32 dot products over blocks of rows, through the block index when the catalog has one
(its per-block bounds skip blocks that cannot pass).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from clipbranches import _core
from clipbranches.exceptions import InvalidArgumentError
from clipbranches.learn.logistic import LinearScorer, fit_logistic
from clipbranches.learn.ranking import Ranked
from clipbranches.learn.selftrain import refit_with_pseudo_labels

if TYPE_CHECKING:
    from clipbranches.learn.training import TrainingSet
    from clipbranches.store.catalog import Catalog

__all__ = ["HybridModel"]

#: Catalog rows sampled to z-score the terms and to estimate the class's share.
SAMPLE_ROWS = 4096
#: Folds of the refits that score the positives out of sample.
FOLDS = 5
#: Held-out ranks used by the share bound: those reaching at least this recall.
MIN_RECALL = 0.25
#: Positives at which the two share estimates weigh the same, for a class of several modes
#: (chosen on OpenClipArt, `benchmarks/quality.py --variants`: mean F1 over p=4..64 of 0.4726
#: with 4, 0.4734 with 8, 0.4706 with 16).
SHRINK_POSITIVES = 8.0
#: The same for a class the linear term ranks as well as the hybrid score does: the linear
#: share is then the steadier estimate (chosen on OpenClipArt: mean F1 over p=4..64 of 0.4722
#: with 32, 0.4734 with 128).
LINEAR_SHRINK_POSITIVES = 128.0
#: A class "has several modes" when the median held-out rank by the linear term alone is this
#: many times the one by the hybrid score (chosen on OpenClipArt: mean F1 over p=4..64 of
#: 0.4734 with 1.2, 0.4616 with 1.5, 0.4696 with 0, i.e. always the small shrink).
MODES_GAIN = 1.2


@dataclass(frozen=True)
class _Terms:
    """One fitted scorer: the linear model, the labelled codes and the z-score statistics."""

    linear: LinearScorer
    positives: NDArray[np.uint8]
    negatives: NDArray[np.uint8]
    negative_weight: float
    alpha: float
    stats: tuple[float, float, float, float] = (0.0, 1.0, 0.0, 1.0)

    def native(self) -> _core.Hybrid:
        """The native scan of this scorer."""
        weights, bias = self.linear.on_codes()
        negatives = self.negatives if len(self.negatives) else np.zeros((0, self.positives.shape[1]), np.uint8)
        return _core.Hybrid(weights, bias, self.positives, negatives, self.stats, self.alpha, self.negative_weight)

    def raw(self, codes: NDArray[np.uint8]) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Linear decision, distance to the nearest positive, to the nearest negative (inf
        without negatives), of each row of ``codes``."""
        f, dp, dn = self.native().terms(np.ascontiguousarray(codes))
        return f.astype(np.float64), dp.astype(np.float64), dn.astype(np.float64)

    def calibrated(self, sample: NDArray[np.uint8]) -> tuple[_Terms, NDArray[np.float64]]:
        """This scorer z-scored on ``sample``, and the sample's scores (one pass over it)."""
        f, dp, dn = self.raw(sample)
        stats = (float(f.mean()), max(float(f.std()), 1e-6), float(dp.mean()), max(float(dp.std()), 1e-6))
        terms = _Terms(self.linear, self.positives, self.negatives, self.negative_weight, self.alpha, stats)
        return terms, terms.combine(f, dp, dn)

    def combine(self, f: NDArray[np.float64], dp: NDArray[np.float64], dn: NDArray[np.float64]) -> NDArray[np.float64]:
        """The score from raw terms (the native scan computes the same in float32)."""
        mf, sf, md, sd = self.stats
        penalty = np.where(np.isfinite(dn), self.negative_weight * np.maximum(dp - dn, 0.0) / sd, 0.0)
        return (f - mf) / sf - self.alpha * (dp - md) / sd - penalty

    def score(self, codes: NDArray[np.uint8]) -> NDArray[np.float64]:
        return self.combine(*self.raw(codes))


class HybridModel:
    """See the module docstring.

    Parameters
    ----------
    seed
        Unused (the model is deterministic); kept for the registry's signature.
    alpha
        Weight of the distance term against the linear one (z units).
    shrink, linear_shrink, modes_gain
        :data:`SHRINK_POSITIVES`, :data:`LINEAR_SHRINK_POSITIVES`, :data:`MODES_GAIN`.
    self_train
        Whether the linear share estimate comes from a self-trained refit (else the first fit).
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        alpha: float = 1.0,
        shrink: float = SHRINK_POSITIVES,
        linear_shrink: float = LINEAR_SHRINK_POSITIVES,
        modes_gain: float = MODES_GAIN,
        self_train: bool = True,
        name: str = "hybrid",
    ) -> None:
        if not (alpha >= 0 and shrink >= 0 and linear_shrink >= 0 and modes_gain >= 0):
            raise InvalidArgumentError(
                f"alpha, shrink, linear_shrink and modes_gain must be >= 0, got {alpha!r}, {shrink!r}, "
                f"{linear_shrink!r}, {modes_gain!r}"
            )
        self.linear_shrink = linear_shrink
        self.modes_gain = modes_gain
        self.name = name
        self.self_train = self_train
        self.seed = seed
        self.alpha = alpha
        self.shrink = shrink
        self.training: TrainingSet | None = None
        self._terms: _Terms | None = None  # calibrated on the catalog by `accept`
        self.share_: float | None = None  # the estimated share of the class, after `accept`

    def fit(self, training: TrainingSet) -> HybridModel:
        if training.positives == 0 or training.positives == len(training):
            raise InvalidArgumentError("the hybrid model needs at least one positive and one negative")
        self.training = training
        self._terms = None
        return self

    def _fitted(self, keep: NDArray[np.bool_] | None = None) -> _Terms:
        """The scorer fitted on the training rows in ``keep`` (all by default)."""
        t = self.training
        if t is None:
            raise InvalidArgumentError("the hybrid model is not fitted yet")
        keep = np.ones(len(t), bool) if keep is None else keep
        codes, labels, weights = t.codes[keep], t.labels[keep], t.weights[keep]
        user_negative = ~labels & t.labelled[keep]
        return _Terms(
            linear=fit_logistic(codes, labels, weights),
            positives=codes[labels],
            negatives=codes[user_negative],
            negative_weight=float(weights[user_negative].max()) if user_negative.any() else 0.0,
            alpha=self.alpha,
        )

    def _held_out_ranks(self, sample: NDArray[np.uint8]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """For each positive, the share of the sample that a model fitted without it scores
        above it (k-fold): by the hybrid score and by its linear term alone, each ascending."""
        t = self.training
        assert t is not None
        rows = np.flatnonzero(t.labels)
        folds = np.arange(len(rows)) % min(FOLDS, len(rows))
        ranks, linear_ranks = np.empty(len(rows)), np.empty(len(rows))

        def share_above(sample_scores: NDArray[np.float64], held: NDArray[np.float64]) -> NDArray[np.float64]:
            return 1.0 - np.searchsorted(np.sort(sample_scores), held, side="right") / len(sample)

        for k in np.unique(folds):
            keep = np.ones(len(t), bool)
            keep[rows[folds == k]] = False
            terms, sample_scores = self._fitted(keep).calibrated(sample)
            held = t.codes[rows[folds == k]]
            ranks[folds == k] = share_above(sample_scores, terms.score(held))
            linear_ranks[folds == k] = share_above(terms.linear.decision(sample), terms.linear.decision(held))
        return np.sort(ranks), np.sort(linear_ranks)

    def estimate_share(self, sample: NDArray[np.uint8], terms: _Terms) -> float:
        """The estimated share of the class in the catalog (module docstring)."""
        floor = 1.0 / len(sample)
        linear_share = max(self._self_trained_share(sample, terms.linear), floor)
        p = len(terms.positives)
        if p < 2:
            return linear_share
        ranks, linear_ranks = self._held_out_ranks(sample)
        recall = np.arange(1, p + 1) / p
        usable = recall >= MIN_RECALL
        held_out_share = max(float((ranks[usable] / recall[usable]).min()), floor)
        # Several modes: the distance term ranks held-out positives clearly higher than the
        # linear term alone does, and the linear share is then the one to distrust.
        gain = float(np.median(linear_ranks)) / max(float(np.median(ranks)), floor)
        shrink = self.shrink if gain > self.modes_gain else self.linear_shrink
        w = p / (p + shrink)
        return float(np.exp(w * np.log(held_out_share) + (1.0 - w) * np.log(linear_share)))

    def _self_trained_share(self, sample: NDArray[np.uint8], linear: LinearScorer) -> float:
        """The share of the sample a self-trained linear model accepts: the balanced logistic
        regression refitted once with the sample rows it accepts as light pseudo-positives and
        the rest as pseudo-negatives (the ``linear`` model's recipe, on the sample instead of
        the whole catalog). Its accepted share tracks the class size better than the first
        fit's at few positives (`benchmarks/quality.py --variants`, ``hybrid_plain_linear_share``)."""
        t = self.training
        assert t is not None
        accepted = linear.decision(sample) > 0
        if not self.self_train or not accepted.any() or accepted.all():
            return float(accepted.mean())
        # Pseudo-negatives weigh what the round's random negatives do (500 by default).
        negatives_weight = float(t.weights[~t.labelled].sum()) or 500.0
        refit = refit_with_pseudo_labels(t, sample[accepted], sample[~accepted], negatives_weight=negatives_weight)
        return float((refit.decision(sample) > 0).mean())

    def _calibrate(self, catalog: Catalog) -> tuple[_Terms, float]:
        """The calibrated scorer and the score threshold of this catalog."""
        from clipbranches.learn.training import random_pool

        sample = np.asarray(catalog.codes[np.sort(random_pool(len(catalog), SAMPLE_ROWS))])
        terms, scores = self._fitted().calibrated(sample)
        share = self.estimate_share(sample, terms)
        self.share_ = share
        threshold = float(np.quantile(scores, 1.0 - share))
        return terms, threshold

    # -- the model interface ---------------------------------------------------------------

    def scores(self, catalog: Catalog) -> NDArray[np.float64]:
        """The score of every catalog row (the ranking beyond the cut, for evaluation)."""
        terms, _ = self._calibrate(catalog)
        return terms.score(np.asarray(catalog.codes))

    def accept(self, catalog: Catalog) -> Ranked:
        """Every catalog row scoring above the threshold: one native pass over the codes, or
        over the catalog's block index when it has one (which skips the blocks that cannot
        pass, by their bounds)."""
        terms, threshold = self._calibrate(catalog)
        self._terms = terms
        native = terms.native()
        if catalog.has_index:
            rows, scores = native.accept_indexed(catalog.index._core, threshold)
        else:
            rows, scores = native.accept(catalog.codes, threshold)
        return Ranked(rows.astype(np.int64), scores.astype(np.float64), np.zeros(len(rows), np.uint16))

    def apply(self, catalog: Catalog) -> Ranked:
        return self.accept(catalog).ranked()

    def score(self, codes: NDArray[np.uint8]) -> NDArray[np.float64]:
        """The score of each row of ``codes`` (after :meth:`accept`, which calibrates it)."""
        if self._terms is None:
            raise InvalidArgumentError("the hybrid model scores rows only after it was applied to a catalog")
        return self._terms.score(np.asarray(codes))
