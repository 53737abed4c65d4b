"""Ingest an image collection into a catalog: list, encode, apply the image head, quantize,
write (through the store API), with thumbnails for the UI.

Resumable: work happens in chunks (:mod:`clipbranches.embed.chunks`) inside a work directory next to
the target (``.<name>.ingest``); each finished chunk is written atomically, so after a Ctrl-C or
a kill the next run with the same source continues from the last finished chunk. The
catalog itself is written only at the end, by :meth:`Catalog.create` (hidden sibling + atomic
rename), so no half-written catalog ever stands at the target.

Sources: a folder of images (recursively; a sidecar ``<stem>.txt`` gives the caption), or a CSV
/ parquet file with a ``path`` (or ``uri`` / ``url``) column and an optional ``caption`` column;
relative paths are taken from the table's folder.

Each item's ``width`` and ``height`` are its image's as decoded (before any shrinking). A file
with the same bytes as an earlier one (a copy) is skipped as ``"duplicate of <first path>"``;
items whose codes are identical are reported as near-duplicates and dropped only on request.
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from clipbranches._io import check_path, read_bytes
from clipbranches.embed.chunks import EncodeReport, encode_resumable, work_lock
from clipbranches.embed.codes import project, write_catalog
from clipbranches.exceptions import CatalogExistsError, CatalogNotFoundError, InvalidArgumentError
from clipbranches.store.catalog import Catalog
from clipbranches.store.quantize import FixedRangeQuantizer

if TYPE_CHECKING:
    from clipbranches.embed.encoders import Encoder
    from clipbranches.embed.head import AnyHeads

__all__ = ["IMAGE_SUFFIXES", "IngestReport", "ingest", "list_source"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"})


@dataclass
class IngestReport(EncodeReport):
    """What an ingest did: items written, files skipped (with why), chunks reused from an
    interrupted run, and near-duplicates as ``(path, path of the first item with the same
    codes)`` (dropped from the catalog only with ``drop_near_duplicates=True``); ``sizes`` and
    ``digests`` have one row per item written."""

    items: int = 0
    near_duplicates: list[tuple[str, str]] = field(default_factory=list)
    default_heads: str = ""
    """The default heads in words when ingest made them (no heads given), else empty."""


def list_source(source: str | os.PathLike[str]) -> pl.DataFrame:
    """The items to ingest, as ``uri`` (absolute path or URL) and ``caption`` (may be null)."""
    source = check_path(source, "source")
    if source.is_dir():
        # Anything but a folder with an image name is listed: a FIFO, a socket or a device there
        # becomes a skipped file with its reason (images are opened only if they are regular).
        files = sorted(
            p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.exists() and not p.is_dir()
        )
        captions = [_sidecar(p.with_suffix(".txt")) for p in files]
        return pl.DataFrame(
            {"uri": [str(p.resolve()) for p in files], "caption": captions},
            schema={"uri": pl.String, "caption": pl.String},
        )
    if source.suffix.lower() in (".csv", ".parquet") and (source.exists() or source.is_symlink()):
        # Read through open_regular: a FIFO (or a socket, a device) in its place is refused, not waited on.
        data = io.BytesIO(read_bytes(source, "source table"))
        try:
            table = pl.read_csv(data) if source.suffix.lower() == ".csv" else pl.read_parquet(data)
        except (pl.exceptions.PolarsError, OSError, ValueError) as e:
            raise InvalidArgumentError(f"{source}: not a readable {source.suffix.lower()[1:]} table ({e})") from e
        column = next((c for c in ("path", "uri", "url") if c in table.columns), None)
        if column is None:
            raise InvalidArgumentError(f"{source}: needs a 'path', 'uri' or 'url' column, has {table.columns}")
        uris = [
            u if "://" in u else str((source.parent / u).resolve()) for u in table[column].cast(pl.String).to_list()
        ]
        caption_column = (
            table["caption"].cast(pl.String)
            if "caption" in table.columns
            else pl.Series([None] * len(uris), dtype=pl.String)
        )
        return pl.DataFrame({"uri": uris, "caption": caption_column})
    raise InvalidArgumentError(f"{source}: not a folder of images, a .csv or a .parquet file")


def _sidecar(path: Path) -> str | None:
    """The caption in a sidecar text file, if it is a readable regular file."""
    if not path.is_file():
        return None
    try:
        return read_bytes(path, "caption file").decode("utf-8", "replace").strip()
    except InvalidArgumentError:
        return None


def ingest(
    source: str | os.PathLike[str],
    catalog_path: str | os.PathLike[str],
    *,
    encoder: Encoder,
    heads: AnyHeads | None = None,
    chunk_size: int = 1024,
    batch_size: int = 64,
    thumbnails: bool = True,
    overwrite: bool = False,
    drop_near_duplicates: bool = False,
    keep_features: bool = False,
    progress: bool = False,
    on_chunk: Callable[[int, int], None] | None = None,
    listing: pl.DataFrame | None = None,
    first_row: int = 0,
) -> tuple[Catalog, IngestReport]:
    """Ingest ``source`` into a new catalog at ``catalog_path`` (see the module docstring).

    ``heads`` maps the encoder's image features to the 32-d space (its config must match the
    encoder's dims); None gives the encoder's default heads, which need no captions
    (:func:`clipbranches.embed.head.defaults.default_heads`).
    Returns the opened catalog and what happened (skipped files with reasons,
    chunks reused from an interrupted run). Item ids are 0..n-1 in source order, skipped files
    left out; ``source_row`` keeps each item's row in the source listing.

    Exact duplicates (the same bytes as an earlier file) are skipped; near-duplicates (the same
    codes as an earlier item) are listed in the report and left out of the catalog only with
    ``drop_near_duplicates=True``.

    ``keep_features=True`` keeps the image tower's features (float16, ``features.npy``) so that
    other heads can re-project the catalog later without encoding again
    (:func:`clipbranches.embed.codes.reproject`); it costs ``2 * image_dim`` bytes per item.

    ``on_chunk(done, chunks)`` is called after each chunk is safely written (progress for a
    caller's own display; an exception raised there stops the ingest, resumable).

    ``listing``: the rows to ingest, already listed (a slice of :func:`list_source`'s table;
    ``source`` then only names them); ``first_row``: that slice's first row in the whole
    listing, added to every item's id and ``source_row`` (how a catalog set's shards get
    globally unique ids, :mod:`clipbranches.embed.ingest_set`).
    """
    target = check_path(catalog_path, "catalog")
    if not target.parent.is_dir():
        problem = "is not a folder" if target.parent.exists() else "does not exist"
        raise CatalogNotFoundError(f"cannot ingest into {target}: the folder {target.parent} {problem}")
    if target.exists() and not overwrite:
        raise _exists(target)
    fitted = heads is None  # the default heads, fitted on this catalog's images once they are encoded
    if heads is None:
        from clipbranches.embed.head.defaults import check_default_heads

        check_default_heads(encoder)
    elif heads.config.image_dim != encoder.image_dim:
        raise InvalidArgumentError(
            f"the head takes {heads.config.image_dim}-d image features, the encoder gives {encoder.image_dim}"
        )
    if chunk_size < 1 or batch_size < 1:
        raise InvalidArgumentError("chunk_size and batch_size must be >= 1")
    if first_row < 0:
        raise InvalidArgumentError(f"first_row must be >= 0, got {first_row}")
    listing = list_source(source) if listing is None else listing.select("uri", "caption")
    work = target.with_name(f".{target.name}.ingest")
    fingerprint, width = chunk_layout(len(listing), encoder, heads, chunk_size, keep_features)
    if heads is not None:
        heads.eval()
    out_dim = 0 if heads is None else heads.config.out_dim
    with_features = keep_features or fitted
    report = IngestReport()
    with work_lock(work, f"ingest into {target}"):
        if target.exists() and not overwrite:  # made while this run was listing
            raise _exists(target)
        positions, codes = encode_resumable(
            encoder,
            listing["uri"].to_list(),
            work,
            transform=_head_codes(heads, with_features),
            width=width,
            dtype=np.uint8,
            fingerprint=fingerprint,
            chunk_size=chunk_size,
            batch_size=batch_size,
            thumbnails=thumbnails,
            progress=progress,
            report=report,
            on_chunk=on_chunk,
        )
        codes, features = codes[:, :out_dim], codes[:, out_dim:]
        uris = listing["uri"].to_list()
        keep = _first_copies(report.digests)
        if heads is None:
            from clipbranches.embed.codes import project_images
            from clipbranches.embed.head.defaults import default_heads, describe

            half = np.ascontiguousarray(features).view(np.float16)
            unique = half[keep == np.arange(len(keep))]  # exact copies count once
            heads = default_heads(encoder, unique)
            report.default_heads = describe(heads, len(unique))
            codes = project_images(heads, half)
        report.skipped += [(uris[positions[i]], f"duplicate of {uris[positions[first]]}") for i, first in _later(keep)]
        near = _first_copies(_code_keys(codes), within=keep)
        report.near_duplicates = [
            (uris[positions[i]], uris[positions[first]]) for i, first in _later(near) if keep[i] == i
        ]
        chosen = near if drop_near_duplicates else keep
        kept = chosen == np.arange(len(chosen))
        positions, codes, sizes = positions[kept], codes[kept], report.sizes[kept]
        kept_features = np.ascontiguousarray(features[kept]).view(np.float16) if keep_features else None
        report.sizes, report.digests = sizes, report.digests[kept]  # one row per item, as written
        items = listing[positions.tolist()].with_columns(
            pl.Series("width", sizes[:, 0], dtype=pl.Int32),
            pl.Series("height", sizes[:, 1], dtype=pl.Int32),
            pl.Series("source_row", positions + first_row, dtype=pl.Int64),
        )
        items = items.with_row_index("id").with_columns(pl.col("id").cast(pl.Int64) + first_row)

        catalog = write_catalog(
            target,
            codes,
            items,
            encoder=encoder.identity,
            heads=heads,
            thumbnails=(work / "thumbs", positions) if thumbnails else None,
            features=kept_features,
            overwrite=overwrite,
        )
        shutil.rmtree(work, ignore_errors=True)
    report.items = len(catalog)
    return catalog, report


def chunk_layout(
    rows: int, encoder: Encoder, heads: AnyHeads | None, chunk_size: int, keep_features: bool
) -> tuple[dict[str, Any], int]:
    """What an ingest's chunks of a ``rows``-long listing depend on besides the listing itself
    (the encoder, the heads, the chunk size...: the work folder's fingerprint), and the width
    of a chunk's rows: each item's codes (none when the default heads are fitted at the end),
    then its float16 features as bytes (kept on request, and always needed to fit the heads).
    The listing's own identity and content are bound to the work by the chunks' stamp (each
    uri with its file's size and mtime)."""
    fingerprint = {
        "rows": rows,
        "encoder": encoder.identity,
        "head": "default, fitted on the catalog" if heads is None else heads.config.to_dict(),
        "weights": "" if heads is None else _weights_digest(heads),
        "chunk": chunk_size,
        "keep_features": keep_features,
    }
    out_dim = 0 if heads is None else heads.config.out_dim
    with_features = keep_features or heads is None
    return fingerprint, out_dim + (2 * encoder.image_dim if with_features else 0)


def _first_copies(keys: NDArray[Any], within: NDArray[np.int64] | None = None) -> NDArray[np.int64]:
    """For each row, the first row with the same key (itself when it is the first); an empty
    key has no copies. ``within``: an earlier answer whose later copies stay copies of their
    first and are left out of this comparison."""
    first = np.arange(len(keys), dtype=np.int64) if within is None else within.copy()
    candidates = np.flatnonzero(first == np.arange(len(keys)))
    if len(candidates) == 0:
        return first
    subset = keys[candidates]
    _, index, inverse = np.unique(subset, return_index=True, return_inverse=True)
    firsts = candidates[index[inverse.ravel()]]
    if subset.dtype.kind == "U":
        firsts = np.where(subset == "", candidates, firsts)
    first[candidates] = firsts
    return first


def _later(first: NDArray[np.int64]) -> list[tuple[int, int]]:
    """``(row, its first copy)`` for each row that is a later copy, in order."""
    rows = np.flatnonzero(first != np.arange(len(first)))
    return list(zip(rows.tolist(), first[rows].tolist(), strict=True))


def _code_keys(codes: NDArray[np.uint8]) -> NDArray[np.void]:
    """Each item's codes as one comparable value.

    Near-duplicates are items with identical codes: the search works on the codes alone, so
    such items score the same for every query and can never be told apart there (a distance
    threshold would be a knob that also merges distinct images)."""
    rows = np.ascontiguousarray(codes)
    return rows.view(np.dtype((np.void, rows.shape[1] * rows.itemsize))).ravel()


def _exists(target: Path) -> CatalogExistsError:
    """The error for a target that is there already, naming the library's and the CLI's way out."""
    return CatalogExistsError(f"{target} exists; pass overwrite=True (--overwrite on the command line) to replace it")


def _weights_digest(heads: AnyHeads) -> str:
    """A digest of the head's weights: chunks hold codes, so another head means other codes."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(heads.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().double().numpy().tobytes())
    return digest.hexdigest()


def _head_codes(heads: AnyHeads | None, with_features: bool) -> Callable[[NDArray[np.float32]], NDArray[np.uint8]]:
    """Image features -> the head's unit vectors -> uint8 codes (the paper's quantizer; none
    without heads), followed by the features themselves as float16 bytes when wanted."""
    quantizer = FixedRangeQuantizer()

    def transform(features: NDArray[np.float32]) -> NDArray[np.uint8]:
        codes = (
            np.zeros((len(features), 0), np.uint8) if heads is None else project(heads, features, "image", quantizer)
        )
        if not with_features:
            return codes
        half = np.ascontiguousarray(features, np.float16).view(np.uint8)
        return np.concatenate([codes, half], axis=1)

    return transform
