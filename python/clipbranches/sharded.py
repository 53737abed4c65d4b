"""The search engine over a catalog set: the same answers as one catalog, shard by shard.

:class:`ShardedEngine` is a :class:`~clipbranches.engine.SearchEngine` whose catalog is a
:class:`~clipbranches.store.catalog_set.CatalogSet`; ``SearchEngine.open(set_path)`` returns
one. Its answers are exactly those of the single-catalog engine over the concatenation of the
shards in order (ids, scores, totals, paging, export), for every model:

- **search by item / text / image**: each shard's exact top-k, merged on the driver (by
  distance, then global row, as one catalog breaks ties);
- **refine**: the training set is built on the driver over global rows (the same random
  negatives as one catalog draws: the pool and the seed depend only on the set's size), the
  model is fitted once there, and what each shard needs to apply it is a small picklable
  :class:`ShardScorer`. Models that calibrate on the catalog do it on the driver, through
  gathers of a few thousand codes from the shards: ``hybrid`` z-scores and cuts on the same
  global sample rows; ``linear`` self-trains in two rounds of shard work (the accepted counts,
  then the codes of the pseudo-labels the driver draws with the same random stream over global
  positions). Each shard returns its accepted count and its best first page
  (:class:`ShardPage`); the driver merges pages and totals, and further pages, the full ranking
  and exports are pulled from the shards when asked for.

Codes the driver reads are kept there (:class:`CodeCache`): the fixed rows every round draws
from (the random-negative pool and the hybrid's calibration sample, fetched in the first round's
one gather) and the rows users labelled. A round then gathers only labelled rows it has not seen
(one fan-out, none when the labels were seen before), and ranks the labelled positives from the
training set's codes: ``branch``, ``ensemble`` and ``hybrid`` make two fan-outs per round at
most (that gather and the apply), ``linear`` four (plus its two self-training passes).

:class:`~clipbranches.shard_worker.ShardWorker` (:mod:`clipbranches.shard_worker`) is
everything the driver asks of one shard; a Ray actor runs the very same class
(:mod:`clipbranches.cluster`). Here the workers run in the driver's process, one after the other (each native call is
parallel): every call to all the shards goes through :meth:`ShardedEngine._map`, which the Ray
engine overrides to send them all at once.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import polars as pl
from numpy.typing import NDArray

from clipbranches.engine import SearchEngine, _Clock, refine_params, round_options
from clipbranches.exceptions import InvalidArgumentError
from clipbranches.learn.hybrid import SAMPLE_ROWS, HybridModel
from clipbranches.learn.logistic import LinearScorer
from clipbranches.learn.ranking import NOTHING, Ranked, concat
from clipbranches.learn.registry import BoxModel, Model, make_model
from clipbranches.learn.selftrain import SelfTrainedLinear, refit_with_pseudo_labels
from clipbranches.learn.training import TrainingSet, build_training_set, random_pool
from clipbranches.options import RefineOptions
from clipbranches.results import FIRST_PAGE, Results, honour_labels
from clipbranches.shard_worker import (
    BoxScan,
    HybridScan,
    LinearScan,
    ModelScan,
    ShardPage,
    ShardScorer,
    ShardWorker,
)
from clipbranches.store.catalog import Catalog
from clipbranches.store.catalog_set import CatalogSet, SetCodes

if TYPE_CHECKING:
    from clipbranches.embed.encoders import Encoder
    from clipbranches.embed.head import AnyHeads

__all__ = ["CodeCache", "FanOut", "ShardedEngine", "ShardedResults"]


# -- results over shards -------------------------------------------------------------------


#: Calls ``method`` of every shard's worker with that shard's arguments (``None``: that shard is
#: not called, its answer is ``None``); the answers in shard order.
FanOut = Callable[[str, Sequence["tuple[Any, ...] | None"]], list[Any]]


def _release(workers: Sequence[ShardWorker], round_id: int) -> None:
    for worker in workers:
        worker.release(round_id)


def _sequential(workers: Sequence[ShardWorker]) -> FanOut:
    """The in-process fan-out: each shard's call in turn."""

    def fan_out(method: str, calls: Sequence[tuple[Any, ...] | None]) -> list[Any]:
        return [
            None if args is None else getattr(worker, method)(*args)
            for worker, args in zip(workers, calls, strict=True)
        ]

    return fan_out


def _shift(hits: Ranked, offset: int) -> Ranked:
    return Ranked(hits.rows + offset, hits.scores, hits.box_counts)


class ShardedResults(Results):
    """:class:`Results` over a catalog set. A refine round's items stay in their shards: a page
    merges the shards' best items, the full ranking (``ids``, ``rows``, ``scores``, exports)
    merges all of them on first use; item metadata is read from the shards that hold the rows.
    Pages and nearest-neighbour answers hold their (few) items here.

    ``catalog`` is the :class:`CatalogSet` (it offers the part of a catalog results use);
    ``catalog_set`` is the same object, typed."""

    def __init__(
        self,
        hits: Ranked,
        *,
        catalog_set: CatalogSet,
        workers: Sequence[ShardWorker] = (),
        round_id: int | None = None,
        pages: Sequence[ShardPage] = (),
        scorer: ShardScorer | None = None,
        fan_out: FanOut | None = None,
        **options: Any,
    ) -> None:
        self.catalog_set = catalog_set
        #: What each shard applied in this round (a refine round's; picklable): enough to redo
        #: one shard's part, e.g. where its worker was restarted.
        self.scorer = scorer
        self._workers = tuple(workers)
        self._fan_out = fan_out if fan_out is not None else _sequential(self._workers)
        self._round = round_id
        starts = catalog_set.offsets[: len(pages)]
        self._pages = [ShardPage(p.count, _shift(p.page, int(o))) for p, o in zip(pages, starts, strict=True)]
        self._merged: Ranked | None = None  # the shards' best items, merged, once a page asked
        self._all: Ranked | None = None  # every item, ranked, once asked
        if round_id is not None:
            pinned = options.get("pinned") or NOTHING
            options["total"] = len(pinned) + sum(p.count for p in pages)
            weakref.finalize(self, _release, self._workers, round_id)
        super().__init__(hits, catalog=cast(Catalog, catalog_set), **options)

    def __len__(self) -> int:
        if self._round is None:
            return super().__len__()
        return len(self._pinned) + sum(p.count for p in self._pages)

    def _everything(self) -> Ranked:
        """Every item of the round, ranked: the shards' ranked lists merged (lock held)."""
        if self._all is None:
            assert self._round is not None
            starts = self.catalog_set.offsets[:-1]
            ranked = self._fan_out("ranked", [(self._round,)] * len(self._workers))
            parts = [_shift(r, int(o)) for r, o in zip(ranked, starts, strict=True)]
            merged = NOTHING
            for part in parts:
                merged = concat(merged, part)
            self._all = merged.ranked() if len(parts) > 1 else merged
        return self._all

    def _full(self) -> Ranked:
        if self._round is None:
            return super()._full()
        with self._lock:
            return concat(self._pinned, self._everything())

    def head(self, k: int) -> Ranked:
        if self._round is None:
            return super().head(k)
        pinned = self._pinned
        if k <= len(pinned):
            return Ranked(pinned.rows[:k], pinned.scores[:k], pinned.box_counts[:k])
        rest = k - len(pinned)
        with self._lock:
            if self._all is not None:
                best = self._all
            else:
                if self._merged is None or len(self._merged) < min(rest, sum(p.count for p in self._pages)):
                    self._merged = self._merge_top(rest)
                best = self._merged
        return concat(pinned, Ranked(best.rows[:rest], best.scores[:rest], best.box_counts[:rest]))

    def _merge_top(self, k: int) -> Ranked:
        """The best ``k`` items of all shards: each shard's best ``k`` (from its first page when
        that holds them), merged."""
        assert self._round is not None
        missing = [None if len(p.page) >= min(k, p.count) else (self._round, k) for p in self._pages]
        tops = self._fan_out("top", missing) if any(missing) else [None] * len(missing)
        merged = NOTHING
        for i, (page, top) in enumerate(zip(self._pages, tops, strict=True)):
            merged = concat(merged, page.page if top is None else _shift(top, int(self.catalog_set.offsets[i])))
        return merged.top(k)

    @property
    def ids(self) -> NDArray[np.int64]:
        return self.catalog_set.ids_of(self.rows)

    def _page_of(self, part: Ranked, offset: int) -> Results:
        return ShardedResults(
            part,
            catalog_set=self.catalog_set,
            timings=self.timings,
            params=self.params,
            model=self.model,
            ranked=True,
            total=self.total,
            offset=offset,
            labelled=self._labelled,
        )

    def to_polars(self) -> pl.DataFrame:
        rows = self.rows
        items = self.catalog_set.items_of(rows)
        ranks = pl.Series("rank", np.arange(self.offset, self.offset + len(rows)) + 1, dtype=pl.Int64)
        score = pl.Series("score", self.scores, dtype=pl.Float64)
        labelled = pl.Series("labelled", np.isin(rows, self._labelled), dtype=pl.Boolean)
        return items.with_columns(ranks, score, labelled).select(["rank", "score", "labelled", *items.columns])

    def thumbnail(self, row: int) -> Path | None:
        path = self.catalog_set.thumbnail_path(row)
        return path if path.is_file() else None


# -- the engine ------------------------------------------------------------------------------


class ShardedEngine(SearchEngine):
    """:class:`SearchEngine` over a catalog set (see the module docstring).

    ``catalog`` is the :class:`CatalogSet` (it offers the part of a catalog's surface the
    engine's callers use: path, find, items, codes gathered on demand, codes_checksum...);
    ``catalog_set`` is the same object, typed.
    """

    def __init__(self, catalog_set: CatalogSet, *, encoder: Encoder | None = None, device: str | None = None) -> None:
        self.catalog_set = catalog_set
        super().__init__(cast(Catalog, catalog_set), encoder=encoder, device=device)
        self.workers = self._start_workers()
        self._round_ids = itertools.count()
        n = len(catalog_set)
        fixed = np.union1d(random_pool(n), random_pool(n, SAMPLE_ROWS)) if n else np.zeros(0, np.int64)
        self._known = CodeCache(catalog_set.offsets, self._codes(), fixed)
        self._towers_engine: SearchEngine | None = None

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        encoder: Encoder | None = None,
        device: str | None = None,
        build_index: bool = False,
        cluster: str | None = None,
    ) -> ShardedEngine:
        """Open the catalog set at ``path`` (every shard checked first; with ``build_index``,
        the shards without an index get one). With ``cluster`` (``"auto"``, ``"local"`` or a
        Ray address): a :class:`~clipbranches.cluster.RayEngine`, one Ray actor per shard."""
        if cluster is not None:
            from clipbranches.cluster import RayEngine

            return RayEngine.open(path, encoder=encoder, device=device, build_index=build_index, cluster=cluster)
        catalog_set = CatalogSet.open(path)
        if build_index:
            catalog_set.build_index()
        return cls(catalog_set, encoder=encoder, device=device)

    # -- shard plumbing ----------------------------------------------------------------------

    def _start_workers(self) -> list[ShardWorker]:
        """One worker per shard (here: in this process, on the set's open shards)."""
        return [ShardWorker(shard) for shard in self.catalog_set.shards]

    def _map(self, method: str, calls: Sequence[tuple[Any, ...] | None]) -> list[Any]:
        """Call ``method`` of every shard's worker with that shard's arguments (:data:`FanOut`).
        Here one after the other; the Ray engine sends them all at once."""
        return _sequential(self.workers)(method, calls)

    def _codes(self) -> SetCodes:
        """The set's codes gathered through the workers."""
        return SetCodes(self.catalog_set.offsets, self.catalog_set.dim, lambda i, rows: self.workers[i].codes(rows))

    def _local(self, rows: NDArray[np.int64], shard: int) -> NDArray[np.int64]:
        lo, hi = self.catalog_set.offsets[shard], self.catalog_set.offsets[shard + 1]
        return (rows[(rows >= lo) & (rows < hi)] - lo).astype(np.int64)

    def _towers(self) -> tuple[Encoder, AnyHeads]:
        # Every shard has the set's encoder and head: the first shard's engine loads them.
        with self._lock:
            if self._towers_engine is None:
                first = self.catalog_set.shards[0]
                self._towers_engine = SearchEngine(first, encoder=self._encoder, device=self.device)
        return self._towers_engine._towers()

    # -- searches ----------------------------------------------------------------------------

    def _nearest(self, code: NDArray[np.uint8], k: int, clock: _Clock, params: dict[str, Any]) -> Results:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InvalidArgumentError(f"k must be a positive integer, got {k!r}")
        with clock.stage("query"):
            parts = self._map("nearest", [(code, int(k))] * len(self.workers))
            distances = np.concatenate([d for d, _ in parts]) if parts else np.zeros(0, np.uint32)
            rows = np.concatenate([r + o for (_, r), o in zip(parts, self.catalog_set.offsets[:-1], strict=True)])
            order = np.lexsort((rows, distances))[: int(k)]
        hits = Ranked(rows[order], -distances[order].astype(np.float64), np.zeros(len(order), np.uint16))
        return ShardedResults(hits, catalog_set=self.catalog_set, timings=clock.timings, params=params, ranked=True)

    def refine(
        self,
        positives: Iterable[int],
        negatives: Iterable[int] = (),
        options: RefineOptions | None = None,
        *,
        model: str | None = None,
        random_negatives: int | None = None,
        negative_weight: int | None = None,
        seed: int | None = None,
    ) -> Results:
        """:meth:`SearchEngine.refine` over the shards: the same answer as one catalog of all of
        them (module docstring)."""
        chosen, round_seed = round_options(options, model, random_negatives, negative_weight, seed)
        learner = make_model(chosen.model, round_seed)
        clock = _Clock()
        pos = self.catalog_set.find(positives, "positive")
        neg = self.catalog_set.find(negatives, "negative")
        round_id = next(self._round_ids)
        try:
            with clock.stage("train"):
                training = self._training_set(pos, neg, chosen, round_seed)
                learner.fit(training)
            with clock.stage("query"):
                scorer = self._scorer(learner, training, round_id)
                labelled = np.union1d(pos, neg)
                pages = self._map(
                    "apply",
                    [(round_id, scorer, self._local(labelled, i), FIRST_PAGE) for i in range(len(self.workers))],
                )
                # The positives, ranked by the model's own score of them (their codes are the
                # training set's: no gather).
                pinned, _ = honour_labels(NOTHING, learner, cast(NDArray[np.uint8], self._known.view()), pos, neg)
        except BaseException:
            _release(self.workers, round_id)  # what shards kept of a round that failed
            raise
        ids_of = self.catalog_set.ids_of
        params = refine_params(chosen, round_seed, ids_of(np.unique(pos)), ids_of(np.unique(neg)))
        results = ShardedResults(
            NOTHING,
            catalog_set=self.catalog_set,
            workers=self.workers,
            round_id=round_id,
            pages=pages,
            timings=clock.timings,
            params=params,
            model=learner,
            pinned=pinned,
            scorer=scorer,
            fan_out=self._map,
        )
        with clock.stage("rank"):
            results.head(FIRST_PAGE)
        return results

    def _training_set(
        self, pos: NDArray[np.int64], neg: NDArray[np.int64], chosen: RefineOptions, seed: int
    ) -> TrainingSet:
        """:func:`build_training_set` over the set's global rows, with the codes gathered from
        the shards: its rules (and random draws) run on a zero-stride stand-in of the right
        shape, which costs no memory, then the chosen rows' codes replace the stand-in's."""
        n, dim = len(self.catalog_set), self.catalog_set.dim
        zeros = np.zeros(dim, np.uint8)
        blank = np.lib.stride_tricks.as_strided(zeros, shape=(n, dim), strides=(0, 1), writeable=False)
        training = build_training_set(
            blank,
            pos,
            neg,
            random_negatives=chosen.random_negatives,
            negative_weight=chosen.negative_weight,
            seed=seed,
        )
        return dataclasses.replace(training, codes=self._known.gather(training.rows))

    def _scorer(self, learner: Model, training: TrainingSet, round_id: int) -> ShardScorer:
        """What the shards apply: the model itself, or what it calibrated on the whole set."""
        if isinstance(learner, HybridModel):
            # The model's own calibration, on the same global sample rows as one catalog's.
            view = _DriverView(len(self.catalog_set), self._known.view())
            terms, threshold = learner._calibrate(cast(Catalog, view))
            learner._terms = terms
            return HybridScan(terms, threshold)
        if isinstance(learner, SelfTrainedLinear):
            return LinearScan(self._self_train(learner, training, round_id))
        if isinstance(learner, BoxModel):
            return BoxScan(learner)
        return ModelScan(learner)

    def _self_train(self, learner: SelfTrainedLinear, training: TrainingSet, round_id: int) -> LinearScorer:
        """:meth:`SelfTrainedLinear.accept`'s refit over the shards, drawing the same pseudo-labels:
        the random stream needs only the accepted count (positions among the accepted rows,
        ranks among the rejected ones), and the shards return the codes at those positions."""
        first = learner.first
        if first is None:
            raise InvalidArgumentError("the linear model is not fitted yet")
        learner.final = first
        if not learner.pseudo_rows:
            return first
        counts = np.array(self._map("first_pass", [(round_id, LinearScan(first))] * len(self.workers)), np.int64)
        sizes = np.diff(self.catalog_set.offsets)
        accepted, n = int(counts.sum()), len(self.catalog_set)
        rng = np.random.default_rng(learner.seed)
        # As `rng.choice(accepted_rows, ...)`: the same draw over positions 0..accepted-1.
        positions = np.sort(rng.choice(accepted, size=min(accepted, learner.pseudo_rows), replace=False))
        outside = n - accepted
        ranks = (
            np.sort(rng.choice(outside, size=min(learner.pseudo_rows, outside), replace=False))
            if outside > 0 and learner.pseudo_rows > 0
            else np.zeros(0, np.int64)
        )
        inside_at = np.concatenate([[0], np.cumsum(counts)])
        outside_at = np.concatenate([[0], np.cumsum(sizes - counts)])
        calls: list[tuple[Any, ...] | None] = []
        for i in range(len(self.workers)):
            p = positions[(positions >= inside_at[i]) & (positions < inside_at[i + 1])] - inside_at[i]
            r = ranks[(ranks >= outside_at[i]) & (ranks < outside_at[i + 1])] - outside_at[i]
            calls.append((round_id, p.astype(np.int64), r.astype(np.int64)))
        answers = self._map("pseudo_codes", calls)
        pos_parts = [inside for inside, _ in answers]
        neg_parts = [outside for _, outside in answers]
        dim = self.catalog_set.dim
        pos_codes = np.concatenate(pos_parts) if pos_parts else np.zeros((0, dim), np.uint8)
        neg_codes = np.concatenate(neg_parts) if neg_parts else np.zeros((0, dim), np.uint8)
        model = first
        if len(pos_codes) and len(neg_codes):
            model = refit_with_pseudo_labels(
                training, pos_codes, neg_codes, pseudo_weight=learner.pseudo_weight, c=learner.c
            )
        learner.final = model
        return model


class CodeCache:
    """The codes the driver has gathered, kept (a set's codes never change while it is open):
    ``fixed`` rows (fetched with the first gather, in the same fan-out) and up to
    :attr:`LIMIT` other rows (the labelled ones), forgotten all at once when full. A gather
    asks ``source`` (one fan-out) only for the rows it does not hold."""

    #: The most rows kept besides the fixed ones (32 bytes each at 32-d).
    LIMIT = 1 << 16

    def __init__(self, offsets: NDArray[np.int64], source: SetCodes, fixed: NDArray[np.int64]) -> None:
        self.offsets = offsets
        self.source = source
        self._fixed = np.asarray(fixed, np.int64)
        self._rows = np.zeros(0, np.int64)  # sorted
        self._codes = np.zeros((0, source.shape[1]), np.uint8)
        self._extra = 0  # rows held besides the fixed ones
        self._lock = threading.Lock()
        #: Gathers that went to the shards (for tests and profiles).
        self.fetches = 0

    def gather(self, rows: NDArray[np.int64]) -> NDArray[np.uint8]:
        """The codes of global ``rows`` (in range), in order."""
        rows = np.asarray(rows, np.int64)
        with self._lock:
            held_rows, held_codes, first = self._rows, self._codes, self.fetches == 0
        at = np.searchsorted(held_rows, rows)
        found = at < len(held_rows)
        found[found] = held_rows[at[found]] == rows[found]
        out = np.empty((len(rows), self.source.shape[1]), np.uint8)
        out[found] = held_codes[at[found]]
        if found.all():
            return out
        missing = np.unique(rows[~found])
        wanted = np.union1d(missing, self._fixed) if first else missing
        fetched = self.source.gather(wanted)
        out[~found] = fetched[np.searchsorted(wanted, rows[~found])]
        self._keep(wanted, fetched, first)
        return out

    def _keep(self, rows: NDArray[np.int64], codes: NDArray[np.uint8], first: bool) -> None:
        with self._lock:
            self.fetches += 1
            fresh = ~np.isin(rows, self._rows)
            rows, codes = rows[fresh], codes[fresh]
            added = len(rows) - (int(np.isin(rows, self._fixed).sum()) if first else 0)
            if self._extra + added > self.LIMIT and not first:
                keep = np.isin(self._rows, self._fixed)  # forget the labelled rows, keep the fixed ones
                self._rows, self._codes, self._extra = self._rows[keep], self._codes[keep], 0
                if added > self.LIMIT:
                    return
            all_rows = np.concatenate([self._rows, rows])
            order = np.argsort(all_rows, kind="stable")
            self._rows, self._codes = all_rows[order], np.concatenate([self._codes, codes])[order]
            self._extra += added

    def view(self) -> SetCodes:
        """A :class:`SetCodes` over the whole set that gathers through this cache."""
        return _CachedCodes(self)


class _CachedCodes(SetCodes):
    def __init__(self, cache: CodeCache) -> None:
        super().__init__(cache.offsets, cache.source.shape[1], lambda i, rows: cache.source[rows + cache.offsets[i]])
        self._cache = cache

    def gather(self, rows: NDArray[np.int64]) -> NDArray[np.uint8]:
        return self._cache.gather(rows)


@dataclass(frozen=True)
class _DriverView:
    """The two things a model's calibration reads of a catalog: its size and its codes."""

    size: int
    codes: SetCodes

    def __len__(self) -> int:
        return self.size
