"""The answer of a search or a refine round: ranked items, lazily ranked, with paging, export,
the labels honoured and the rules of box models."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from clipbranches.exceptions import InvalidArgumentError
from clipbranches.learn.branches import BranchEnsemble, DecisionBranch
from clipbranches.learn.ranking import NOTHING, Ranked, concat
from clipbranches.learn.registry import BoxModel, Model
from clipbranches.options import DEFAULT_K
from clipbranches.rules import Rules
from clipbranches.store.catalog import Catalog

__all__ = ["FIRST_PAGE", "Results", "honour_labels"]

#: Items a round ranks up front (a first page); the rest are ranked when asked for.
FIRST_PAGE = 100


class Results:
    """Ranked items of one search or refine round.

    Ranking is lazy: a round ranks only what is first shown (:data:`FIRST_PAGE` items, the
    ``rank`` timing), a page ranks down to its end, and the full order is made once, on the
    first use of ``ids``, ``rows``, ``scores`` (or an export). At 100M items an answer can hold
    millions of items, and sorting them all cost as much as finding them.

    Attributes
    ----------
    ids, rows, scores
        Item ids, catalog rows and scores, best first (nearest-neighbour searches score by
        minus the squared distance between codes; models by their own score).
    total
        How many items the round accepted (a page holds fewer).
    offset
        Rank of the first item here (0 unless this is a page).
    timings
        Milliseconds per stage (:data:`STAGES`).
    params
        What produced these results (kind, query or labels, model, seed...): enough to redo it.
    """

    def __init__(
        self,
        hits: Ranked,
        *,
        timings: dict[str, float],
        params: dict[str, Any],
        catalog: Catalog,
        model: Model | None = None,
        ranked: bool = False,
        total: int | None = None,
        offset: int = 0,
        pinned: Ranked | None = None,
        labelled: NDArray[np.int64] | None = None,
    ) -> None:
        # `pinned`: the user's positives, ranked, always first; `hits`: the model's other items.
        self._pinned = pinned if pinned is not None else NOTHING
        self._hits = hits
        self._ranked = ranked
        self._head: Ranked | None = None  # the ranked best items, once a page asked for them
        self._lock = threading.Lock()
        self._labelled = np.sort(self._pinned.rows) if labelled is None else labelled
        self.total = len(self._pinned) + len(hits) if total is None else total
        self.timings = timings
        self.params = params
        self.catalog = catalog
        self.model = model
        self.offset = offset

    def __repr__(self) -> str:
        return f"Results({len(self)} of {self.total} items, offset {self.offset}, {self.params.get('kind')})"

    def __len__(self) -> int:
        return len(self._pinned) + len(self._hits)

    def _full(self) -> Ranked:
        with self._lock:
            if not self._ranked:
                self._hits = self._hits.ranked()
                self._ranked = True
            return concat(self._pinned, self._hits)

    def head(self, k: int) -> Ranked:
        """The best ``k`` items, ranked (without ranking the rest)."""
        pinned = self._pinned
        if k <= len(pinned):
            return Ranked(pinned.rows[:k], pinned.scores[:k], pinned.box_counts[:k])
        rest = k - len(pinned)
        with self._lock:
            if self._ranked:
                best = Ranked(self._hits.rows[:rest], self._hits.scores[:rest], self._hits.box_counts[:rest])
            else:
                if self._head is None or len(self._head) < min(rest, len(self._hits)):
                    self._head = self._hits.top(rest)
                head = self._head
                best = Ranked(head.rows[:rest], head.scores[:rest], head.box_counts[:rest])
        return concat(pinned, best)

    @property
    def labelled(self) -> NDArray[np.bool_]:
        """For each item here (best first): True where the user labelled it positive. A round
        always returns the user's positives, first, and never the user's negatives."""
        return np.isin(self.rows, self._labelled)

    @property
    def rows(self) -> NDArray[np.int64]:
        return self._full().rows

    @property
    def ids(self) -> NDArray[np.int64]:
        return self.catalog.item_ids[self.rows]

    @property
    def scores(self) -> NDArray[np.float64]:
        return self._full().scores

    def page(self, n: int, size: int = DEFAULT_K) -> Results:
        """Page ``n`` (0-based) of ``size`` items; empty past the end."""
        if n < 0 or size < 1:
            raise InvalidArgumentError(f"page needs n >= 0 and size >= 1, got n={n}, size={size}")
        head = self.head((n + 1) * size)
        sl = slice(n * size, (n + 1) * size)
        return self._page_of(Ranked(head.rows[sl], head.scores[sl], head.box_counts[sl]), self.offset + n * size)

    def _page_of(self, part: Ranked, offset: int) -> Results:
        """``part`` of this answer as its own (ranked) results, starting at rank ``offset``."""
        return Results(
            part,
            timings=self.timings,
            params=self.params,
            catalog=self.catalog,
            model=self.model,
            ranked=True,
            total=self.total,
            offset=offset,
            labelled=self._labelled,
        )

    def to_polars(self) -> pl.DataFrame:
        """``rank``, ``score``, ``labelled`` (True for the user's positives) and the items'
        metadata (id, uri, caption, ...), best first."""
        rows = self.rows
        items = self.catalog.items_of(rows)
        ranks = pl.Series("rank", np.arange(self.offset, self.offset + len(rows)) + 1, dtype=pl.Int64)
        score = pl.Series("score", self.scores, dtype=pl.Float64)
        labelled = pl.Series("labelled", np.isin(rows, self._labelled), dtype=pl.Boolean)
        return items.with_columns(ranks, score, labelled).select(["rank", "score", "labelled", *items.columns])

    def export(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_polars` to ``path`` (``.parquet`` or ``.csv``), atomically."""
        from clipbranches._io import atomic_write, check_path

        target = check_path(path, "export")
        suffix = target.suffix.lower()
        if suffix not in (".parquet", ".csv"):
            raise InvalidArgumentError(f"export to .parquet or .csv, not {target.name!r}")
        if not target.parent.is_dir():
            raise InvalidArgumentError(f"cannot export to {target}: {target.parent} is not a directory")
        if target.is_dir():
            raise InvalidArgumentError(f"cannot export to {target}: it is a directory")
        table = self.to_polars()
        if suffix == ".parquet":
            return atomic_write(target, table.write_parquet, "export")
        # CSV has no nested types: lists (e.g. tags) become JSON-like strings.
        flat = table.with_columns(pl.col(pl.List(pl.String)).list.join("|")) if table.width else table
        return atomic_write(target, flat.write_csv, "export")

    def rules(self) -> Rules:
        """The model's rules (box models only)."""
        learner = self.model.learner if isinstance(self.model, BoxModel) else None
        labels = {"positives": self.params.get("positives", ()), "negatives": self.params.get("negatives", ())}
        if isinstance(learner, BranchEnsemble):
            return Rules(learner.boxes_, learner.n_members, learner.threshold, **labels)
        if isinstance(learner, DecisionBranch):
            return Rules(learner.boxes_, **labels)
        kind = self.params.get("model", self.params.get("kind"))
        raise InvalidArgumentError(f"{kind!r} results have no rules: only box models (branch, ensemble) do")

    def thumbnail(self, row: int) -> Path | None:
        """The thumbnail file of a catalog row, if the catalog has one.

        Raises :class:`CatalogChangedError` when the catalog was replaced on disk since it was
        opened (the file would be another catalog's)."""
        path = self.catalog.thumbnail_path(row)
        return path if path.is_file() else None


def honour_labels(
    accepted: Ranked, model: Model, codes: NDArray[np.uint8], positives: NDArray[np.int64], negatives: NDArray[np.int64]
) -> tuple[Ranked, Ranked]:
    """``(pinned, rest)``: the user's positives ranked by the model's own score of them (then
    row), and the model's accepted items without any labelled item. Whatever the model, a
    round returns every labelled positive first and no labelled negative."""
    labelled = np.union1d(positives, negatives)
    keep = ~np.isin(accepted.rows, labelled)
    rest = Ranked(accepted.rows[keep], accepted.scores[keep], accepted.box_counts[keep])
    rows = np.unique(positives)
    scores = np.asarray(model.score(codes[rows]), np.float64)
    order = np.lexsort((rows, -scores))
    return Ranked(rows[order], scores[order], np.zeros(len(rows), np.uint16)), rest
