"""Catalog sets: ordinary v1 catalogs (shards) in one directory, under one small manifest.

A catalog set is how a collection outgrows one catalog: more images are a new shard, and the
same engine answers over all shards (:class:`~clipbranches.sharded.ShardedEngine`, dispatched
by :meth:`SearchEngine.open <clipbranches.engine.SearchEngine.open>`). On disk::

    <set>/catalogset.json   format name + version, total count, the one identity every shard
                            shares (dim, encoder, head, quantizer), and the shards in order:
                            relative path, item count, global row offset, id range, the SHA-256
                            of the shard's manifest.json and its codes checksum
    <set>/shard-00000/      an ordinary catalog (codes, items, index, head, thumbnails)
    <set>/shard-00001/      ...

Global rows are the shards' rows one after the other, in manifest order: the set behaves as the
one catalog made of the concatenation of its shards. Item ids are unique across the set.

Atomicity: :meth:`CatalogSet.create` builds the whole set in a hidden sibling directory and
renames it into place; :meth:`CatalogSet.add_shard` puts the new shard in place first (a hidden
directory renamed to its final name) and then replaces the manifest with
:func:`~clipbranches._io.atomic_write`. A crash at any point leaves the previous set valid (at
worst an unlisted shard directory, which no reader opens and the next add skips).

:meth:`CatalogSet.open` checks every shard before any work: it exists, opens (sizes and
headers, as :meth:`Catalog.open`), its manifest is byte for byte the one recorded, and its count
and identity are the set's. Each failure is a typed error naming the shard
(:class:`~clipbranches.exceptions.ShardMissingError`,
:class:`~clipbranches.exceptions.ShardCorruptError`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from clipbranches._io import atomic_write, check_path, dir_identity, fsync_dir, read_bytes
from clipbranches.exceptions import (
    CatalogExistsError,
    CatalogFormatError,
    CatalogNotFoundError,
    ClipBranchesError,
    InvalidArgumentError,
    ShardCorruptError,
    ShardMissingError,
    UnknownItemError,
)
from clipbranches.store.catalog import THUMBS_DIR, Catalog
from clipbranches.store.items import ITEM_COLUMNS, ITEMS_FILE, parquet_errors
from clipbranches.store.quantize import CalibratedQuantizer, FixedRangeQuantizer, quantizer_from_params
from clipbranches.store.set_manifest import (
    SET_FORMAT,
    SET_MANIFEST,
    SET_VERSION,
    ShardInfo,
    check_disjoint_ids,
    check_same_identity,
    id_range,
    identity_of,
    manifest_bytes,
    open_shard,
    parse_manifest,
    place_shard,
    ranges_overlap,
    sha256,
    shard_info,
)

__all__ = ["SET_FORMAT", "SET_MANIFEST", "SET_VERSION", "CatalogSet", "SetCodes", "ShardInfo", "is_catalog_set"]

#: The lock file serialising writers of one set (``add_shard``).
LOCK_FILE = ".catalogset.lock"
#: What a shard may be given as: a catalog's path or an open catalog.
ShardSource = str | os.PathLike[str] | Catalog


def is_catalog_set(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` looks like a catalog set: its manifest (a regular file) names this
    format. :meth:`CatalogSet.open` checks the rest."""
    try:
        manifest = json.loads(read_bytes(Path(path) / SET_MANIFEST, "catalog set manifest", error=CatalogFormatError))
    except (ClipBranchesError, OSError, ValueError, TypeError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == SET_FORMAT


class SetCodes:
    """The codes of a catalog set in global row order, gathered from the shards on demand: a
    read-only stand-in for a catalog's ``codes`` that supports ``len``, ``shape`` and indexing
    by a row, a slice or an integer array (never materialises the whole set)."""

    dtype = np.dtype(np.uint8)
    ndim = 2

    def __init__(
        self,
        offsets: NDArray[np.int64],
        dim: int,
        fetch: Callable[[int, NDArray[np.int64]], NDArray[np.uint8]],
    ) -> None:
        self._offsets = offsets
        self._dim = dim
        self._fetch = fetch

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self._offsets[-1]), self._dim)

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def __getitem__(self, key: Any) -> NDArray[np.uint8]:
        n = len(self)
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            row = int(key) + n if int(key) < 0 else int(key)
            if not 0 <= row < n:
                raise IndexError(f"row {int(key)} out of range for {n} items")
            return self.gather(np.array([row], np.int64))[0]
        if isinstance(key, slice):
            return self.gather(np.arange(n, dtype=np.int64)[key])
        rows = np.asarray(key)
        if rows.ndim != 1 or rows.dtype == np.bool_ or not np.issubdtype(rows.dtype, np.integer):
            raise IndexError("set codes are indexed by a row, a slice or a 1-d array of rows")
        rows = rows.astype(np.int64)
        rows = np.where(rows < 0, rows + n, rows)
        if len(rows) and (rows.min() < 0 or rows.max() >= n):
            raise IndexError(f"rows out of range for {n} items")
        return self.gather(rows)

    def gather(self, rows: NDArray[np.int64]) -> NDArray[np.uint8]:
        """The codes of global ``rows`` (in range), in the given order, ``(len(rows), dim)``."""
        out = np.empty((len(rows), self._dim), np.uint8)
        shard = np.searchsorted(self._offsets, rows, side="right") - 1
        for i in np.unique(shard).tolist():
            at = np.flatnonzero(shard == i)
            out[at] = self._fetch(i, rows[at] - self._offsets[i])
        return out


class CatalogSet:
    """An open, read-only catalog set. Use :meth:`open` or :meth:`create`.

    It offers the part of :class:`Catalog`'s surface an engine and its results use, over global
    rows: ``len``, ``dim``, ``codes`` (a :class:`SetCodes` gather view), ``item_ids``,
    ``items``, ``find``, ``quantizer``, ``encoder``, ``codes_checksum``, ``has_index``,
    ``build_index``, ``check_unchanged``, ``verify``.
    """

    def __init__(self, path: Path, manifest: dict[str, Any], shards: list[Catalog], infos: list[ShardInfo]) -> None:
        self._path = path
        self._manifest = manifest
        self.shards: tuple[Catalog, ...] = tuple(shards)
        self.infos: tuple[ShardInfo, ...] = tuple(infos)
        counts = np.array([info.count for info in infos], np.int64)
        self.offsets: NDArray[np.int64] = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.offsets.flags.writeable = False
        self._item_ids: NDArray[np.int64] | None = None
        self._items: pl.DataFrame | None = None
        self._template: pl.DataFrame | None = None
        self._runs: list[bool | None] = [None] * len(infos)
        self._dir = dir_identity(path)

    # -- opening and creating ------------------------------------------------------------

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> CatalogSet:
        """Open the set at ``path``, checking every shard first (cheap: no data file is read;
        :meth:`verify` checks the contents).

        Raises
        ------
        CatalogNotFoundError
            No directory at ``path``.
        CatalogFormatError
            A set manifest that is missing or not this format.
        ShardMissingError
            A listed shard that is not there (every missing one is named).
        ShardCorruptError
            A shard that does not open, whose manifest is not the one recorded, or whose count
            or identity is not the set's; ids in two shards.
        """
        root = check_path(path, "catalog set")
        if not root.is_dir():
            raise CatalogNotFoundError(f"{root}: no such catalog set")
        manifest_path = root / SET_MANIFEST
        manifest = parse_manifest(read_bytes(manifest_path, "catalog set manifest", error=CatalogFormatError), root)
        infos: list[ShardInfo] = manifest["shards"]
        missing = [info.name for info in infos if not os.path.isdir(root / info.name)]
        if missing:
            listed = ", ".join(missing)
            raise ShardMissingError(
                f"{root}: shard{'s' if len(missing) > 1 else ''} {listed} of the catalog set missing "
                f"(no directory {root / missing[0]})",
                missing[0],
            )
        identity = manifest["identity"]
        shards = [open_shard(root, info, identity) for info in infos]
        catalog_set = cls(root, manifest["raw"], shards, infos)
        catalog_set._check_ids_unique(on_open=True)
        return catalog_set

    @classmethod
    def create(cls, path: str | os.PathLike[str], shards: Iterable[ShardSource], *, move: bool = False) -> CatalogSet:
        """Make a catalog set at ``path`` from existing catalogs (copied in, or moved in with
        ``move=True``), in the given order, and open it.

        The set is assembled in a hidden sibling directory and renamed into place at the end:
        an interrupted create leaves nothing at ``path`` (and moved catalogs are moved back
        where possible).

        Raises
        ------
        CatalogExistsError
            Something exists at ``path``.
        CatalogNotFoundError
            The parent of ``path`` or a source catalog does not exist.
        InvalidArgumentError
            No shard; catalogs of different identities (dim, encoder, head, quantizer); an item
            id in two catalogs.
        """
        target = check_path(path, "catalog set")
        sources = [_source(s) for s in shards]
        if not sources:
            raise InvalidArgumentError("a catalog set needs at least one shard (catalog)")
        if not target.parent.is_dir():
            raise CatalogNotFoundError(f"cannot create {target}: {target.parent} is not a directory")
        if os.path.lexists(target):
            raise CatalogExistsError(f"{target}: already exists")
        opened = [Catalog.open(s) for s in sources]
        identity = identity_of(opened[0].manifest)
        for source, catalog in zip(sources, opened, strict=True):
            check_same_identity(identity, catalog, source)
        id_lists = [catalog.item_ids for catalog in opened]
        check_disjoint_ids([str(s) for s in sources], id_lists)
        staging = target.parent / f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
        staging.mkdir()
        placed: list[tuple[Path, Path, bool]] = []
        try:
            infos: list[ShardInfo] = []
            offset = 0
            for i, (source, catalog) in enumerate(zip(sources, opened, strict=True)):
                name = _shard_name(i)
                moved = place_shard(source, catalog, staging / name, move)
                placed.append((staging / name, source, moved))
                infos.append(shard_info(staging / name, name, offset, id_lists[i]))
                offset += infos[-1].count
            atomic_write(staging / SET_MANIFEST, manifest_bytes(identity, infos), "catalog set manifest")
            if os.path.lexists(target):
                raise CatalogExistsError(f"{target}: appeared while the set was being made")
            os.rename(staging, target)
            fsync_dir(target.parent)
        except BaseException:
            for dest, source, moved in reversed(placed):
                if moved:
                    with contextlib.suppress(OSError):  # best effort: the original error is reported
                        os.rename(dest, source)
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return cls.open(target)

    def add_shard(self, source: ShardSource, *, move: bool = False) -> CatalogSet:
        """Append a catalog (copied in, or moved with ``move=True``) as the set's last shard, and
        return the set reopened (this handle keeps its old view).

        The shard is put in place under a fresh name first, then the manifest is replaced
        atomically: a failure or crash before that leaves the set as it was.

        Raises
        ------
        CatalogNotFoundError, CatalogFormatError
            ``source`` is not a catalog.
        InvalidArgumentError
            Another identity (dim, encoder, head, quantizer) than the set's, or an item id the
            set already has.
        """
        src = _source(source)
        with _writer_lock(self._path):
            current = CatalogSet.open(self._path)  # the latest manifest: another writer may have added
            catalog = Catalog.open(src)
            check_same_identity(current.identity, catalog, src)
            ids = catalog.item_ids
            for i, info in enumerate(current.infos):
                if ranges_overlap(info.ids, id_range(ids)):
                    check_disjoint_ids([info.name, str(src)], [current.shards[i].item_ids, ids])
            index = len(current.infos)
            while os.path.lexists(self._path / _shard_name(index)):
                index += 1  # an unlisted shard an interrupted add left behind: never reused
            name = _shard_name(index)
            staging = self._path / f".{name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
            dest = self._path / name
            moved = False
            try:
                moved = place_shard(src, catalog, staging, move)
                os.rename(staging, dest)
                info = shard_info(dest, name, len(current), ids)
                data = manifest_bytes(current.identity, [*current.infos, info])
                atomic_write(self._path / SET_MANIFEST, data, "catalog set manifest")
            except BaseException:
                leftover = dest if os.path.lexists(dest) else staging
                if moved and os.path.lexists(leftover):
                    with contextlib.suppress(OSError):  # best effort: the original error is reported
                        os.rename(leftover, src)  # back where it came from
                elif os.path.lexists(leftover):
                    shutil.rmtree(leftover, ignore_errors=True)
                raise
        return CatalogSet.open(self._path)

    def add_codes(self, codes: Any, items: pl.DataFrame | None = None, **catalog_options: Any) -> CatalogSet:
        """Write a new catalog from ``codes`` and ``items`` (as :meth:`Catalog.create`; the
        set's quantizer and encoder by default) and append it as a shard: :meth:`add_shard`."""
        catalog_options.setdefault("quantizer", self.quantizer)
        catalog_options.setdefault("encoder", self.encoder)
        catalog_options.setdefault("head", self._manifest["identity"].get("head"))
        incoming = self._path / f".incoming-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            Catalog.create(incoming, codes, items, **catalog_options)
            return self.add_shard(incoming, move=True)
        finally:
            shutil.rmtree(incoming, ignore_errors=True)

    @staticmethod
    def is_catalog_set(path: str | os.PathLike[str]) -> bool:
        """:func:`is_catalog_set`."""
        return is_catalog_set(path)

    # -- what it holds -------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The set directory."""
        return self._path

    @property
    def manifest(self) -> dict[str, Any]:
        """A copy of the parsed ``catalogset.json``."""
        return json.loads(json.dumps(self._manifest))

    @property
    def identity(self) -> dict[str, Any]:
        """dim, encoder, head and quantizer, shared by every shard."""
        return json.loads(json.dumps(self._manifest["identity"]))

    @property
    def dim(self) -> int:
        return int(self._manifest["identity"]["dim"])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def quantizer(self) -> FixedRangeQuantizer | CalibratedQuantizer:
        return quantizer_from_params(self._manifest["identity"]["quantizer"])

    @property
    def encoder(self) -> dict[str, Any] | None:
        encoder: dict[str, Any] | None = self.identity["encoder"]
        return encoder

    @property
    def codes(self) -> SetCodes:
        """The codes of every shard in global row order, gathered on demand (no copy of the set)."""
        return SetCodes(self.offsets, self.dim, lambda i, rows: self.shards[i].codes[rows])

    @property
    def codes_checksum(self) -> str:
        """One checksum of the set's codes: SHA-256 over the shards' codes checksums, in order
        (what ties a saved session to this set)."""
        joined = "\n".join(info.codes_blake3 for info in self.infos)
        return "set-sha256:" + sha256(joined.encode())

    @property
    def item_ids(self) -> NDArray[np.int64]:
        """The id of every global row (read-only; every shard's ids, read on first access)."""
        if self._item_ids is None:
            ids = np.concatenate([s.item_ids for s in self.shards]) if self.shards else np.zeros(0, np.int64)
            ids.flags.writeable = False
            self._item_ids = ids
        return self._item_ids

    @property
    def items(self) -> pl.DataFrame:
        """Every shard's items, one after the other (read on first access; prefer
        :meth:`items_of` for a few rows)."""
        if self._items is None:
            self._items = pl.concat([s.items for s in self.shards], how="diagonal_relaxed")
        return self._items

    def locate(self, rows: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """``(shard, local row)`` of each global row."""
        rows = np.asarray(rows, np.int64)
        shard = (np.searchsorted(self.offsets, rows, side="right") - 1).astype(np.int64)
        return shard, rows - self.offsets[shard]

    def ids_of(self, rows: NDArray[np.int64]) -> NDArray[np.int64]:
        """The ids of global ``rows``, in order, read from their shards only."""
        rows = np.asarray(rows, np.int64)
        out = np.empty(len(rows), np.int64)
        shard, local = self.locate(rows)
        for i in np.unique(shard).tolist():
            at = shard == i
            out[at] = self.shards[i].item_ids[local[at]]
        return out

    def items_of(self, rows: NDArray[np.int64]) -> pl.DataFrame:
        """The items of global ``rows``, in order, read from their shards only (every column
        any shard has, null where a row's shard lacks it, in the order :attr:`items` has)."""
        rows = np.asarray(rows, np.int64)
        template = self._items_template()
        if not len(rows):
            return template
        shard, local = self.locate(rows)
        parts = [template]
        for i in np.unique(shard).tolist():
            at = np.flatnonzero(shard == i)
            part = self.shards[i].items[local[at].tolist()]
            parts.append(part.with_columns(pl.Series("__at", at, dtype=pl.Int64)))
        return pl.concat(parts, how="diagonal_relaxed").sort("__at").drop("__at")

    def _items_template(self) -> pl.DataFrame:
        """No rows, the columns and types of :attr:`items`, from the shards' parquet metadata."""
        if self._template is None:
            frames = []
            for shard in self.shards:
                with shard._open_items() as f, parquet_errors(shard.path / ITEMS_FILE):
                    frame = pl.DataFrame(schema=pl.read_parquet_schema(f))
                missing = [pl.lit(None, dtype=t).alias(c) for c, t in ITEM_COLUMNS.items() if c not in frame.columns]
                frames.append(frame.with_columns(missing) if missing else frame)
            self._template = pl.concat(frames, how="diagonal_relaxed")
        return self._template

    def thumbnail_path(self, row: int) -> Path:
        """Where the thumbnail of global ``row`` would be (in its shard's thumbnail cache)."""
        shard, local = self.locate(np.array([row], np.int64))
        catalog = self.shards[int(shard[0])]
        catalog.check_unchanged()
        return catalog.path / THUMBS_DIR / f"{int(catalog.item_ids[int(local[0])])}.jpg"

    def find(self, ids: Iterable[int], what: str = "item") -> NDArray[np.int64]:
        """Global rows of item ``ids`` (in the given order).

        Raises
        ------
        InvalidArgumentError
            Ids that are not integers.
        UnknownItemError
            Ids no shard has (the message names them).
        """
        if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
            raise InvalidArgumentError(f"{what} ids must be a list of integers, not {type(ids).__name__}")
        try:
            raw = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids)
        except (ValueError, TypeError) as err:
            raise InvalidArgumentError(f"{what} ids must be a flat list of integers: {err}") from None
        if raw.size == 0:
            return np.zeros(0, np.int64)
        if raw.ndim != 1 or raw.dtype == np.bool_ or not np.issubdtype(raw.dtype, np.integer):
            kind = f"shape {raw.shape}" if raw.ndim != 1 else str(raw.dtype)
            raise InvalidArgumentError(f"{what} ids must be a flat list of integers, got {kind}")
        big = raw > np.iinfo(np.int64).max if raw.dtype.kind == "u" else np.zeros(len(raw), bool)
        wanted = np.where(big, -1, raw).astype(np.int64)
        rows = np.zeros(len(wanted), np.int64)
        found = np.zeros(len(wanted), bool)
        for i, (info, shard) in enumerate(zip(self.infos, self.shards, strict=True)):
            if info.ids is None:
                continue
            near = ~found & ~big & (wanted >= info.ids[0]) & (wanted <= info.ids[1])
            if not near.any():
                continue
            at = np.flatnonzero(near)
            if self._id_runs(i):  # ids lo..hi in row order: the row is the id's distance from lo
                rows[at] = wanted[at] - info.ids[0] + self.offsets[i]
                found[at] = True
                continue
            local, hit = shard._lookup(wanted[near])
            rows[at[hit]] = local[hit] + self.offsets[i]
            found[at[hit]] = True
        if not found.all():
            missing = raw[~found]
            raise UnknownItemError(
                f"{what} ids not in the catalog set: {missing[:10].tolist()}{' ...' if len(missing) > 10 else ''}"
            )
        return rows

    def _id_runs(self, shard: int) -> bool:
        """Whether the shard's ids are its smallest id plus its row (checked once)."""
        if self._runs[shard] is None:
            info, ids = self.infos[shard], self.shards[shard].item_ids
            span = info.ids is not None and info.ids[1] - info.ids[0] + 1 == info.count
            self._runs[shard] = bool(span and (len(ids) < 2 or (np.diff(ids) == 1).all()))
        return bool(self._runs[shard])

    @property
    def has_index(self) -> bool:
        """Whether every shard has an index file."""
        return all(s.has_index for s in self.shards)

    def build_index(self, **options: Any) -> None:
        """Build the index of every shard that has none (:meth:`Catalog.build_index`)."""
        for shard in self.shards:
            if not shard.has_index:
                shard.build_index(**options)

    def check_unchanged(self) -> None:
        """:meth:`Catalog.check_unchanged` of the set directory and every shard (adding a shard
        does not change what this handle sees: its shards are still there).

        Raises
        ------
        CatalogChangedError
        """
        from clipbranches.exceptions import CatalogChangedError

        if dir_identity(self._path) != self._dir:
            raise CatalogChangedError(f"{self._path}: the catalog set was replaced (or removed) on disk; open it again")
        for shard in self.shards:
            shard.check_unchanged()

    def verify(self) -> None:
        """Checksum every data file of every shard against its manifest (reads the whole set).

        Raises
        ------
        ShardCorruptError
            A shard's file does not match its checksum (the shard is named; the cause is the
            :class:`ChecksumError`).
        """
        for info, shard in zip(self.infos, self.shards, strict=True):
            try:
                shard.verify()
            except ClipBranchesError as e:
                raise ShardCorruptError(f"{self._path}: shard {info.name}: {e}", info.name) from e

    def __repr__(self) -> str:
        return f"CatalogSet({str(self._path)!r}, shards={len(self.shards)}, items={len(self)}, dim={self.dim})"

    # -- checks --------------------------------------------------------------------------

    def _check_ids_unique(self, *, on_open: bool) -> None:
        """No id in two shards: shards whose recorded id ranges overlap have their ids compared
        (disjoint ranges, the usual case of appended shards, cost nothing)."""
        for i, a in enumerate(self.infos):
            for j in range(i + 1, len(self.infos)):
                b = self.infos[j]
                if not ranges_overlap(a.ids, b.ids):
                    continue
                both = np.intersect1d(self.shards[i].item_ids, self.shards[j].item_ids)
                if len(both):
                    raise ShardCorruptError(
                        f"{self._path}: shards {a.name} and {b.name} both hold ids {both[:10].tolist()}: "
                        "ids must be unique in a catalog set",
                        b.name,
                    )


# -- helpers -----------------------------------------------------------------------------


def _shard_name(index: int) -> str:
    return f"shard-{index:05d}"


def _source(source: ShardSource) -> Path:
    if isinstance(source, Catalog):
        return source.path
    return check_path(source, "catalog")


@contextmanager
def _writer_lock(root: Path) -> Iterator[None]:
    """An exclusive lock on the set's lock file for one writer at a time (readers need none)."""
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
