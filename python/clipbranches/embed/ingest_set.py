"""Ingest an image collection into a catalog set: one shard catalog per ``shard_size`` images,
one after another in this process or through one Ray Data pipeline on a cluster.

The listing (:func:`~clipbranches.embed.ingest.list_source`) is cut into consecutive slices of
``shard_size`` rows; slice ``i`` is ingested by :func:`~clipbranches.embed.ingest.ingest` into
shard ``i``. A shard's item ids and ``source_row`` count from its slice's first row, so ids are
unique across the set and, when no file is skipped, are the single catalog's ids (0..n-1 in
source order). Exact copies are found within a shard only (a copy in another shard is kept).

Heads: every shard is made with the same heads (the set's one identity, and queries must be
encoded as every item was). Given heads are used for all shards; without heads, the first
shard is ingested first with the default heads (fitted on that shard's images), and its head
file is then loaded and used for every other shard.

Resumable: the work happens in ``.<name>.ingest-set`` next to the target, bound to its source
and settings by a stamp (``source.json``: the listing's digest, the encoder, the heads, the
sizes). A finished shard is a catalog there and is kept by the next run with the same stamp; an
interrupted shard resumes from its finished chunks (its own ``.shard-NNNNN.ingest`` work folder,
as :func:`ingest` does). Once every shard is there the shards are moved into a
:class:`~clipbranches.store.catalog_set.CatalogSet` (made in a hidden sibling and renamed into
place: nothing half-made ever stands at the target) and the work folder is removed.

``cluster`` (``"auto"``, ``"local"`` or a Ray address, see :mod:`clipbranches.cluster`): the
shards run through one Ray Data pipeline (:mod:`clipbranches.embed.ingest_ray`: files decoded
by tasks on CPU workers, encoded, projected and quantized by a pool of actors, ``num_gpus=1``
each where the cluster has GPUs), with the heads from the work folder's heads file; the
driver writes each chunk as its rows come back and each shard's catalog once its chunks are
all there, with the single ingest's own code (the same ids and codes). Without heads, the first
shard is still ingested here first, to fit the heads every shard is made with. The work folder
must be visible to the workers (a shared file system, or one machine). One progress bar
covers the run.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from clipbranches._io import atomic_write, check_path
from clipbranches.embed.chunks import clear_work, read_stamp, source_digest, work_lock
from clipbranches.embed.ingest import IngestReport, ingest, list_source
from clipbranches.exceptions import CatalogExistsError, CatalogNotFoundError, ClipBranchesError, InvalidArgumentError
from clipbranches.store.catalog import HEAD_FILE, Catalog
from clipbranches.store.catalog_set import CatalogSet

if TYPE_CHECKING:
    from clipbranches.embed.encoders import Encoder
    from clipbranches.embed.head import AnyHeads

__all__ = ["SetIngestReport", "ingest_set"]

#: The stamp binding a set's work folder to its source and settings.
STAMP_FILE = "source.json"
#: The heads every shard after the first is made with (Ray workers load them from here).
HEADS_FILE = "heads.safetensors"


@dataclass
class SetIngestReport:
    """What :func:`ingest_set` did: items and shards written, shards kept from an interrupted
    run, chunks reused, skipped files (with why) and near-duplicates of all shards."""

    items: int = 0
    shards: int = 0
    shard_items: list[int] = field(default_factory=list)
    resumed_shards: int = 0
    resumed_chunks: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    near_duplicates: list[tuple[str, str]] = field(default_factory=list)
    default_heads: str = ""
    """The default heads in words when the first shard fitted them (no heads given), else empty."""


def ingest_set(
    source: str | os.PathLike[str],
    set_path: str | os.PathLike[str],
    *,
    encoder: Encoder,
    heads: AnyHeads | None = None,
    shard_size: int,
    cluster: str | None = None,
    chunk_size: int = 1024,
    batch_size: int = 64,
    thumbnails: bool = True,
    overwrite: bool = False,
    drop_near_duplicates: bool = False,
    keep_features: bool = False,
    progress: bool = False,
    on_shard: Callable[[int, int], None] | None = None,
) -> tuple[CatalogSet, SetIngestReport]:
    """Ingest ``source`` into a new catalog set at ``set_path``, ``shard_size`` images per shard
    (see the module docstring: heads, ids, resuming, ``cluster``).

    The other arguments are :func:`~clipbranches.embed.ingest.ingest`'s, applied to each shard.
    ``on_shard(done, shards)`` is called on the driver after each shard is written (an exception
    raised there stops the ingest, resumable).

    Raises
    ------
    InvalidArgumentError
        ``shard_size``, ``chunk_size`` or ``batch_size`` below 1; heads for other image dims
        than the encoder's; nothing to ingest.
    CatalogExistsError
        Something is at ``set_path`` (a finished set included) and ``overwrite`` is False.
    ClusterError
        The cluster cannot be reached (``cluster`` given).
    """
    if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
        raise InvalidArgumentError(f"shard_size must be an integer >= 1, got {shard_size!r}")
    if chunk_size < 1 or batch_size < 1:
        raise InvalidArgumentError("chunk_size and batch_size must be >= 1")
    target = check_path(set_path, "catalog set")
    if not target.parent.is_dir():
        raise CatalogNotFoundError(f"cannot ingest into {target}: the folder {target.parent} does not exist")
    if os.path.lexists(target) and not overwrite:
        raise _exists(target)
    if heads is None:
        from clipbranches.embed.head.defaults import check_default_heads

        check_default_heads(encoder)
    elif heads.config.image_dim != encoder.image_dim:
        raise InvalidArgumentError(
            f"the head takes {heads.config.image_dim}-d image features, the encoder gives {encoder.image_dim}"
        )
    listing = list_source(source)
    if len(listing) == 0:
        raise InvalidArgumentError(f"{source}: no images to ingest")
    starts = list(range(0, len(listing), shard_size))
    work = target.with_name(f".{target.name}.ingest-set")
    from clipbranches.embed.ingest import _weights_digest

    settings = {
        "source": source_digest(listing["uri"].to_list()),
        "rows": len(listing),
        "encoder": encoder.identity,
        "head": "default, fitted on the first shard" if heads is None else heads.config.to_dict(),
        "weights": "" if heads is None else _weights_digest(heads),
        "shard_size": shard_size,
        "chunk": chunk_size,
        "thumbnails": thumbnails,
        "drop_near_duplicates": drop_near_duplicates,
        "keep_features": keep_features,
    }
    wanted = json.loads(json.dumps(settings, default=str))
    report = SetIngestReport(shards=len(starts))
    options = {
        "chunk_size": chunk_size,
        "batch_size": batch_size,
        "thumbnails": thumbnails,
        "drop_near_duplicates": drop_near_duplicates,
        "keep_features": keep_features,
    }
    with work_lock(work, f"ingest into {target}"):
        if read_stamp(work / STAMP_FILE) != wanted:
            clear_work(work)  # another source or other settings: nothing to keep
            atomic_write(work / STAMP_FILE, json.dumps(wanted).encode(), "ingest stamp")
        paths = [work / f"shard-{i:05d}" for i in range(len(starts))]
        done = [_finished(p) for p in paths]
        report.resumed_shards = sum(done)
        sizes = [min(shard_size, len(listing) - s) for s in starts]
        bar = _progress_bar(len(listing), sum(n for n, d in zip(sizes, done, strict=True) if d)) if progress else None
        try:
            reports: dict[int, IngestReport] = {}

            def local(i: int, shard_heads: AnyHeads | None) -> None:
                reports[i] = _ingest_slice(listing, starts[i], sizes[i], paths[i], encoder, shard_heads, options, bar)
                _shard_done(i)

            def _shard_done(i: int) -> None:
                done[i] = True
                if on_shard is not None:
                    on_shard(sum(done), len(paths))

            if not done[0] and (heads is None or cluster is None):
                local(0, heads)  # without heads: the first shard fits them
                if heads is None:
                    report.default_heads = reports[0].default_heads
            heads_file = work / HEADS_FILE
            if heads is None or not heads_file.is_file():
                from clipbranches.embed.head import save_heads

                if heads is None:
                    heads_file = paths[0] / HEAD_FILE  # the heads the first shard fitted
                else:
                    save_heads(heads, heads_file)
            rest = [i for i in range(len(paths)) if not done[i]]
            if rest:
                from clipbranches.embed.head import load_heads

                device = "cpu" if cluster is not None else getattr(encoder, "device", "cpu")
                shared = load_heads(heads_file, device=device)
            if rest and cluster is None:
                for i in rest:
                    local(i, shared)
            elif rest and cluster is not None:
                from clipbranches.embed.ingest_ray import ShardJob, ingest_on_ray

                jobs = [ShardJob(i, starts[i], sizes[i], paths[i]) for i in rest]
                for i, kept_chunks in ingest_on_ray(
                    cluster,
                    listing,
                    jobs,
                    encoder=encoder,
                    heads=shared,
                    heads_file=heads_file,
                    chunk_size=chunk_size,
                    thumbnails=thumbnails,
                    keep_features=keep_features,
                    batch_size=batch_size,
                    bar=bar,
                ):
                    # Every chunk is written: the single ingest finds them and writes the catalog.
                    reports[i] = _ingest_slice(listing, starts[i], sizes[i], paths[i], encoder, shared, options)
                    reports[i].resumed_chunks = kept_chunks
                    _shard_done(i)
        finally:
            if bar is not None:
                bar.close()
        for i in sorted(reports):
            shard_report = reports[i]
            report.resumed_chunks += shard_report.resumed_chunks
            report.skipped += shard_report.skipped
            report.near_duplicates += shard_report.near_duplicates
        catalog_set = _assemble(target, paths, overwrite)
        shutil.rmtree(work, ignore_errors=True)
    report.shard_items = [info.count for info in catalog_set.infos]
    report.items = len(catalog_set)
    return catalog_set, report


def _ingest_slice(
    listing: pl.DataFrame,
    start: int,
    size: int,
    path: Path,
    encoder: Encoder,
    heads: AnyHeads | None,
    options: dict[str, Any],
    bar: Any = None,
) -> IngestReport:
    """Ingest ``listing[start : start + size]`` into the shard catalog at ``path``."""
    chunk_size = int(options["chunk_size"])
    advanced = [0]

    def advance(done: int, chunks: int) -> None:
        if bar is not None:
            step = min(chunk_size, size - (done - 1) * chunk_size)
            advanced[0] += step
            bar.update(step)

    _, shard_report = ingest(
        path,  # names the slice in messages only: the rows are given
        path,
        encoder=encoder,
        heads=heads,
        listing=listing.slice(start, size),
        first_row=start,
        overwrite=True,  # a shard that did not open is made again
        progress=False,
        on_chunk=advance,
        **options,
    )
    if bar is not None and size > advanced[0]:  # chunks resumed from an interrupted run
        bar.update(size - advanced[0])
    return shard_report


def _assemble(target: Path, paths: list[Path], overwrite: bool) -> CatalogSet:
    """The finished shards moved into a set at ``target`` (replacing what is there with
    ``overwrite``; the old one comes back if the new set cannot be made)."""
    old: Path | None = None
    if os.path.lexists(target):
        if not overwrite:
            raise _exists(target)
        old = target.with_name(f".{target.name}.old-{os.getpid()}-{secrets.token_hex(4)}")
        os.rename(target, old)
    try:
        catalog_set = CatalogSet.create(target, paths, move=True)
    except BaseException:
        if old is not None and not os.path.lexists(target):
            os.rename(old, target)
        raise
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()
    return catalog_set


def _finished(path: Path) -> bool:
    """Whether a shard's catalog is there and opens."""
    if not path.is_dir():
        return False
    try:
        Catalog.open(path)
    except (ClipBranchesError, OSError, ValueError):
        return False
    return True


def _progress_bar(total: int, initial: int) -> Any:
    """The run's one bar over all images (a seam for tests)."""
    from clipbranches.embed.encoders.files import progress_bar

    return progress_bar(total, initial)


def _exists(target: Path) -> CatalogExistsError:
    return CatalogExistsError(f"{target} exists; pass overwrite=True (--overwrite on the command line) to replace it")
