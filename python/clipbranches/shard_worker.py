"""What one shard of a catalog set does for a round: apply a fitted model and keep its answer.

:class:`ShardWorker` is everything the driver (:class:`~clipbranches.sharded.ShardedEngine`)
asks of one shard; its methods take and return small picklable values, so a Ray actor runs the
very same class (:mod:`clipbranches.cluster`). What a shard needs to apply a model is a small
picklable :class:`ShardScorer` (one per kind of model), and what it returns first is a
:class:`ShardPage`: its accepted count and its best first page.
"""

from __future__ import annotations

import copy
import os
import threading
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from clipbranches import _core
from clipbranches.learn.hybrid import _Terms
from clipbranches.learn.logistic import LinearScorer
from clipbranches.learn.ranking import Ranked
from clipbranches.learn.registry import BoxModel, Model
from clipbranches.store.catalog import Catalog

__all__ = [
    "BoxScan",
    "HybridScan",
    "LinearScan",
    "ModelScan",
    "ShardPage",
    "ShardScorer",
    "ShardWorker",
    "apply_to_shard",
]


# -- the per-shard unit of work ------------------------------------------------------------


class ShardScorer(Protocol):
    """A fitted model as one shard applies it: every accepted row of ``catalog`` (local rows,
    any order) with its score and box count. Small and picklable (boxes or weights)."""

    def accept(self, catalog: Catalog) -> Ranked: ...


@dataclass(frozen=True)
class ModelScan:
    """A registry model whose ``accept`` depends on each item's code alone (``tree``,
    ``forest``): applied to a shard as to a catalog."""

    model: Model

    def accept(self, catalog: Catalog) -> Ranked:
        return self.model.accept(catalog)


class BoxScan:
    """A box model (``branch``, ``ensemble``) as a shard applies it. Its native box set does not
    pickle: it travels as the set's arrays and is rebuilt where the shard is."""

    def __init__(self, model: BoxModel) -> None:
        self.model = model

    def accept(self, catalog: Catalog) -> Ranked:
        return self.model.accept(catalog)

    def __getstate__(self) -> dict[str, Any]:
        learner = copy.copy(self.model.learner)
        box_set = learner.box_set_
        learner.box_set_, learner._boxes = None, None  # restored from the arrays on arrival
        boxes = None if box_set is None else (box_set.arrays(), box_set.dim)
        return {"name": self.model.name, "learner": learner, "boxes": boxes}

    def __setstate__(self, state: dict[str, Any]) -> None:
        learner = state["learner"]
        if state["boxes"] is not None:
            (offsets, dims, lo, hi, groups), dim = state["boxes"]
            learner._set_boxes(_core.BoxSet.from_arrays(offsets, dims, lo, hi, groups, dim=dim))
        self.model = BoxModel(state["name"], learner)


@dataclass(frozen=True)
class LinearScan:
    """A linear decision (``logreg``, ``linear``): the rows with decision > 0, by the native scan."""

    scorer: LinearScorer

    def accept(self, catalog: Catalog) -> Ranked:
        weights, bias = self.scorer.on_codes()
        rows, scores = _core.linear_accept(catalog.codes, weights, bias, 0.0)
        return Ranked(rows.astype(np.int64), scores.astype(np.float64), np.zeros(len(rows), np.uint16))


@dataclass(frozen=True)
class HybridScan:
    """The ``hybrid`` model calibrated on the whole set (on the driver): the rows scoring above
    ``threshold``, by the native scan (through the shard's index when it has one)."""

    terms: _Terms
    threshold: float

    def accept(self, catalog: Catalog) -> Ranked:
        native = self.terms.native()
        if catalog.has_index:
            rows, scores = native.accept_indexed(catalog.index._core, self.threshold)
        else:
            rows, scores = native.accept(catalog.codes, self.threshold)
        return Ranked(rows.astype(np.int64), scores.astype(np.float64), np.zeros(len(rows), np.uint16))


@dataclass(frozen=True)
class ShardPage:
    """What one shard answers a round: how many items it accepted (labelled items left out) and
    its best ``page`` of them (local rows, ranked)."""

    count: int
    page: Ranked


def apply_to_shard(
    catalog: Catalog, scorer: ShardScorer, labelled: NDArray[np.int64], first_page: int
) -> tuple[Ranked, ShardPage]:
    """Apply a fitted model to one shard: its accepted items without the ``labelled`` local
    rows (unranked), and its count with its best ``first_page`` items."""
    accepted = scorer.accept(catalog)
    keep = ~np.isin(accepted.rows, labelled)
    rest = Ranked(accepted.rows[keep], accepted.scores[keep], accepted.box_counts[keep])
    return rest, ShardPage(len(rest), rest.top(first_page))


class ShardWorker:
    """Everything the driver asks of one shard (the body of one Ray actor, later). Rows are the
    shard's own; the answers of a round stay here until the driver releases the round.

    Parameters
    ----------
    shard
        The open shard, or its path (opened here: where a worker runs, it maps its shard).
    """

    def __init__(self, shard: Catalog | str | os.PathLike[str]) -> None:
        self.catalog = shard if isinstance(shard, Catalog) else Catalog.open(shard)
        self._rounds: dict[int, Ranked] = {}
        self._ranked: set[int] = set()
        self._first_pass: dict[int, NDArray[np.int64]] = {}
        self._lock = threading.Lock()

    def count(self) -> int:
        return len(self.catalog)

    def codes(self, rows: NDArray[np.int64]) -> NDArray[np.uint8]:
        """The codes of ``rows``, in order."""
        return np.ascontiguousarray(self.catalog.codes[np.asarray(rows, np.int64)])

    def nearest(self, code: NDArray[np.uint8], k: int) -> tuple[NDArray[np.uint32], NDArray[np.int64]]:
        """The shard's exact ``k`` nearest rows to one code (distances, rows), nearest first."""
        if len(self.catalog) == 0:
            return np.zeros(0, np.uint32), np.zeros(0, np.int64)
        distances, rows = self.catalog.nearest(code, k)
        return distances[0], rows[0]

    def first_pass(self, round_id: int, scorer: ShardScorer) -> int:
        """A self-training model's first pass: how many rows it accepts (kept for :meth:`pseudo_codes`)."""
        rows = np.sort(scorer.accept(self.catalog).rows)
        with self._lock:
            self._first_pass[round_id] = rows
        return len(rows)

    def pseudo_codes(
        self, round_id: int, positions: NDArray[np.int64], ranks: NDArray[np.int64]
    ) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
        """The codes of the first pass's accepted rows at ``positions`` (ascending) and of its
        rejected rows at ``ranks`` (ascending), then forgets the first pass."""
        with self._lock:
            inside = self._first_pass.pop(round_id)
        shifted = inside - np.arange(len(inside))  # the r-th rejected row is r plus the accepted rows before it
        outside = np.asarray(ranks, np.int64) + np.searchsorted(shifted, ranks, side="right")
        return self.codes(inside[np.asarray(positions, np.int64)]), self.codes(outside)

    def apply(self, round_id: int, scorer: ShardScorer, labelled: NDArray[np.int64], first_page: int) -> ShardPage:
        """:func:`apply_to_shard`, keeping the accepted items for :meth:`top` and :meth:`ranked`."""
        rest, page = apply_to_shard(self.catalog, scorer, labelled, first_page)
        with self._lock:
            self._rounds[round_id] = rest
        return page

    def top(self, round_id: int, k: int) -> Ranked:
        """The round's best ``k`` items (ranked)."""
        with self._lock:
            hits = self._rounds[round_id]
        return hits.top(k)

    def ranked(self, round_id: int) -> Ranked:
        """All the round's items, ranked (ranked once, then kept ranked)."""
        with self._lock:
            if round_id not in self._ranked:
                self._rounds[round_id] = self._rounds[round_id].ranked()
                self._ranked.add(round_id)
            return self._rounds[round_id]

    def release(self, round_id: int) -> None:
        """Forget a round (its results were dropped)."""
        with self._lock:
            self._rounds.pop(round_id, None)
            self._ranked.discard(round_id)
            self._first_pass.pop(round_id, None)
