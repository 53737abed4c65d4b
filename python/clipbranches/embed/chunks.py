"""Resumable, chunked encoding of image files: what ``ingest`` and the demo share.

Work happens in chunks inside a work directory; each finished chunk is written atomically
(temp file + rename), so after a Ctrl-C or a kill the next run with the same fingerprint
continues from the last finished chunk. A changed fingerprint (another source, encoder, head or
chunk size) discards the old work. Thumbnails are written from the already decoded images.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from PIL import Image

    from clipbranches.embed.encoders import Encoder

__all__ = ["THUMB_SIZE", "EncodeReport", "encode_resumable", "stage_thumbnails"]

#: Longest side of a thumbnail, in pixels.
THUMB_SIZE = 160


@dataclass
class EncodeReport:
    """Files that were skipped (with why) and chunks reused from an interrupted run."""

    skipped: list[tuple[str, str]] = field(default_factory=list)
    resumed_chunks: int = 0


def encode_resumable(
    encoder: Encoder,
    uris: Sequence[str],
    work: Path,
    *,
    transform: Callable[[NDArray[np.float32]], NDArray[Any]],
    width: int,
    dtype: type[np.generic],
    fingerprint: dict[str, Any],
    chunk_size: int = 1024,
    batch_size: int = 64,
    thumbnails: bool = True,
    progress: bool = False,
    report: EncodeReport | None = None,
    on_chunk: Callable[[int, int], None] | None = None,
) -> tuple[NDArray[np.int64], NDArray[Any]]:
    """Encode every file of ``uris`` and ``transform`` its features to ``(n, width)`` rows of
    ``dtype``; returns the positions in ``uris`` that decoded and their rows. Thumbnails go to
    ``work/thumbs/<position>.jpg``; ``on_chunk(done, chunks)`` follows the progress."""
    report = report if report is not None else EncodeReport()
    work.mkdir(exist_ok=True)
    stamp = work / "source.json"
    if stamp.is_file() and json.loads(stamp.read_text()) != json.loads(json.dumps(fingerprint, default=str)):
        shutil.rmtree(work)  # another source or model: nothing to resume
        work.mkdir()
    (work / "thumbs").mkdir(exist_ok=True)
    _write_atomically(stamp, json.dumps(fingerprint, default=str).encode())
    count = (len(uris) + chunk_size - 1) // chunk_size
    for chunk, start in enumerate(range(0, len(uris), chunk_size)):
        done = work / f"chunk-{chunk:06d}.npz"
        if done.is_file():
            report.resumed_chunks += 1
            continue
        part = list(uris[start : start + chunk_size])
        _encode_chunk(encoder, part, start, done, work / "thumbs", transform, batch_size, thumbnails, progress)
        if on_chunk is not None:
            on_chunk(chunk + 1, count)
    return _gather(work, count, width, dtype, report)


def _encode_chunk(
    encoder: Encoder,
    paths: list[str],
    start: int,
    done: Path,
    thumbs: Path,
    transform: Callable[[NDArray[np.float32]], NDArray[Any]],
    batch_size: int,
    thumbnails: bool,
    progress: bool,
) -> None:
    """Encode one chunk and write ``done`` (atomically): the positions that decoded, their
    transformed rows, and the failures."""
    from clipbranches.embed.encoders.files import DecodeReport, encode_files

    decode = DecodeReport()
    positions: list[NDArray[np.int64]] = []
    rows: list[NDArray[Any]] = []

    def save_thumbnails(batch: NDArray[np.int64], images: list[Image.Image]) -> None:
        for p, image in zip(batch.tolist(), images, strict=True):
            thumb = image.copy()
            thumb.thumbnail((THUMB_SIZE, THUMB_SIZE))
            thumb.save(thumbs / f"{start + p}.jpg", quality=85)

    batches = encode_files(
        encoder,
        paths,
        batch_size=batch_size,
        report=decode,
        progress=progress,
        on_images=save_thumbnails if thumbnails else None,
    )
    for pos, features in batches:
        positions.append(pos + start)
        rows.append(transform(features))
    failures = [(paths[i], reason) for i, _, reason in decode.failures]
    tmp = done.with_name(done.name + ".tmp.npz")
    np.savez(
        tmp,
        positions=np.concatenate(positions) if positions else np.zeros(0, np.int64),
        rows=np.concatenate(rows) if rows else np.zeros((0, 0)),
        failures=np.array(json.dumps(failures)),
    )
    os.replace(tmp, done)


def _gather(
    work: Path, chunks: int, width: int, dtype: type[np.generic], report: EncodeReport
) -> tuple[NDArray[np.int64], NDArray[Any]]:
    """All chunks' positions and rows, in order; their failures go into ``report``."""
    positions: list[NDArray[np.int64]] = [np.zeros(0, np.int64)]
    rows: list[NDArray[Any]] = [np.zeros((0, width), dtype)]
    for chunk in range(chunks):
        with np.load(work / f"chunk-{chunk:06d}.npz") as data:
            positions.append(data["positions"])
            if len(data["positions"]):
                rows.append(data["rows"].astype(dtype, copy=False))
            report.skipped += [(str(path), str(reason)) for path, reason in json.loads(str(data["failures"]))]
    return np.concatenate(positions), np.concatenate(rows)


def stage_thumbnails(thumbs: Path, positions: NDArray[np.int64], final: Path) -> None:
    """Link the work dir's thumbnails (named by listing position) as ``final/<id>.jpg``; the work
    dir keeps its own until the catalog is in place, so a failed create can still resume."""
    final.mkdir()
    for new_id, old in enumerate(positions.tolist()):
        thumb = thumbs / f"{old}.jpg"
        if thumb.is_file():
            try:
                os.link(thumb, final / f"{new_id}.jpg")
            except OSError:  # another filesystem, or no hard links there
                shutil.copyfile(thumb, final / f"{new_id}.jpg")


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
