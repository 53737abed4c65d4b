"""Catalogs: the memory-mapped codes of every item plus their metadata (format version 1).

A catalog is a directory: ``manifest.json``, ``codes.u8`` (N x dim uint8, row-major),
``items.parquet`` (one row per item, in code order). The native core owns the format; this
module is the Python face of it: streaming creation, cheap opening, zero-copy access.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import polars as pl
from numpy.typing import NDArray

from clipbranches import _core
from clipbranches._io import dir_identity, open_regular
from clipbranches.exceptions import (
    CatalogChangedError,
    CatalogFormatError,
    ClipBranchesError,
    DimensionMismatchError,
    IndexNotFoundError,
    InvalidArgumentError,
    UnknownItemError,
)
from clipbranches.options import DEFAULT_K
from clipbranches.store.boxes import Box, BoxHits, BoxSet, as_box_set
from clipbranches.store.index import INDEX_FILE, Index
from clipbranches.store.inputs import MAX_DIM, CodesInput, check_int_argument, code_chunks, metadata_json
from clipbranches.store.items import ITEM_COLUMNS, ITEMS_FILE, check_schema, checked_ids, parquet_errors, prepare_items
from clipbranches.store.quantize import CalibratedQuantizer, FixedRangeQuantizer, Quantizer, quantizer_from_params

__all__ = ["HEAD_FILE", "ITEM_COLUMNS", "THUMBS_DIR", "Catalog"]

#: The file that makes a directory a catalog (the format's manifest, written last).
MANIFEST_FILE = "manifest.json"
#: Files a catalog may carry beside its codes and items (written by ingest through ``attach``).
HEAD_FILE = "head.safetensors"
THUMBS_DIR = "thumbs"


class Catalog:
    """An open, read-only catalog.

    Use :meth:`open` or :meth:`create`; the constructor is internal.

    Attributes
    ----------
    codes : numpy.ndarray
        uint8 ``(len(catalog), dim)``, a read-only view of the memory-mapped codes (no copy).
    items : polars.DataFrame
        One row per item, in code order (read on first access).
    """

    def __init__(self, core: _core.Catalog, identity: tuple[int, int] | None = None) -> None:
        self._core = core
        #: (st_dev, st_ino) of the directory opened: what :meth:`check_unchanged` compares.
        self._identity = identity if identity is not None else dir_identity(Path(core.path))
        self._manifest: dict[str, Any] = json.loads(core.manifest_json())
        self._codes: NDArray[np.uint8] | None = None
        self._items: pl.DataFrame | None = None
        self._index: Index | None = None
        self._item_ids: NDArray[np.int64] | None = None
        self._ids_are_rows: bool | None = None
        self._id_order: NDArray[np.int64] | None = None

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Catalog:
        """Open the catalog at ``path``.

        Cheap whatever the size: it reads the manifest, checks every file's size and header,
        and memory-maps the codes without reading them. :meth:`verify` checks the contents.

        Raises
        ------
        CatalogNotFoundError, CatalogFormatError, CatalogIOError
        """
        root = os.fspath(path)
        for _ in range(3):
            # The directory is the same before and after the native open, so every file the
            # open read came from it (a create with overwrite swaps in another directory).
            before = dir_identity(Path(root))
            core = _core.Catalog.open(root)
            identity = dir_identity(Path(root))
            if identity is not None and identity == before:
                break
        else:
            raise CatalogChangedError(f"{root}: the catalog was replaced on disk while being opened; open it again")
        catalog = cls(core, identity)
        catalog._check_items_schema()
        return catalog

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        codes: CodesInput,
        items: pl.DataFrame | None = None,
        *,
        quantizer: Quantizer | None = None,
        encoder: Mapping[str, Any] | None = None,
        head: Mapping[str, Any] | None = None,
        dim: int | None = None,
        overwrite: bool = False,
        attach: Callable[[Path], None] | None = None,
    ) -> Catalog:
        """Write a new catalog at ``path`` and open it.

        Parameters
        ----------
        path
            Target directory; its parent must exist. The catalog is written into a hidden
            sibling and renamed into place at the end, so an interrupted create leaves any
            previous catalog at ``path`` untouched.
        codes
            uint8 ``(n, dim)`` array, or an iterable of such chunks (streamed to disk one at a
            time, so a 100M-item catalog never sits in memory). Quantize float embeddings first
            (``quantizer.quantize(x)``).
        items
            One row per item in code order. Columns ``id`` (unique integers; row numbers if
            absent), ``uri``, ``caption``, ``width``, ``height`` (nulls if absent) and any
            others. ``None`` gives ids 0..n-1 and null metadata.
        quantizer
            How the codes were made (default: the paper's fixed range); stored in the manifest.
        encoder, head
            JSON-ready identities of the encoder and head that produced the embeddings.
        dim
            Code width; needed only when ``codes`` is an empty iterable.
        overwrite
            Replace an existing catalog at ``path`` (atomically). Without it, an existing
            path is an error.
        attach
            Called with the staging directory once codes and items are written: put files that
            belong with the catalog there (heads, thumbnails), so they appear with it atomically.

        Raises
        ------
        CatalogExistsError, CatalogNotFoundError, DimensionMismatchError, InvalidArgumentError
        """
        if dim is not None:
            dim = check_int_argument("dim", dim, 1, MAX_DIM)
        quantizer = FixedRangeQuantizer() if quantizer is None else quantizer
        if not isinstance(quantizer, Quantizer):
            raise InvalidArgumentError(f"quantizer must be a Quantizer, got {type(quantizer).__name__}")
        meta = metadata_json(quantizer, encoder, head)
        # Refuse a target that cannot be written before the first chunk of a stream is made.
        _core.CatalogWriter.check_target(os.fspath(path), overwrite)
        chunks = code_chunks(codes)
        first = next(chunks, None)
        if first is not None:
            width = int(first.shape[1])
        elif dim is not None:
            width = dim
        else:
            raise InvalidArgumentError("codes are empty: pass dim= to create an empty catalog")
        if dim is not None and dim != width:
            raise DimensionMismatchError(f"codes have {width} columns but dim={dim} was given")
        quantizer.check_dim(width)
        # With all codes in hand, check the items before writing anything; a stream's length is
        # known only at its end.
        if items is not None and not isinstance(items, pl.DataFrame):
            raise InvalidArgumentError(f"items must be a polars DataFrame or None, not {type(items).__name__}")
        table = prepare_items(items, len(codes)) if isinstance(codes, np.ndarray) else None
        writer = _core.CatalogWriter(os.fspath(path), width, overwrite)
        try:
            if first is not None:
                writer.append(first)
            for chunk in chunks:
                writer.append(chunk)
            if table is None:
                table = prepare_items(items, writer.count)
            table.write_parquet(Path(writer.staging_dir) / "items.parquet")
            if attach is not None:
                attach(Path(writer.staging_dir))
            writer.finish(meta)
        except BaseException:
            writer.abort()
            raise
        return cls.open(path)

    @staticmethod
    def is_catalog(path: str | os.PathLike[str]) -> bool:
        """Whether ``path`` looks like a catalog directory: its manifest (a regular file) names
        this format. :meth:`open` checks the rest."""
        try:
            with open_regular(Path(path) / MANIFEST_FILE, "manifest", error=CatalogFormatError) as f:
                manifest = json.loads(f.read(16 << 20))
        except (ClipBranchesError, OSError, ValueError):
            return False
        return isinstance(manifest, dict) and manifest.get("format") == "clipbranches-catalog"

    @property
    def path(self) -> Path:
        """The catalog directory."""
        return Path(self._core.path)

    @property
    def dim(self) -> int:
        """Bytes per code."""
        return self._core.dim

    def __len__(self) -> int:
        return self._core.count

    @property
    def manifest(self) -> dict[str, Any]:
        """A copy of the parsed ``manifest.json``."""
        return json.loads(json.dumps(self._manifest))

    @property
    def quantizer(self) -> FixedRangeQuantizer | CalibratedQuantizer:
        """The quantizer the codes were made with (use it on queries too)."""
        return quantizer_from_params(self._manifest["quantizer"])

    @property
    def encoder(self) -> dict[str, Any] | None:
        """The encoder identity recorded at creation, or None."""
        encoder: dict[str, Any] | None = self.manifest["encoder"]
        return encoder

    @property
    def codes(self) -> NDArray[np.uint8]:
        """Read-only uint8 ``(len(self), dim)`` view of the memory-mapped codes."""
        if self._codes is None:
            self._codes = self._core.codes()
        return self._codes

    @property
    def items(self) -> pl.DataFrame:
        """Item metadata, one row per code, read from ``items.parquet`` on first access.

        Raises
        ------
        CatalogFormatError
            An items table that is not what the catalog's writer writes (the message says what).
        CatalogChangedError
            The catalog was replaced on disk since this handle opened it.
        """
        if self._items is None:
            items = self._read_items(None)
            ids = checked_ids(items["id"], self.path / ITEMS_FILE)
            missing = [pl.lit(None, dtype=t).alias(c) for c, t in ITEM_COLUMNS.items() if c not in items.columns]
            items = items.with_columns(missing) if missing else items
            if self._item_ids is None:
                self._item_ids = ids
            self._items = items
        return self._items

    def items_of(self, rows: NDArray[np.int64]) -> pl.DataFrame:
        """The items of ``rows``, in order (the same call as :meth:`CatalogSet.items_of`)."""
        rows = np.asarray(rows, np.int64)
        return self.items[rows.tolist()] if len(rows) else self.items.clear()

    def thumbnail_path(self, row: int) -> Path:
        """Where the thumbnail of ``row`` would be (the file exists once ingest made it).

        Raises :class:`CatalogChangedError` when the catalog was replaced on disk since it was
        opened (the file would be another catalog's)."""
        self.check_unchanged()
        return self.path / THUMBS_DIR / f"{int(self.item_ids[int(row)])}.jpg"

    @property
    def item_ids(self) -> NDArray[np.int64]:
        """The ``id`` of every row (read-only), read from the items file on first access.

        Raises
        ------
        CatalogFormatError
            Null, duplicate or out-of-range ids (or no ``id`` column).
        CatalogChangedError
            The catalog was replaced on disk since this handle opened it.
        """
        if self._item_ids is None:
            ids = self._items["id"] if self._items is not None else self._read_items(["id"])["id"]
            self._item_ids = checked_ids(ids, self.path / ITEMS_FILE)
        return self._item_ids

    def check_unchanged(self) -> None:
        """Check that the directory at :attr:`path` is still the catalog this handle opened.

        A create with ``overwrite=True`` swaps a new directory into place; a handle opened
        before it keeps its memory-mapped codes, but whatever it reads lazily by path (items,
        index, heads, thumbnails) would come from the new catalog. Every such read calls this
        first (and the items read again after), so a handle sees one catalog for its whole life.

        Raises
        ------
        CatalogChangedError
            The catalog was replaced (or removed) on disk: open it again.
        """
        if dir_identity(self.path) != self._identity:
            raise CatalogChangedError(
                f"{self.path}: the catalog was replaced (or removed) on disk after this handle opened it; open it again"
            )

    def _open_items(self) -> IO[bytes]:
        """The items file, opened only if it is a regular file inside this (unchanged) catalog."""
        self.check_unchanged()
        path = self.path / ITEMS_FILE
        try:
            link = stat.S_ISLNK(os.lstat(path).st_mode)
        except OSError:
            link = False  # open_regular words the error
        if link:
            raise CatalogFormatError(
                f"{path}: is a symbolic link; a catalog's files must be regular files inside it (refusing to follow it)"
            )
        return open_regular(path, "items table", error=CatalogFormatError)

    def _read_items(self, columns: list[str] | None) -> pl.DataFrame:
        path = self.path / ITEMS_FILE
        with self._open_items() as f, parquet_errors(path):
            schema = pl.read_parquet_schema(f)
            if columns is not None and any(c not in schema for c in columns):
                raise CatalogFormatError(f"{path}: no {columns[0]!r} column")
            f.seek(0)
            table = pl.read_parquet(f, columns=columns)
        self.check_unchanged()  # replaced while it was being read: the table may be the new one's
        if table.height != len(self):
            raise CatalogFormatError(f"{path}: has {table.height} rows but the catalog has {len(self)} codes")
        return table

    def find(self, ids: Iterable[int], what: str = "item") -> NDArray[np.int64]:
        """Catalog rows of item ``ids`` (in the given order).

        Raises
        ------
        InvalidArgumentError
            Ids that are not integers.
        UnknownItemError
            Ids the catalog does not have (the message names them, ``what`` says whose they
            are: "positive", "negative", ...).
        """
        if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
            raise InvalidArgumentError(f"{what} ids must be a list of integers, not {type(ids).__name__}")
        try:
            raw = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids)
        except (ValueError, TypeError) as err:  # ragged nested lists
            raise InvalidArgumentError(f"{what} ids must be a flat list of integers: {err}") from None
        if raw.size == 0:
            return np.zeros(0, np.int64)
        if raw.ndim != 1 or raw.dtype == np.bool_ or not np.issubdtype(raw.dtype, np.integer):
            kind = f"shape {raw.shape}" if raw.ndim != 1 else str(raw.dtype)
            raise InvalidArgumentError(f"{what} ids must be a flat list of integers, got {kind}")
        if raw.dtype.kind == "u" and raw.max() > np.iinfo(np.int64).max:
            # Item ids are int64: a larger unsigned id cannot be in any catalog (no wrap-around).
            raise UnknownItemError(f"{what} ids not in the catalog: {raw[raw > np.iinfo(np.int64).max][:10].tolist()}")
        wanted = raw.astype(np.int64)
        rows, found = self._lookup(wanted)
        if not found.all():
            missing = wanted[~found]
            raise UnknownItemError(
                f"{what} ids not in the catalog: {missing[:10].tolist()}{' ...' if len(missing) > 10 else ''}"
            )
        return rows

    def _lookup(self, ids: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
        """Rows of item ``ids`` and whether each was found (rows of missing ids are 0)."""
        item_ids = self.item_ids
        n = len(item_ids)
        if self._ids_are_rows is None:
            self._ids_are_rows = bool(
                n == 0 or (item_ids[0] == 0 and item_ids[-1] == n - 1 and (np.diff(item_ids) == 1).all())
            )
        if self._ids_are_rows:  # the common case (ids 0..n-1): no lookup table
            found = (ids >= 0) & (ids < n)
            return np.where(found, ids, 0), found
        if self._id_order is None:
            self._id_order = np.argsort(item_ids, kind="stable")
        order = self._id_order
        at = np.minimum(np.searchsorted(item_ids[order], ids), max(n - 1, 0))
        found = item_ids[order][at] == ids if n else np.zeros(len(ids), bool)
        return np.where(found, order[at], 0), found

    def build_index(self, *, block_items: int = _core.DEFAULT_BLOCK_ITEMS) -> Index:
        """Build the block index of this catalog (in parallel) and save it atomically to
        ``<catalog>/index/blocks.cbi``, replacing any earlier one.

        Parameters
        ----------
        block_items
            Items per block (k-d tree leaf), a multiple of 128 up to 65536; the default is the
            native core's ``DEFAULT_BLOCK_ITEMS`` (4096).
        """
        block_items = check_int_argument("block_items", block_items, 1, 1 << 16, "a multiple of 128 up to 65536")
        self.check_unchanged()
        core = _core.BlockIndex.build(self.codes, self.codes_checksum, block_items)
        # Installed only if the directory is still the catalog the index was built from,
        # checked natively just before the rename.
        dev, ino = self._identity if self._identity is not None else (0, 0)
        core.save(self.path / INDEX_FILE, (self.path, dev, ino))
        self._index = Index(core)
        return self._index

    @property
    def has_index(self) -> bool:
        """Whether an index file exists (it may still be stale or corrupt)."""
        return self._index is not None or os.path.lexists(self.path / INDEX_FILE)

    @property
    def index(self) -> Index:
        """The catalog's index, opened on first access (header and checksum checked).

        Raises
        ------
        IndexNotFoundError, IndexFormatError, StaleIndexError
        """
        if self._index is None:
            self.check_unchanged()
            path = self.path / INDEX_FILE
            if not os.path.lexists(path):
                raise IndexNotFoundError(f"{self.path}: no index yet; build it with catalog.build_index()")
            self._index = Index(_core.BlockIndex.open(path, self.codes_checksum, len(self), self.dim))
        return self._index

    def query_boxes(
        self, boxes: BoxSet | Sequence[Box], *, method: Literal["auto", "index", "scan"] = "auto"
    ) -> BoxHits:
        """Every item inside at least one of ``boxes``: ``(rows, box_counts, group_counts)``.

        ``boxes`` is a :class:`~clipbranches.store.boxes.BoxSet` (what the learners hold) or a
        sequence of :class:`~clipbranches.store.boxes.Box`, converted once. ``method="index"``
        uses the block index, ``"scan"`` the fused scan of the codes (no index needed),
        ``"auto"`` whichever :meth:`choose_method` predicts to be faster. The native core makes
        that choice and runs the query in one call. Both engines give the same hits; the scan
        lists them by ascending row, the index in index order.

        Raises
        ------
        InvalidQueryError
            Boxes that cannot be right (see :func:`~clipbranches.store.boxes.as_box_set`).
        InvalidArgumentError
            Another method.
        IndexNotFoundError, IndexFormatError, StaleIndexError
            ``method="index"`` without a usable index (``"auto"`` also opens an existing one).
        """
        box_set = as_box_set(boxes, self.dim)
        if method == "index" or (method == "auto" and self.has_index):
            index: _core.BlockIndex | None = self.index._core
        else:
            index = None
        rows, box_counts, group_counts = _core.query_boxes(self.codes, index, box_set, method)
        return BoxHits(rows, box_counts, group_counts)

    def choose_method(self, boxes: BoxSet | Sequence[Box]) -> Literal["index", "scan"]:
        """The engine ``query_boxes(method="auto")`` uses: the scan without an index, otherwise
        the one the index's native cost model (:meth:`Index.estimate`) predicts to be faster."""
        if not self.has_index:
            return "scan"
        index_ns, scan_ns = self.index._core.estimate(as_box_set(boxes, self.dim))
        return "scan" if scan_ns < index_ns else "index"

    def nearest(
        self, query_codes: NDArray[np.uint8], k: int = DEFAULT_K
    ) -> tuple[NDArray[np.uint32], NDArray[np.int64]]:
        """Exact k nearest items by squared L2 over the codes, ties by smaller row.

        Parameters
        ----------
        query_codes
            uint8 ``(m, dim)`` or ``(dim,)``, quantized like the catalog (``catalog.quantizer``).
        k
            Neighbours per query; fewer if the catalog is smaller.

        Returns
        -------
        distances : uint32 ``(m, k)``, rows : int64 ``(m, k)``, nearest first.
        """
        queries = np.asarray(query_codes)
        if queries.dtype != np.uint8:
            raise InvalidArgumentError(f"query codes must be uint8 (quantize first), got {queries.dtype}")
        queries = np.ascontiguousarray(queries.reshape(1, -1) if queries.ndim == 1 else queries)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise DimensionMismatchError(f"query codes have shape {queries.shape}; the catalog has dim {self.dim}")
        if k < 1:
            raise InvalidArgumentError(f"k must be at least 1, got {k}")
        k = min(k, len(self))
        if k == 0:
            return np.zeros((len(queries), 0), np.uint32), np.zeros((len(queries), 0), np.int64)
        distances, rows = _core.nearest(self.codes, queries, k)
        return distances, rows.astype(np.int64)

    @property
    def codes_checksum(self) -> str:
        """The BLAKE3 checksum of the codes file, as the manifest records it: what ties an index
        or a saved session to this catalog's contents."""
        checksum: str = self._manifest["files"]["codes.u8"]["blake3"]
        return checksum

    def verify(self) -> None:
        """Checksum every data file against the manifest (reads the whole catalog).

        Raises
        ------
        ChecksumError
            A file's contents changed since the catalog was written.
        CatalogChangedError
            The catalog was replaced on disk since this handle opened it.
        """
        self.check_unchanged()
        self._core.verify()
        self.check_unchanged()

    def __repr__(self) -> str:
        return f"Catalog({str(self.path)!r}, items={len(self)}, dim={self.dim})"

    def _check_items_schema(self) -> None:
        """The items table must have one row per code, an integer ``id`` column, the standard
        columns with their types and no reserved column (reads only parquet metadata)."""
        path = self.path / ITEMS_FILE
        with self._open_items() as f, parquet_errors(path):
            schema = pl.read_parquet_schema(f)
            f.seek(0)
            rows = pl.scan_parquet(f).select(pl.len()).collect().item()
        check_schema(schema, rows, len(self), path)
