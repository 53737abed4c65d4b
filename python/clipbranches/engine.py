"""The search engine: the public API that the TUI, the CLI and notebooks use.

:class:`SearchEngine` ties a catalog, its index, its heads and the matching encoder together:

- :meth:`SearchEngine.search_text` / :meth:`SearchEngine.search_image`: the first search, the
  exact nearest neighbours of the query's 32-byte code;
- :meth:`SearchEngine.refine`: trains a model on the labels (the training-set rules of
  :func:`~clipbranches.training.build_training_set`) and applies it to the whole catalog:
  every accepted item, ranked, with per-stage timings.

Both return :class:`Results`. Ids are the catalog's item ids (its ``id`` column); rows are
positions in the catalog. The encoder and heads load lazily on the first text or image query,
so opening an engine and refining by item ids never imports torch.

Thread safety: an engine may be shared by threads. The catalog is read-only (memory-mapped),
lazy loading is behind a lock, each call builds its own model, and the native calls release
the GIL.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from clipbranches.catalog import HEAD_FILE, THUMBS_DIR, Catalog
from clipbranches.exceptions import (
    EncoderError,
    EncoderMismatchError,
    InvalidArgumentError,
    UnknownItemError,
)
from clipbranches.learn import BranchEnsemble, DecisionBranch, Ranked
from clipbranches.models import DEFAULT_MODEL, BoxModel, Model, make_model
from clipbranches.rules import Rules
from clipbranches.training import build_training_set

if TYPE_CHECKING:
    from clipbranches.encoders import Encoder
    from clipbranches.head import Heads

__all__ = ["FIRST_PAGE", "STAGES", "Results", "SearchEngine"]

#: The stages a search reports the time of, in milliseconds.
STAGES = ("encode", "train", "query", "rank")
#: Items a round ranks up front (a first page); the rest are ranked when asked for.
FIRST_PAGE = 100


class Results:
    """Ranked items of one search or fine-tuning round.

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
        self._pinned = pinned if pinned is not None else _EMPTY
        self._hits = hits
        self._ranked = ranked
        self._head: Ranked | None = None  # the ranked best items, once a page asked for them
        self._lock = threading.Lock()
        self._labelled = np.sort(self._pinned.ids) if labelled is None else labelled
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
            return _concat(self._pinned, self._hits)

    def head(self, k: int) -> Ranked:
        """The best ``k`` items, ranked (without ranking the rest)."""
        pinned = self._pinned
        if k <= len(pinned):
            return Ranked(pinned.ids[:k], pinned.scores[:k], pinned.box_counts[:k])
        rest = k - len(pinned)
        with self._lock:
            if self._ranked:
                best = Ranked(self._hits.ids[:rest], self._hits.scores[:rest], self._hits.box_counts[:rest])
            else:
                if self._head is None or len(self._head) < min(rest, len(self._hits)):
                    self._head = self._hits.top(rest)
                head = self._head
                best = Ranked(head.ids[:rest], head.scores[:rest], head.box_counts[:rest])
        return _concat(pinned, best)

    @property
    def labelled(self) -> NDArray[np.bool_]:
        """For each item here (best first): True where the user labelled it positive. A round
        always returns the user's positives, first, and never the user's negatives."""
        return np.isin(self.rows, self._labelled)

    @property
    def rows(self) -> NDArray[np.int64]:
        return self._full().ids

    @property
    def ids(self) -> NDArray[np.int64]:
        return self.catalog.item_ids[self.rows]

    @property
    def scores(self) -> NDArray[np.float64]:
        return self._full().scores

    def page(self, n: int, size: int = 60) -> Results:
        """Page ``n`` (0-based) of ``size`` items; empty past the end."""
        if n < 0 or size < 1:
            raise InvalidArgumentError(f"page needs n >= 0 and size >= 1, got n={n}, size={size}")
        head = self.head((n + 1) * size)
        sl = slice(n * size, (n + 1) * size)
        part = Ranked(head.ids[sl], head.scores[sl], head.box_counts[sl])
        return Results(
            part,
            timings=self.timings,
            params=self.params,
            catalog=self.catalog,
            model=self.model,
            ranked=True,
            total=self.total,
            offset=self.offset + n * size,
            labelled=self._labelled,
        )

    def to_polars(self) -> pl.DataFrame:
        """``rank``, ``score``, ``labelled`` (True for the user's positives) and the items'
        metadata (id, uri, caption, ...), best first."""
        rows = self.rows
        items = self.catalog.items[rows.tolist()] if len(rows) else self.catalog.items.clear()
        ranks = pl.Series("rank", np.arange(self.offset, self.offset + len(rows)) + 1, dtype=pl.Int64)
        score = pl.Series("score", self.scores, dtype=pl.Float64)
        labelled = pl.Series("labelled", np.isin(rows, self._labelled), dtype=pl.Boolean)
        return items.with_columns(ranks, score, labelled).select(["rank", "score", "labelled", *items.columns])

    def export(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_polars` to ``path`` (``.parquet`` or ``.csv``), atomically."""
        target = Path(path)
        suffix = target.suffix.lower()
        if suffix not in (".parquet", ".csv"):
            raise InvalidArgumentError(f"export to .parquet or .csv, not {target.name!r}")
        if not target.parent.is_dir():
            raise InvalidArgumentError(f"cannot export to {target}: {target.parent} is not a directory")
        table = self.to_polars()
        tmp = target.with_name(f".{target.name}.tmp")
        if suffix == ".parquet":
            table.write_parquet(tmp)
        else:
            # CSV has no nested types: lists (e.g. tags) become JSON-like strings.
            flat = table.with_columns(pl.col(pl.List(pl.String)).list.join("|")) if table.width else table
            flat.write_csv(tmp)
        os.replace(tmp, target)
        return target

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
        """The thumbnail file of a catalog row, if the catalog has one."""
        path = self.catalog.path / THUMBS_DIR / f"{int(self.catalog.item_ids[row])}.jpg"
        return path if path.is_file() else None


_EMPTY = Ranked(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.uint16))


def _concat(first: Ranked, second: Ranked) -> Ranked:
    if not len(first):
        return second
    return Ranked(
        np.concatenate([first.ids, second.ids]),
        np.concatenate([first.scores, second.scores]),
        np.concatenate([first.box_counts, second.box_counts]),
    )


def honour_labels(
    accepted: Ranked, model: Model, codes: NDArray[np.uint8], positives: NDArray[np.int64], negatives: NDArray[np.int64]
) -> tuple[Ranked, Ranked]:
    """``(pinned, rest)``: the user's positives ranked by the model's own score of them (then
    row), and the model's accepted items without any labelled item. Whatever the model, a
    round returns every labelled positive first and no labelled negative."""
    labelled = np.union1d(positives, negatives)
    keep = ~np.isin(accepted.ids, labelled)
    rest = Ranked(accepted.ids[keep], accepted.scores[keep], accepted.box_counts[keep])
    rows = np.unique(positives)
    scores = np.asarray(model.score(codes[rows]), np.float64)
    order = np.lexsort((rows, -scores))
    return Ranked(rows[order], scores[order], np.zeros(len(rows), np.uint16)), rest


class _Clock:
    def __init__(self) -> None:
        self.timings = dict.fromkeys(STAGES, 0.0)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] += (time.perf_counter() - start) * 1000.0


class SearchEngine:
    """Search and fine-tune over one catalog.

    Parameters
    ----------
    catalog
        An open catalog.
    encoder
        The encoder for text and image queries; default: the one the catalog's manifest names,
        loaded on first use. One whose identity differs from the catalog's is refused
        (:class:`EncoderMismatchError`): its space is not the catalog's.
    device
        Where the encoder and heads run (default: CUDA when available).
    """

    def __init__(self, catalog: Catalog, *, encoder: Encoder | None = None, device: str | None = None) -> None:
        self.catalog = catalog
        self.device = device
        self._lock = threading.Lock()
        self._encoder = encoder
        self._heads: Heads | None = None
        if encoder is not None:
            self._check_encoder(encoder)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        encoder: Encoder | None = None,
        device: str | None = None,
        build_index: bool = False,
    ) -> SearchEngine:
        """Open the catalog at ``path`` (and build its index first when ``build_index`` and it
        has none). Without an index, box models fall back to the full scan (slower)."""
        catalog = Catalog.open(path)
        if build_index and not catalog.has_index:
            catalog.build_index()
        return cls(catalog, encoder=encoder, device=device)

    @property
    def has_index(self) -> bool:
        return self.catalog.has_index

    def __len__(self) -> int:
        return len(self.catalog)

    # -- ids -------------------------------------------------------------------------------

    def rows_of(self, ids: Iterable[int], what: str = "item") -> NDArray[np.int64]:
        """Catalog rows of item ids (in the given order); unknown ids raise
        :class:`UnknownItemError` naming them."""
        raw = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids)
        if raw.size == 0:
            return np.zeros(0, np.int64)
        if raw.dtype == np.bool_ or not np.issubdtype(raw.dtype, np.integer):
            raise InvalidArgumentError(f"{what} ids must be integers, got {raw.dtype}")
        wanted = raw.astype(np.int64).ravel()
        rows, found = self.catalog.rows_of_ids(wanted)
        if not found.all():
            missing = wanted[~found]
            raise UnknownItemError(
                f"{what} ids not in the catalog: {missing[:10].tolist()}{' ...' if len(missing) > 10 else ''}"
            )
        return rows

    # -- encoder and heads -----------------------------------------------------------------

    def _check_encoder(self, encoder: Encoder) -> None:
        expected = self.catalog.encoder
        if expected is not None and dict(encoder.identity) != dict(expected):
            raise EncoderMismatchError(
                f"the query encoder {encoder.identity} is not the catalog's {expected}: its codes "
                "live in another space; open the engine with the catalog's encoder (the default)"
            )

    def _towers(self) -> tuple[Encoder, Heads]:
        with self._lock:
            if self._heads is None:
                from clipbranches.head import load_heads

                head_path = self.catalog.path / HEAD_FILE
                if self.catalog.encoder is None or not head_path.is_file():
                    raise EncoderError(
                        f"{self.catalog.path} has no encoder or head ({HEAD_FILE}): it was not made by "
                        "`clipbranches ingest`, so it cannot take text or image queries; search by item "
                        "id instead (search_image(item_id), `clipbranches search --item ID`)"
                    )
                if self._encoder is None:
                    self._encoder = encoder_from_identity(self.catalog.encoder, device=self.device)
                    self._check_encoder(self._encoder)
                self._heads = load_heads(head_path, device=self._encoder_device(self._encoder))
            assert self._encoder is not None
            return self._encoder, self._heads

    @staticmethod
    def _encoder_device(encoder: Encoder) -> str:
        return str(getattr(encoder, "device", "cpu"))

    def _project(self, features: NDArray[np.float32], side: str) -> NDArray[np.uint8]:
        import torch

        _, heads = self._towers()
        device = next(heads.parameters()).device
        with torch.no_grad():
            x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)).to(device)
            z = heads.encode_text(x) if side == "text" else heads.encode_image(x)
        return self.catalog.quantizer.quantize(z.float().cpu().numpy())

    def encode_text(self, query: str) -> NDArray[np.uint8]:
        """The 32-byte code of a text query."""
        if not isinstance(query, str) or not query.strip():
            raise InvalidArgumentError("the text query is empty")
        encoder, _ = self._towers()
        return self._project(encoder.encode_texts([query]), "text")[0]

    def encode_image_file(self, path: str | os.PathLike[str]) -> NDArray[np.uint8]:
        """The 32-byte code of an image file (or http(s) URL)."""
        from clipbranches.encoders.files import open_image

        encoder, _ = self._towers()
        image = open_image(path)
        if isinstance(image, str):
            raise InvalidArgumentError(f"cannot use {os.fspath(path)} as a query: {image}")
        return self._project(encoder.encode_images([image]), "image")[0]

    # -- searches --------------------------------------------------------------------------

    def search_text(self, query: str, k: int = 60) -> Results:
        """The ``k`` items nearest to a text query."""
        clock = _Clock()
        with clock.stage("encode"):
            code = self.encode_text(query)
        return self._nearest(code, k, clock, {"kind": "text", "query": query, "k": k})

    def search_image(self, image: int | str | os.PathLike[str], k: int = 60) -> Results:
        """The ``k`` items nearest to an image: a catalog item id (its own code, no encoder
        needed) or an image file / URL."""
        clock = _Clock()
        with clock.stage("encode"):
            if isinstance(image, (int, np.integer)) and not isinstance(image, bool):
                row = int(self.rows_of([int(image)])[0])
                code = np.asarray(self.catalog.codes[row])
                params: dict[str, Any] = {"kind": "image", "item": int(image), "k": k}
            elif isinstance(image, (str, os.PathLike)):
                code = self.encode_image_file(image)
                params = {"kind": "image", "path": os.fspath(image), "k": k}
            else:
                raise InvalidArgumentError(f"an image query is an item id or a path, not {type(image).__name__}")
        return self._nearest(code, k, clock, params)

    def _nearest(self, code: NDArray[np.uint8], k: int, clock: _Clock, params: dict[str, Any]) -> Results:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InvalidArgumentError(f"k must be a positive integer, got {k!r}")
        with clock.stage("query"):
            distances, rows = self.catalog.nearest(code, int(k))
        hits = Ranked(rows[0], -distances[0].astype(np.float64), np.zeros(len(rows[0]), np.uint16))
        return Results(hits, timings=clock.timings, params=params, catalog=self.catalog, ranked=True)

    def refine(
        self,
        positives: Iterable[int],
        negatives: Iterable[int] = (),
        *,
        model: str = DEFAULT_MODEL,
        random_negatives: int = 500,
        negative_weight: int = 1,
        seed: int | None = None,
    ) -> Results:
        """Train ``model`` on the labelled item ids and apply it to the whole catalog.

        Parameters
        ----------
        positives, negatives
            Item ids (at least one positive).
        model
            A registry name (:data:`clipbranches.models.MODELS`): ``linear`` (default, the most
            accurate), ``ensemble``, ``branch``, ``logreg``, ``tree``, ``forest``.
        random_negatives
            Random catalog items added as negatives (0..10,000), as the original does.
        negative_weight
            Weight of each labelled negative (1..100).
        seed
            Seed of the random negatives and the model; None draws one (recorded in
            ``params`` so the round can be redone).

        Raises
        ------
        InvalidArgumentError
            Unknown model, no positive, an id both positive and negative, a parameter out of
            range. :class:`UnknownItemError` for ids the catalog does not have.
        """
        if seed is None:
            seed = secrets.randbits(32)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise InvalidArgumentError(f"seed must be a non-negative integer, got {seed!r}")
        learner = make_model(model, int(seed))  # validates the name before any work
        clock = _Clock()
        pos = self.rows_of(positives, "positive")
        neg = self.rows_of(negatives, "negative")
        with clock.stage("train"):
            training = build_training_set(
                self.catalog.codes,
                pos,
                neg,
                random_negatives=random_negatives,
                negative_weight=negative_weight,
                seed=int(seed),
            )
            learner.fit(training)
        with clock.stage("query"):
            accepted = learner.accept(self.catalog)
            pinned, rest = honour_labels(accepted, learner, self.catalog.codes, pos, neg)
        params = {
            "kind": "refine",
            "model": model,
            "positives": self.catalog.item_ids[np.unique(pos)].tolist(),
            "negatives": self.catalog.item_ids[np.unique(neg)].tolist(),
            "random_negatives": random_negatives,
            "negative_weight": negative_weight,
            "seed": int(seed),
        }
        results = Results(
            rest, timings=clock.timings, params=params, catalog=self.catalog, model=learner, pinned=pinned
        )
        with clock.stage("rank"):
            results.head(FIRST_PAGE)  # what is shown first; the rest is ranked on demand
        return results

    def redo(self, params: Mapping[str, Any]) -> Results:
        """Run again the search that produced a :attr:`Results.params` (same seed: same answer)."""
        kind = params.get("kind")
        if kind == "text":
            return self.search_text(params["query"], params.get("k", 60))
        if kind == "image":
            return self.search_image(params["item"] if "item" in params else params["path"], params.get("k", 60))
        if kind == "refine":
            return self.refine(
                params["positives"],
                params.get("negatives", ()),
                model=params.get("model", DEFAULT_MODEL),
                random_negatives=params.get("random_negatives", 500),
                negative_weight=params.get("negative_weight", 1),
                seed=params.get("seed"),
            )
        raise InvalidArgumentError(f"cannot redo a search of kind {kind!r}")


def encoder_from_identity(identity: Mapping[str, Any], *, device: str | None = None) -> Encoder:
    """The encoder a catalog's manifest names (``encoder`` identity)."""
    kind = identity.get("kind")
    if kind == "offline":
        from clipbranches.encoders import OfflineEncoder

        return OfflineEncoder(device=device)
    if kind == "open_clip":
        from clipbranches.encoders import OpenClipEncoder

        weights = identity.get("weights")
        return OpenClipEncoder(
            str(identity.get("model")), pretrained=None if weights == "random" else weights, device=device
        )
    raise EncoderError(f"the catalog names an encoder this version does not know: {dict(identity)}")
