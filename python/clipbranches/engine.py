"""The search engine: the public API that the TUI, the CLI and notebooks use.

:class:`SearchEngine` ties a catalog, its index, its heads and the matching encoder together:

- :meth:`SearchEngine.search_text` / :meth:`SearchEngine.search_image`: the first search, the
  exact nearest neighbours of the query's 32-byte code;
- :meth:`SearchEngine.refine`: trains a model on the labels (the training-set rules of
  :func:`~clipbranches.learn.training.build_training_set`) and applies it to the whole catalog:
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
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import polars as pl
from numpy.typing import NDArray

from clipbranches._io import check_path
from clipbranches.exceptions import EncoderError, EncoderMismatchError, InvalidArgumentError
from clipbranches.learn.ranking import Ranked
from clipbranches.learn.registry import make_model
from clipbranches.learn.training import build_training_set
from clipbranches.options import DEFAULT_K, RefineOptions
from clipbranches.results import FIRST_PAGE, Results, honour_labels
from clipbranches.store.catalog import HEAD_FILE, Catalog
from clipbranches.store.catalog_set import is_catalog_set

if TYPE_CHECKING:
    from clipbranches.embed.encoders import Encoder
    from clipbranches.embed.head import AnyHeads

__all__ = ["STAGES", "SearchEngine"]

#: The stages a search reports the time of, in milliseconds.
STAGES = ("encode", "train", "query", "rank")
#: The longest text query, in characters once stripped: the towers read at most 77 tokens, and a
#: huge query would only cost memory and time before being cut.
MAX_QUERY_CHARS = 1000


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
    """Search and refine over one catalog.

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
        self._heads: AnyHeads | None = None
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
        cluster: str | None = None,
    ) -> SearchEngine:
        """Open the catalog at ``path`` (and build its index first when ``build_index`` and it
        has none). Without an index, box models fall back to the full scan (slower).

        A catalog set (:mod:`clipbranches.store.catalog_set`) opens as a
        :class:`~clipbranches.sharded.ShardedEngine`: the same answers over its shards; with
        ``cluster`` (``"auto"``, ``"local"`` or a Ray address), as a
        :class:`~clipbranches.cluster.RayEngine`: one Ray actor per shard."""
        if cluster is not None and not is_catalog_set(path):
            raise InvalidArgumentError(
                f"{path} is one catalog: a cluster serves catalog sets (clipbranches.store.CatalogSet)"
            )
        if is_catalog_set(path):
            from clipbranches.sharded import ShardedEngine

            return ShardedEngine.open(path, encoder=encoder, device=device, build_index=build_index, cluster=cluster)
        catalog = Catalog.open(path)
        if build_index and not catalog.has_index:
            catalog.build_index()
        return cls(catalog, encoder=encoder, device=device)

    @property
    def has_index(self) -> bool:
        return self.catalog.has_index

    def __len__(self) -> int:
        return len(self.catalog)

    # -- items -----------------------------------------------------------------------------

    def items(self, ids: Iterable[int]) -> pl.DataFrame:
        """The metadata of items ``ids`` (id, uri, caption, width, height, ...), in that order.

        Raises :class:`UnknownItemError` for ids the catalog does not have."""
        return self.catalog.items_of(self.catalog.find(ids))

    def thumbnail(self, item_id: int) -> Path | None:
        """The thumbnail file of an item, or None when ingest made none.

        Raises :class:`UnknownItemError` for an id the catalog does not have."""
        path = self.catalog.thumbnail_path(int(self.catalog.find([item_id])[0]))
        return path if path.is_file() else None

    # -- encoder and heads -----------------------------------------------------------------

    def _check_encoder(self, encoder: Encoder) -> None:
        expected = self.catalog.encoder
        if expected is not None and dict(encoder.identity) != dict(expected):
            raise EncoderMismatchError(
                f"the query encoder {encoder.identity} is not the catalog's {expected}: its codes "
                "live in another space; open the engine with the catalog's encoder (the default)"
            )

    def _towers(self) -> tuple[Encoder, AnyHeads]:
        with self._lock:
            if self._heads is None:
                self.catalog.check_unchanged()  # the heads must be this catalog's, not a replacement's
                head_path = self.catalog.path / HEAD_FILE
                if self.catalog.encoder is None or not head_path.is_file():  # before any torch import
                    raise EncoderError(
                        f"{self.catalog.path} has no encoder or head ({HEAD_FILE}): it was not made by "
                        "`clipbranches ingest`, so it cannot take text or image queries; search by item "
                        "id instead (search_image(item_id), `clipbranches search --item ID`)"
                    )
                from clipbranches.embed.head import load_heads

                if self._encoder is None:
                    from clipbranches.embed.encoders import make_encoder

                    self._encoder = make_encoder(self.catalog.encoder, device=self.device)
                    self._check_encoder(self._encoder)
                self._heads = load_heads(head_path, device=self._encoder_device(self._encoder))
            assert self._encoder is not None
            return self._encoder, self._heads

    @staticmethod
    def _encoder_device(encoder: Encoder) -> str:
        return str(getattr(encoder, "device", "cpu"))

    def _project(self, features: NDArray[np.float32], side: Literal["image", "text"]) -> NDArray[np.uint8]:
        from clipbranches.embed.codes import project

        _, heads = self._towers()
        return project(heads, features, side, self.catalog.quantizer)

    def encode_text(self, query: str) -> NDArray[np.uint8]:
        """The 32-byte code of a text query.

        Raises
        ------
        InvalidArgumentError
            Not a string, empty, over :data:`MAX_QUERY_CHARS` characters, or not valid Unicode
            (a lone surrogate): checked before the towers load.
        """
        if not isinstance(query, str):
            raise InvalidArgumentError(f"a text query is a string, not {type(query).__name__}")
        text = query.strip()
        if not text:
            raise InvalidArgumentError("the text query is empty")
        if len(text) > MAX_QUERY_CHARS:
            raise InvalidArgumentError(
                f"the text query is {len(text):,} characters long, over the limit of {MAX_QUERY_CHARS:,} "
                "(the towers read only its first 77 tokens)"
            )
        try:
            query.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InvalidArgumentError(
                f"the text query is not valid Unicode text: {e.object[e.start : e.end]!r} at character {e.start} "
                f"({e.reason})"
            ) from None
        encoder, _ = self._towers()
        return self._project(encoder.encode_texts([query]), "text")[0]

    def encode_image_file(self, path: str | os.PathLike[str]) -> NDArray[np.uint8]:
        """The 32-byte code of an image file (or http(s) URL)."""
        from clipbranches.embed.encoders.files import open_image

        encoder, _ = self._towers()
        image = open_image(path)
        if isinstance(image, str):
            raise InvalidArgumentError(f"cannot use {os.fspath(path)} as a query: {image}")
        return self._project(encoder.encode_images([image]), "image")[0]

    # -- searches --------------------------------------------------------------------------

    def search_text(self, query: str, k: int = DEFAULT_K) -> Results:
        """The ``k`` items nearest to a text query."""
        clock = _Clock()
        with clock.stage("encode"):
            code = self.encode_text(query)
        return self._nearest(code, k, clock, {"kind": "text", "query": query, "k": k})

    def search_image(self, image: int | str | os.PathLike[str], k: int = DEFAULT_K) -> Results:
        """The ``k`` items nearest to an image: a catalog item id (its own code, no encoder
        needed) or an image file / URL."""
        clock = _Clock()
        with clock.stage("encode"):
            if isinstance(image, (int, np.integer)) and not isinstance(image, bool):
                row = int(self.catalog.find([int(image)])[0])
                code = np.asarray(self.catalog.codes[row])
                params: dict[str, Any] = {"kind": "image", "item": int(image), "k": k}
            elif isinstance(image, (str, os.PathLike)):
                from clipbranches.embed.encoders.files import is_url

                if not is_url(image):
                    check_path(image, "image")  # an empty path or a NUL byte: typed, before the towers load
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
        options: RefineOptions | None = None,
        *,
        model: str | None = None,
        random_negatives: int | None = None,
        negative_weight: int | None = None,
        seed: int | None = None,
    ) -> Results:
        """Train a model on the labelled item ids and apply it to the whole catalog.

        Parameters
        ----------
        positives, negatives
            Item ids (at least one positive).
        options
            How to train (:class:`RefineOptions`: model, random negatives, negative weight,
            seed); default ``RefineOptions()``.
        model, random_negatives, negative_weight, seed
            Shorthands that replace the same field of ``options``. A seed of ``None`` draws
            one (recorded in ``params`` so the round can be redone).

        Raises
        ------
        InvalidArgumentError
            Unknown model, no positive, an id both positive and negative, a parameter out of
            range. :class:`UnknownItemError` for ids the catalog does not have.
        """
        chosen, round_seed = round_options(options, model, random_negatives, negative_weight, seed)
        learner = make_model(chosen.model, round_seed)
        clock = _Clock()
        pos = self.catalog.find(positives, "positive")
        neg = self.catalog.find(negatives, "negative")
        with clock.stage("train"):
            training = build_training_set(
                self.catalog.codes,
                pos,
                neg,
                random_negatives=chosen.random_negatives,
                negative_weight=chosen.negative_weight,
                seed=round_seed,
            )
            learner.fit(training)
        with clock.stage("query"):
            accepted = learner.accept(self.catalog)
            pinned, rest = honour_labels(accepted, learner, self.catalog.codes, pos, neg)
        ids = self.catalog.item_ids
        params = refine_params(chosen, round_seed, ids[np.unique(pos)], ids[np.unique(neg)])
        results = Results(
            rest, timings=clock.timings, params=params, catalog=self.catalog, model=learner, pinned=pinned
        )
        with clock.stage("rank"):
            results.head(FIRST_PAGE)  # what is shown first; the rest is ranked on demand
        return results

    def redo(self, params: Mapping[str, Any]) -> Results:
        """Run again the search that produced a :attr:`Results.params` (same seed: same answer).

        Raises
        ------
        InvalidArgumentError
            ``params`` that no search produced: not a mapping, another kind, a missing field.
        """
        if not isinstance(params, Mapping):
            raise InvalidArgumentError(f"redo takes a round's params (a mapping), not {type(params).__name__}")
        kind = params.get("kind")
        needs = {"text": ("query",), "image": (), "refine": ("positives",)}.get(str(kind))
        if needs is None:
            raise InvalidArgumentError(f"cannot redo a search of kind {kind!r}")
        missing = [f for f in needs if f not in params]
        if kind == "image" and "item" not in params and "path" not in params:
            missing.append("item or path")
        if missing:
            raise InvalidArgumentError(f"cannot redo this {kind} search: its params lack {', '.join(missing)}")
        if kind == "text":
            return self.search_text(params["query"], params.get("k", DEFAULT_K))
        if kind == "image":
            return self.search_image(params["item"] if "item" in params else params["path"], params.get("k", DEFAULT_K))
        if kind == "refine":
            fields = ("model", "random_negatives", "negative_weight", "seed")
            options = RefineOptions(**{f: params[f] for f in fields if f in params})
            return self.refine(params["positives"], params.get("negatives", ()), options)
        raise InvalidArgumentError(f"cannot redo a search of kind {kind!r}")


def round_options(
    options: RefineOptions | None,
    model: str | None,
    random_negatives: int | None,
    negative_weight: int | None,
    seed: int | None,
) -> tuple[RefineOptions, int]:
    """A refine round's options (``options`` with the shorthands given) and its seed (drawn
    when unset, so that it is recorded): one rule for every engine."""
    chosen = (options or RefineOptions()).replace(
        model=model, random_negatives=random_negatives, negative_weight=negative_weight, seed=seed
    )
    return chosen, chosen.seed if chosen.seed is not None else secrets.randbits(32)


def refine_params(
    chosen: RefineOptions, seed: int, positives: NDArray[np.int64], negatives: NDArray[np.int64]
) -> dict[str, Any]:
    """What a refine round records in :attr:`Results.params` (labelled item ids, sorted):
    enough for :meth:`SearchEngine.redo` to make it again."""
    return {
        "kind": "refine",
        "model": chosen.model,
        "positives": positives.tolist(),
        "negatives": negatives.tolist(),
        "random_negatives": chosen.random_negatives,
        "negative_weight": chosen.negative_weight,
        "seed": seed,
    }
