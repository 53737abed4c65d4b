"""The shards of a catalog set ingested on a Ray cluster, as one Ray Data pipeline.

:func:`ingest_on_ray` is what :func:`~clipbranches.embed.ingest_set.ingest_set` runs with
``cluster``. Each shard is ingested as :func:`~clipbranches.embed.ingest.ingest` would ingest
it, chunk by chunk into its own work folder (``.shard-NNNNN.ingest``), except that its missing
chunks' images are encoded by the pipeline rather than in this process:

1. the rows of every chunk still to do, of all the shards, become one dataset
   (``ray.data.from_arrow``: shard, chunk, position, uri);
2. ``map_batches(decode_batch)``: Ray tasks on CPU workers read and decode each file as a
   single ingest does (:func:`~clipbranches.embed.encoders.files.open_image`: transparency on
   white, shrunk to the towers' working size; its size and digest taken), write its thumbnail,
   and pass its pixels on; a file that cannot be read is a row with its reason;
3. ``map_batches(EncodeBatch)``: a pool of Ray actors (``num_gpus=1`` each where the cluster
   has GPUs, else one CPU each), each opening the encoder from its identity and the set's
   heads file once, encodes the pixels and projects and quantizes them with the heads (the
   single ingest's transform);
4. the driver consumes the stream, gathers each chunk's rows (in any order) and writes the
   chunk file once all its rows are in; once all of a shard's chunks are there, the caller
   finishes the shard with :func:`ingest`, which finds every chunk done and writes the
   catalog (duplicates, near-duplicates, items, thumbnails) exactly as a single ingest does:
   the same ids and codes.

Resumable: a chunk is written atomically as soon as its rows are in, and a shard's work folder
is bound to its slice and settings by the single ingest's stamp; an interrupted run keeps the
finished shards and chunks and feeds only the missing chunks' rows to the pipeline. The
driver's progress bar advances as rows come back. The work folder must be visible to the
workers (thumbnails are written there): a shared file system, or one machine.
"""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from clipbranches._optional import require
from clipbranches.embed.chunks import chunk_path, open_work, save_thumbnail, work_lock, write_chunk
from clipbranches.embed.ingest import chunk_layout
from clipbranches.exceptions import ClipBranchesError

if TYPE_CHECKING:
    from clipbranches.embed.encoders import Encoder
    from clipbranches.embed.head import AnyHeads

__all__ = ["DECODE_BATCH", "EncodeBatch", "ShardJob", "decode_batch", "ingest_on_ray"]

#: Files one decode task reads (a dataset block holds a few such batches).
DECODE_BATCH = 32
#: The pipeline's input rows.
_ROWS = {"shard": pl.Int64, "chunk": pl.Int64, "pos": pl.Int64, "uri": pl.String, "thumbs": pl.String}
#: Rows per block of the input dataset (the unit the decode tasks are scheduled by).
BLOCK_ROWS = 128


@dataclass(frozen=True)
class ShardJob:
    """One shard to ingest: its number, its slice of the listing and its catalog's path."""

    index: int
    start: int
    size: int
    path: Path

    @property
    def work(self) -> Path:
        """The shard's work folder (where :func:`ingest` of ``path`` works)."""
        return self.path.with_name(f".{self.path.name}.ingest")


def decode_batch(batch: Any) -> Any:
    """The pipeline's decode stage: each row's file read and decoded as a single ingest does;
    its size before shrinking, its digest, its thumbnail (when the row names a thumbnail
    folder) and its RGB pixels, or the reason it was skipped."""
    import pyarrow as pa  # type: ignore[import-untyped]

    from clipbranches.embed.encoders.files import _decode, _quiet_large_images

    _quiet_large_images()
    columns = batch.to_pydict()
    out: dict[str, list[Any]] = {
        name: [] for name in ("reason", "width", "height", "digest", "pixels", "pixel_width", "pixel_height")
    }
    for uri, position, thumbs in zip(columns["uri"], columns["pos"], columns["thumbs"], strict=True):
        image, size, digest = _decode(uri)
        if isinstance(image, str):
            values: tuple[Any, ...] = (image, 0, 0, "", b"", 0, 0)
        else:
            if thumbs:
                save_thumbnail(image, Path(thumbs), int(position))
            values = (None, size[0], size[1], digest or "", image.tobytes(), image.width, image.height)
        for name, value in zip(out, values, strict=True):
            out[name].append(value)
    kept = batch.select(["shard", "chunk", "pos", "uri"])
    types = {"reason": pa.string(), "digest": pa.string(), "pixels": pa.binary()}
    for name, column in out.items():
        kept = kept.append_column(name, pa.array(column, type=types.get(name, pa.int64())))
    return kept


class EncodeBatch:
    """The pipeline's encode stage, one per Ray actor: the encoder opened from its identity
    and the heads from the set's heads file, once; each batch's decoded images encoded,
    projected and quantized (the single ingest's transform), as one ``row`` of bytes each."""

    def __init__(self, identity: dict[str, Any], heads_file: str, keep_features: bool) -> None:
        from clipbranches.embed.encoders import make_encoder
        from clipbranches.embed.head import load_heads
        from clipbranches.embed.ingest import _head_codes

        # No device named: CUDA where Ray gave this actor a GPU, else the CPU.
        self.encoder = make_encoder(identity)
        heads = load_heads(heads_file, device=getattr(self.encoder, "device", "cpu"))
        heads.eval()
        self.transform = _head_codes(heads, keep_features)

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa
        from PIL import Image

        columns = batch.select(["reason", "pixels", "pixel_width", "pixel_height"]).to_pydict()
        decoded = [i for i, reason in enumerate(columns["reason"]) if reason is None]
        images = [
            Image.frombytes("RGB", (columns["pixel_width"][i], columns["pixel_height"][i]), columns["pixels"][i])
            for i in decoded
        ]
        rows: list[bytes] = [b""] * len(columns["reason"])
        if images:
            encoded = np.ascontiguousarray(self.transform(self.encoder.encode_images(images)))
            for i, row in zip(decoded, encoded, strict=True):
                rows[i] = row.tobytes()
        kept = batch.drop_columns(["pixels", "pixel_width", "pixel_height"])
        return kept.append_column("row", pa.array(rows, type=pa.binary()))


def ingest_on_ray(
    cluster: str,
    listing: pl.DataFrame,
    jobs: Sequence[ShardJob],
    *,
    encoder: Encoder,
    heads: AnyHeads,
    heads_file: Path,
    chunk_size: int,
    batch_size: int,
    thumbnails: bool,
    keep_features: bool,
    bar: Any = None,
) -> Iterator[tuple[int, int]]:
    """Encode the missing chunks of every shard in ``jobs`` through one Ray Data pipeline
    (module docstring); yields ``(shard, chunks it had already)`` as each shard's chunks are
    all written, for the caller to finish it with :func:`ingest` (this generator holds the
    shards' work folders meanwhile; call it from one thread). ``heads`` are the heads in
    ``heads_file`` (the chunks' fingerprint names their weights).

    Raises
    ------
    MissingDependencyError
        Ray Data is not installed.
    ClusterError
        The cluster cannot be reached, or the pipeline failed there (an error of this
        library's raised by a worker is raised as itself).
    """
    require("Ingesting on a Ray cluster (Ray Data)", "cluster", ("ray", "pandas", "pyarrow"))
    from clipbranches.cluster import _ray, connect

    ray = _ray()
    connect(cluster)
    with contextlib.ExitStack() as held:
        todo: list[pl.DataFrame] = []  # the rows of each chunk still to encode
        missing: dict[int, set[int]] = {}  # shard -> its chunks still to write
        resumed: dict[int, int] = {}
        widths: dict[int, int] = {}  # shard -> the width of its chunks' rows
        for job in jobs:
            held.enter_context(work_lock(job.work, f"ingest into {job.path}"))
            uris = listing["uri"].slice(job.start, job.size).to_list()
            fingerprint, width = chunk_layout(job.size, encoder, heads, chunk_size, keep_features)
            done = open_work(job.work, uris, fingerprint=fingerprint, chunk_size=chunk_size, width=width)
            widths[job.index] = width
            resumed[job.index] = len(done)
            chunks = [c for c in range(math.ceil(job.size / chunk_size)) if c not in done]
            missing[job.index] = set(chunks)
            if bar is not None:
                bar.update(job.size - sum(min(chunk_size, job.size - c * chunk_size) for c in chunks))
            positions = np.concatenate(
                [np.arange(c * chunk_size, min(job.size, (c + 1) * chunk_size)) for c in chunks]
                or [np.zeros(0, np.int64)]
            ).astype(np.int64)
            todo.append(
                pl.DataFrame(
                    {
                        "shard": np.full(len(positions), job.index, np.int64),
                        "chunk": positions // chunk_size,
                        "pos": positions,
                        "uri": [uris[p] for p in positions.tolist()],
                        "thumbs": str(job.work / "thumbs") if thumbnails else "",
                    },
                    schema={
                        "shard": pl.Int64,
                        "chunk": pl.Int64,
                        "pos": pl.Int64,
                        "uri": pl.String,
                        "thumbs": pl.String,
                    },
                )
            )
        for job in jobs:
            if not missing[job.index]:  # every chunk resumed
                yield job.index, resumed[job.index]
        rows = pl.concat(todo) if todo else pl.DataFrame()
        if len(rows) == 0:
            return
        by_index = {job.index: job for job in jobs}
        parts: dict[tuple[int, int], list[pl.DataFrame]] = {}
        got: dict[tuple[int, int], int] = {}
        for batch in _run(ray, rows, encoder, heads_file, batch_size, keep_features):
            if bar is not None:
                bar.update(len(batch))
            for (shard, chunk), part in batch.partition_by(["shard", "chunk"], as_dict=True).items():
                key = (int(shard), int(chunk))
                parts.setdefault(key, []).append(part)
                got[key] = got.get(key, 0) + len(part)
                job = by_index[key[0]]
                if got[key] < min(chunk_size, job.size - key[1] * chunk_size):
                    continue
                _write(job.work, key[1], pl.concat(parts.pop(key)), widths[key[0]])
                missing[key[0]].discard(key[1])
                if not missing[key[0]]:
                    yield key[0], resumed[key[0]]
        lost = sorted(i for i, chunks in missing.items() if chunks)
        if lost:
            from clipbranches.cluster import ClusterError

            raise ClusterError(f"the ingest pipeline ended without all the rows of shards {lost}; run it again")


def _run(
    ray: Any, rows: pl.DataFrame, encoder: Encoder, heads_file: Path, batch_size: int, keep_features: bool
) -> Iterator[pl.DataFrame]:
    """The pipeline over ``rows``, its output batches as they come (in any order)."""
    with _quiet():
        import ray.data

        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the driver shows the one bar of the run
        context.enable_operator_progress_bars = False
        dataset = pipeline(ray, rows, encoder, heads_file, batch_size, keep_features)
    quiet = logging.getLogger("ray.data")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # "Starting execution of Dataset..." on every run
    try:
        for table in _stream(dataset):
            yield pl.from_arrow(table)  # type: ignore[misc]
    finally:
        quiet.setLevel(level)


def pipeline(
    ray: Any, rows: pl.DataFrame, encoder: Encoder, heads_file: Path, batch_size: int, keep_features: bool
) -> Any:
    """The Ray Data dataset of the pipeline over ``rows`` (not executed yet): the rows, the
    decode tasks, the encode actors (module docstring)."""
    resources = ray.cluster_resources()
    gpus = int(float(resources.get("GPU", 0)))
    actors = gpus if gpus else max(1, int(float(resources.get("CPU", 1))) // 4)
    blocks = max(1, math.ceil(len(rows) / BLOCK_ROWS))
    dataset = ray.data.from_arrow(rows.to_arrow(), override_num_blocks=blocks)
    dataset = dataset.map_batches(decode_batch, batch_format="pyarrow", batch_size=DECODE_BATCH, num_cpus=1)
    return dataset.map_batches(
        EncodeBatch,
        fn_constructor_args=(dict(encoder.identity), str(heads_file), keep_features),
        batch_format="pyarrow",
        batch_size=batch_size,
        concurrency=actors,
        num_gpus=1 if gpus else 0,
        num_cpus=1,
    )


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Ray Data's own deprecation warnings silenced (its context warns about its own defaults)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray(\.|$)")
        yield


def _stream(dataset: Any) -> Iterator[Any]:
    """The dataset's batches, with its failures as this library's errors."""
    from clipbranches.cluster import ClusterError

    batches = iter(dataset.iter_batches(batch_format="pyarrow", batch_size=None))
    while True:
        try:
            with _quiet():
                table = next(batches)
        except StopIteration:
            return
        except ClipBranchesError:
            raise
        except Exception as e:  # a worker's error (wrapped by Ray), a lost node...
            cause: BaseException | None = e
            while cause is not None:
                if isinstance(cause, ClipBranchesError):
                    raise cause from e
                cause = getattr(cause, "cause", None) or cause.__cause__
            raise ClusterError(f"the ingest pipeline failed on the cluster: {e}") from e
        yield table


def _write(work: Path, chunk: int, rows: pl.DataFrame, width: int) -> None:
    """Chunk ``chunk`` of a shard's work folder, from its pipeline rows (the single ingest's
    chunk: positions that decoded, their rows, sizes and digests, and the skipped files)."""
    rows = rows.sort("pos")
    decoded = rows.filter(pl.col("reason").is_null())
    skipped = rows.filter(pl.col("reason").is_not_null())
    codes = np.frombuffer(b"".join(decoded["row"].to_list()), np.uint8).reshape(-1, width)
    write_chunk(
        chunk_path(work, chunk),
        decoded["pos"].to_numpy().astype(np.int64),
        [codes] if len(codes) else [],
        list(zip(skipped["uri"].to_list(), skipped["reason"].to_list(), strict=True)),
        list(zip(decoded["width"].to_list(), decoded["height"].to_list(), strict=True)),
        decoded["digest"].to_list(),
    )
