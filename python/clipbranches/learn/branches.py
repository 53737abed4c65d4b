"""Box-model learners with a scikit-learn-like API: decision branches, single and ensemble.

Both fit on uint8 codes (the catalog's), train in Rust (the ensemble's members in parallel, the
interpreter released) and keep the fitted boxes natively (``box_set_``, a
:class:`~clipbranches.store.boxes.BoxSet`), which the query engine applies to a whole catalog
in one native call (:meth:`apply`); ``boxes_`` is the same boxes as :class:`Box` objects, built
on first use (for rules and display). ``predict`` / ``score_samples`` run the fused scan over
the rows given, for small inputs and tests.

Scores: a branch model scores an item by the number of its boxes containing it (accepted when
> 0); an ensemble by the fraction of its members whose union contains it (accepted when > 0.5),
ties ranked by the number of boxes containing it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal, TypedDict

import numpy as np
from numpy.typing import ArrayLike, NDArray

from clipbranches import _core
from clipbranches.exceptions import DimensionMismatchError, InvalidArgumentError
from clipbranches.learn.ranking import NOTHING, Ranked
from clipbranches.store.boxes import Box, BoxHits, BoxSet, boxes_of

if TYPE_CHECKING:
    from clipbranches.store.catalog import Catalog

__all__ = ["DEFAULT_MIN_PTS", "KEEP_POSITIVES_UP_TO", "BranchEnsemble", "DecisionBranch", "original_subsets"]

#: Values tried per box side by default (the quality report: better than the original's
#: min(50, 1.5 x positives) at 2-32 positives, equal at 1 and 64; `quality.py --variants`).
DEFAULT_MIN_PTS = 50
#: Up to this many positives, an ensemble's members keep every positive (`benchmarks/quality.py --variants`:
#: F1 0.053 vs 0.000 at 4 positives, 0.615 vs 0.606 at 32, but 0.659 vs 0.696 at 64).
KEEP_POSITIVES_UP_TO = 32


def original_subsets(dim: int = 32, seed: int = 0) -> list[tuple[int, ...]]:
    """The original CLIP-Branches feature subsets for ``dim`` dims: 64 of 4, 32 of 6, 8 of 8."""
    return [tuple(s) for s in _core.original_subsets(dim, seed)]


class _Options(TypedDict):
    max_boxes: int
    min_pts: int | None
    max_evals: float
    open_sides: bool
    max_failures: int
    seed: int


class _BranchLearner:
    """What both learners share: parameters, validation, boxes, scoring by the fused scan.

    Attributes
    ----------
    box_set_ : BoxSet or None
        The fitted boxes, held natively (None before :meth:`fit`).
    """

    def __init__(
        self,
        *,
        max_boxes: int,
        min_pts: int | None,
        max_evals: float,
        open_sides: bool,
        max_failures: int,
        subsets: Sequence[Sequence[int]] | None,
        seed: int,
    ) -> None:
        self.max_boxes = max_boxes
        self.min_pts = min_pts
        self.max_evals = max_evals
        self.open_sides = open_sides
        self.max_failures = max_failures
        self.subsets = subsets
        self.seed = seed
        self.box_set_: BoxSet | None = None
        self._boxes: list[Box] | None = None
        self.n_features_in_: int | None = None

    @property
    def boxes_(self) -> list[Box]:
        """The fitted boxes as :class:`Box` objects, in the order found (an ensemble's member
        after member, group = member); built from :attr:`box_set_` on first use. Empty before
        :meth:`fit`."""
        if self._boxes is None:
            self._boxes = [] if self.box_set_ is None else boxes_of(self.box_set_)
        return self._boxes

    def _fit_args(
        self, x: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None
    ) -> tuple[NDArray[np.uint8], NDArray[np.bool_], NDArray[np.float64], list[list[int]]]:
        codes = _codes(x)
        labels = np.asarray(y)
        if labels.ndim != 1 or len(labels) != len(codes):
            raise DimensionMismatchError(f"y has shape {labels.shape}; expected ({len(codes)},) for X of {codes.shape}")
        if labels.dtype != np.bool_:
            if not np.isin(labels, (0, 1)).all():
                raise InvalidArgumentError("y must be boolean or 0/1 labels")
            labels = labels.astype(bool)
        weights = np.ones(len(codes)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        if weights.shape != (len(codes),):
            raise DimensionMismatchError(f"sample_weight has shape {weights.shape}; expected ({len(codes)},)")
        dim = codes.shape[1]
        if self.subsets is None:
            subsets = [list(s) for s in _core.original_subsets(dim, 0)]
        else:
            subsets = [[int(d) for d in s] for s in self.subsets]
        for name, value in (("max_boxes", self.max_boxes), ("max_failures", self.max_failures), ("seed", self.seed)):
            if not isinstance(value, (int, np.integer)) or value < 0:
                raise InvalidArgumentError(f"{name} must be a non-negative integer, got {value!r}")
        self.n_features_in_ = dim
        return codes, np.ascontiguousarray(labels), np.ascontiguousarray(weights), subsets

    def _options(self) -> _Options:
        return {
            "max_boxes": int(self.max_boxes),
            "min_pts": None if self.min_pts is None else int(self.min_pts),
            "max_evals": float(self.max_evals),
            "open_sides": bool(self.open_sides),
            "max_failures": int(self.max_failures),
            "seed": int(self.seed),
        }

    def _set_boxes(self, box_set: BoxSet) -> None:
        self.box_set_ = box_set
        self._boxes = None

    def _queryable(self) -> BoxSet | None:
        """The fitted boxes, or None where there are none (fitted, but no box found)."""
        return self.box_set_ if self.box_set_ is not None and len(self.box_set_) else None

    def _check_fitted(self, dim: int, what: str) -> None:
        """Refuse an unfitted model, or data of another width than the model was fitted on."""
        if self.n_features_in_ is None:
            raise InvalidArgumentError(f"this {type(self).__name__} is not fitted yet: call fit(X, y) first")
        if dim != self.n_features_in_:
            raise DimensionMismatchError(f"{what} has {dim} dims; the model was fitted on {self.n_features_in_}")

    def _accepted_hits(self, catalog: Catalog) -> BoxHits | None:
        """The catalog's items inside any box (None when the fitted model has no box)."""
        self._check_fitted(catalog.dim, "the catalog")
        box_set = self._queryable()
        return None if box_set is None else catalog.query_boxes(box_set)

    def _counts(self, x: ArrayLike) -> tuple[NDArray[np.int64], NDArray[np.uint16], NDArray[np.uint16]]:
        if self.n_features_in_ is None:
            raise InvalidArgumentError(f"this {type(self).__name__} is not fitted yet: call fit(X, y) first")
        codes = _codes(x)
        if codes.shape[1] != self.n_features_in_:
            raise DimensionMismatchError(f"X has {codes.shape[1]} dims; the model was fitted on {self.n_features_in_}")
        box_set = self._queryable()
        if box_set is None:
            empty = np.zeros(0, np.uint16)
            return np.zeros(0, np.int64), empty, empty
        rows, box_counts, group_counts = _core.scan_boxes(codes, box_set)
        return rows.astype(np.int64), box_counts, group_counts


class DecisionBranch(_BranchLearner):
    """One decision-branch model: a union of at most ``max_boxes`` boxes, each on one subset.

    Parameters
    ----------
    max_boxes
        Most boxes (default 30).
    min_pts
        Values tried per box side (default 50); ``None``: the original's
        ``min(50, 1.5 x number of positives)``, which measured worse at few positives.
    max_evals
        Fraction of the subsets tried per box (1.0: all).
    open_sides
        Sides with nothing beyond them stay open (0 / 255); ``False`` stops one step past the
        furthest value taken (the original's ``stop_infinite``).
    max_failures
        Consecutive seeds without a valid box after which training stops.
    subsets
        Feature subsets a box may use; default :func:`original_subsets` of the data's width.
    seed
        Seed of every random choice; the same seed gives the same model.
    """

    def __init__(
        self,
        *,
        max_boxes: int = 30,
        min_pts: int | None = DEFAULT_MIN_PTS,
        max_evals: float = 1.0,
        open_sides: bool = True,
        max_failures: int = 5,
        subsets: Sequence[Sequence[int]] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(
            max_boxes=max_boxes,
            min_pts=min_pts,
            max_evals=max_evals,
            open_sides=open_sides,
            max_failures=max_failures,
            subsets=subsets,
            seed=seed,
        )

    def fit(self, x: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> DecisionBranch:
        """Fit on uint8 codes ``x`` ``(n, dim)`` and labels ``y`` (bool or 0/1)."""
        codes, labels, weights, subsets = self._fit_args(x, y, sample_weight)
        self._set_boxes(_core.fit_branch(codes, labels, weights, subsets, **self._options()))
        return self

    def score_samples(self, x: ArrayLike) -> NDArray[np.float64]:
        """Number of boxes containing each row."""
        rows, box_counts, _ = self._counts(x)
        scores = np.zeros(len(_codes(x)))
        scores[rows] = box_counts
        return scores

    def predict(self, x: ArrayLike) -> NDArray[np.bool_]:
        """Whether some box contains each row."""
        return self.score_samples(x) > 0

    def accept(self, catalog: Catalog) -> Ranked:
        """Every catalog item some box contains, scored by box count (unranked)."""
        hits = self._accepted_hits(catalog)
        if hits is None:
            return NOTHING
        return Ranked(hits.rows.astype(np.int64), hits.box_counts.astype(np.float64), hits.box_counts)

    def apply(self, catalog: Catalog) -> Ranked:
        """:meth:`accept`, ranked by box count (then id)."""
        return self.accept(catalog).ranked()


class BranchEnsemble(_BranchLearner):
    """Decision branches on ``n_members`` bootstrap samples, trained in parallel.

    An item's score is the fraction of members whose union contains it; accepted above
    ``threshold`` (0.5). Members try ``max_evals`` (half) of the subsets per box. With
    ``keep_positives`` every member keeps every positive and only the negatives are
    bootstrapped; ``"auto"`` (default) does so up to :data:`KEEP_POSITIVES_UP_TO` positives,
    where it measured better. Other parameters as :class:`DecisionBranch`.
    """

    def __init__(
        self,
        *,
        n_members: int = 25,
        threshold: float = 0.5,
        keep_positives: bool | Literal["auto"] = "auto",
        max_boxes: int = 30,
        min_pts: int | None = DEFAULT_MIN_PTS,
        max_evals: float = 0.5,
        open_sides: bool = True,
        max_failures: int = 5,
        subsets: Sequence[Sequence[int]] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(
            max_boxes=max_boxes,
            min_pts=min_pts,
            max_evals=max_evals,
            open_sides=open_sides,
            max_failures=max_failures,
            subsets=subsets,
            seed=seed,
        )
        self.n_members = n_members
        self.threshold = threshold
        self.keep_positives = keep_positives

    def fit(self, x: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> BranchEnsemble:
        """Fit on uint8 codes ``x`` ``(n, dim)`` and labels ``y`` (bool or 0/1)."""
        codes, labels, weights, subsets = self._fit_args(x, y, sample_weight)
        if not isinstance(self.n_members, (int, np.integer)) or not 1 <= self.n_members <= 65535:
            raise InvalidArgumentError(f"n_members must be in 1..65535, got {self.n_members!r}")
        self._set_boxes(
            _core.fit_ensemble(
                codes,
                labels,
                weights,
                subsets,
                members=int(self.n_members),
                keep_positives=self._keeps_positives(labels),
                **self._options(),
            )
        )
        return self

    def _keeps_positives(self, labels: NDArray[np.bool_]) -> bool:
        if self.keep_positives == "auto":
            return int(labels.sum()) <= KEEP_POSITIVES_UP_TO
        if not isinstance(self.keep_positives, bool):
            raise InvalidArgumentError(f"keep_positives must be True, False or 'auto', got {self.keep_positives!r}")
        return self.keep_positives

    def score_samples(self, x: ArrayLike) -> NDArray[np.float64]:
        """Fraction of members whose union contains each row."""
        rows, _, group_counts = self._counts(x)
        scores = np.zeros(len(_codes(x)))
        scores[rows] = group_counts / self.n_members
        return scores

    def predict(self, x: ArrayLike) -> NDArray[np.bool_]:
        """Whether each row's score exceeds the threshold."""
        return self.score_samples(x) > self.threshold

    def accept(self, catalog: Catalog) -> Ranked:
        """Every catalog item scoring above the threshold (unranked)."""
        hits = self._accepted_hits(catalog)
        if hits is None:
            return NOTHING
        scores = hits.group_counts / self.n_members
        keep = scores > self.threshold
        return Ranked(hits.rows[keep].astype(np.int64), scores[keep], hits.box_counts[keep])

    def apply(self, catalog: Catalog) -> Ranked:
        """:meth:`accept`, ranked by score, then box count, then id."""
        return self.accept(catalog).ranked()


def _codes(x: ArrayLike) -> NDArray[np.uint8]:
    codes = np.asarray(x)
    if codes.dtype != np.uint8:
        raise InvalidArgumentError(f"X must be uint8 codes (quantize first), got {codes.dtype}")
    if codes.ndim != 2 or codes.shape[0] == 0 or codes.shape[1] == 0:
        raise DimensionMismatchError(f"X must be a non-empty (n, dim) array, got shape {codes.shape}")
    return np.ascontiguousarray(codes)
