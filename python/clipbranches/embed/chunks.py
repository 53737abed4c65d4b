"""Resumable, chunked encoding of image files: what ``ingest`` and the demo share.

Work happens in chunks inside a work directory; each finished chunk is written atomically
(:func:`clipbranches._io.atomic_write`), so after a Ctrl-C or a kill the next run with the same
fingerprint continues from the last finished chunk. The work directory is bound to its source:
its stamp records the caller's fingerprint (encoder, head, ...) and a digest of the listing
(each uri with its file's size and modification time), and a run with another stamp, or a stamp
that cannot be read, discards the old work. A chunk that cannot be read back (truncated,
damaged) is encoded again, and so is a chunk written before chunks recorded each image's size
and digest (re-encoding it costs one chunk's work; filling nulls would leave a catalog whose
sizes and duplicate checks silently miss those images). One process at a time works in a
directory (:func:`work_lock`). Thumbnails are written from the already decoded images. One
progress bar (rate and ETA) covers the whole run, starting at the files of resumed chunks.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from clipbranches._io import atomic_write, open_regular, read_text
from clipbranches.exceptions import CatalogExistsError, CatalogFormatError, OutputError

if TYPE_CHECKING:
    from PIL import Image

    from clipbranches.embed.encoders import Encoder
    from clipbranches.embed.encoders.files import ProgressBar

__all__ = [
    "THUMB_SIZE",
    "EncodeReport",
    "chunk_path",
    "clear_work",
    "encode_resumable",
    "open_work",
    "read_stamp",
    "save_thumbnail",
    "source_digest",
    "stage_thumbnails",
    "work_lock",
    "write_chunk",
]

#: Longest side of a thumbnail, in pixels.
THUMB_SIZE = 160
#: The lock file inside a work directory (kept when the directory's work is discarded).
LOCK_FILE = "lock"
#: The stamp that binds a work directory to its source and settings.
STAMP_FILE = "source.json"

_held: dict[str, int] = {}  # work directories this process has locked -> the owning thread
_held_guard = threading.Lock()


@dataclass
class EncodeReport:
    """Files that were skipped (with why) and chunks reused from an interrupted run; for the
    positions returned, each decoded image's ``(width, height)`` (before any shrinking, ``(n,
    2)``) and each local file's content digest (``""`` for a URL)."""

    skipped: list[tuple[str, str]] = field(default_factory=list)
    resumed_chunks: int = 0
    sizes: NDArray[np.int64] = field(default_factory=lambda: np.zeros((0, 2), np.int64))
    digests: NDArray[np.str_] = field(default_factory=lambda: np.zeros(0, "U32"))


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
    with work_lock(work):
        resumed = open_work(work, uris, fingerprint=fingerprint, chunk_size=chunk_size, width=width)
        count = (len(uris) + chunk_size - 1) // chunk_size
        report.resumed_chunks += len(resumed)
        initial = sum(min(chunk_size, len(uris) - chunk * chunk_size) for chunk in resumed)
        bar = _progress_bar(len(uris), initial) if progress else None
        try:
            for chunk, start in enumerate(range(0, len(uris), chunk_size)):
                if chunk in resumed:
                    continue
                done = chunk_path(work, chunk)
                part = list(uris[start : start + chunk_size])
                _encode_chunk(encoder, part, start, done, work / "thumbs", transform, batch_size, thumbnails, bar)
                if on_chunk is not None:
                    on_chunk(chunk + 1, count)
        finally:
            if bar is not None:
                bar.close()
        return _gather(work, count, chunk_size, len(uris), width, dtype, report)


def open_work(work: Path, uris: Sequence[str], *, fingerprint: dict[str, Any], chunk_size: int, width: int) -> set[int]:
    """Bind ``work`` (held by this process: :func:`work_lock`) to ``uris`` and ``fingerprint``:
    its old work is discarded unless its stamp says the same; returns the chunks already
    finished there (a damaged one is removed, to be encoded again)."""
    stamp = work / STAMP_FILE
    wanted = json.loads(
        json.dumps({"fingerprint": fingerprint, "source": source_digest(uris), "chunk": chunk_size}, default=str)
    )
    if read_stamp(stamp) != wanted:
        clear_work(work)  # another source, another content or model, or a damaged stamp: nothing to resume
    (work / "thumbs").mkdir(exist_ok=True)
    atomic_write(stamp, json.dumps(wanted).encode(), "ingest stamp")
    resumed: set[int] = set()
    for chunk, start in enumerate(range(0, len(uris), chunk_size)):
        done = chunk_path(work, chunk)
        if done.is_file():
            if _load_chunk(done, start, min(chunk_size, len(uris) - start), width) is not None:
                resumed.add(chunk)
            else:
                done.unlink()  # truncated, damaged (a crash, a full disk) or older: encode it again
    return resumed


def save_thumbnail(image: Image.Image, thumbs: Path, position: int) -> None:
    """The thumbnail of a decoded image, as ``thumbs/<position>.jpg``."""
    thumb = image.copy()
    thumb.thumbnail((THUMB_SIZE, THUMB_SIZE))
    thumb.save(thumbs / f"{position}.jpg", quality=85)


def chunk_path(work: Path, chunk: int) -> Path:
    """Where chunk number ``chunk`` of ``work`` is written."""
    return work / f"chunk-{chunk:06d}.npz"


def write_chunk(
    done: Path,
    positions: NDArray[np.int64],
    rows: list[NDArray[Any]],
    failures: list[tuple[str, str]],
    sizes: list[tuple[int, int]],
    digests: list[str],
) -> None:
    """Write a finished chunk atomically: the positions that decoded (ascending), their
    transformed rows (in blocks), the ``(uri, reason)`` of the files that did not, and each
    decoded image's size and digest (``""`` for none), by position."""
    arrays: dict[str, Any] = {
        "positions": np.asarray(positions, np.int64),
        "sizes": np.array(sizes, np.int64).reshape(-1, 2),
        "digests": np.array(digests, "U32"),
        "rows": np.concatenate(rows) if rows else np.zeros((0, 0)),
        "failures": np.array(json.dumps(failures)),
    }

    def write(tmp: Path) -> None:
        with open(tmp, "xb") as f:  # a file object: np.savez would add ".npz" to a temporary name
            np.savez(f, **arrays)

    atomic_write(done, write, "ingest chunk")


def _progress_bar(total: int, initial: int) -> ProgressBar:
    """The run's one bar (a seam for tests)."""
    from clipbranches.embed.encoders.files import progress_bar

    return progress_bar(total, initial)


def source_digest(uris: Sequence[str]) -> str:
    """A digest of a listing's identity and content: each uri, in order, with its file's size
    and modification time (URLs and missing files by their uri alone). Another folder, another
    order, or a file replaced in place gives another digest."""
    digest = hashlib.sha256()
    for uri in uris:
        text = os.fspath(uri)
        state = ""
        if "://" not in text:
            try:
                info = os.stat(text)
                state = f"{info.st_size}:{info.st_mtime_ns}:{info.st_ino}"
            except (OSError, ValueError):
                state = "missing"
        digest.update(f"{len(text)}:{text}|{state}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


@contextlib.contextmanager
def work_lock(work: Path, what: str | None = None) -> Iterator[None]:
    """Hold the work directory ``work`` (created if missing) for this process: an exclusive,
    non-blocking ``flock`` on its lock file. Re-entrant within the thread that holds it.

    Raises
    ------
    CatalogExistsError
        Another process (or thread) is working there now; ``what`` (e.g. ``"ingest into
        /data/cat"``) names that work in the message.
    """
    what = what or f"encoding into {work}"
    key = os.path.abspath(work)
    with _held_guard:
        owner = _held.get(key)
        if owner == threading.get_ident():
            reentrant = True
        elif owner is not None:
            raise CatalogExistsError(f"another {what} is running in this process; wait for it to finish")
        else:
            reentrant = False
            _held[key] = threading.get_ident()
    if reentrant:
        yield
        return
    fd = -1
    try:
        fd = _acquire(work, what)
        yield
    finally:
        if fd >= 0:
            os.close(fd)  # releases the lock
        with _held_guard:
            _held.pop(key, None)


def _acquire(work: Path, what: str) -> int:
    """The descriptor of ``work``'s lock file, locked by this process (see :func:`work_lock`)."""
    import fcntl

    fd = -1
    try:
        while True:
            work.mkdir(exist_ok=True)
            fd = os.open(work / LOCK_FILE, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
                pid = f" (pid {holder})" if holder.isdigit() else ""
                raise CatalogExistsError(
                    f"another {what} is running{pid}; wait for it to finish or stop it, then run this again"
                ) from None
            try:  # the holder before us may have removed the directory: lock the file that is there now
                same = os.path.samestat(os.fstat(fd), os.stat(work / LOCK_FILE))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
            fd = -1
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        return fd
    except BaseException as e:
        if fd >= 0:
            os.close(fd)
        if isinstance(e, OSError):
            raise OutputError(f"cannot prepare the work directory {work} ({e.strerror or e})") from e
        raise


def read_stamp(stamp: Path) -> Any:
    """The stamp's JSON, or None when there is none or it cannot be read."""
    if not stamp.exists():
        return None
    try:
        return json.loads(read_text(stamp, "ingest stamp", error=CatalogFormatError))
    except (CatalogFormatError, ValueError, RecursionError):
        return None


def clear_work(work: Path) -> None:
    """Discard the work in ``work``, keeping the lock file (held by this process)."""
    for entry in work.iterdir():
        if entry.name == LOCK_FILE:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


@dataclass
class _Chunk:
    positions: NDArray[np.int64]
    rows: NDArray[Any]
    failures: list[Any]
    sizes: NDArray[np.int64]
    digests: NDArray[np.str_]


def _load_chunk(path: Path, start: int, length: int, width: int) -> _Chunk | None:
    """A finished chunk, or None when it cannot be read back, does not fit its place
    (``length`` items from ``start``, rows ``width`` wide) or lacks the images' sizes and
    digests (written by an older version)."""
    try:
        with open_regular(path, "ingest chunk", error=CatalogFormatError) as f, np.load(f, allow_pickle=False) as data:
            positions = np.asarray(data["positions"])
            rows = np.asarray(data["rows"])
            failures = json.loads(str(data["failures"]))
            sizes = np.asarray(data["sizes"])
            digests = np.asarray(data["digests"])
    except Exception:  # noqa: BLE001 (any damage at all: zip, npy header, JSON, a missing array)
        return None
    if sizes.shape != (len(positions), 2) or sizes.dtype.kind not in "iu":
        return None
    if digests.shape != (len(positions),) or digests.dtype.kind != "U":
        return None
    if positions.ndim != 1 or positions.dtype.kind not in "iu":
        return None
    if len(positions) and (positions.min() < start or positions.max() >= start + length):
        return None
    if len(positions) and (rows.ndim != 2 or rows.shape != (len(positions), width)):
        return None
    if not isinstance(failures, list) or any(not isinstance(f, list) or len(f) != 2 for f in failures):
        return None
    if len(positions) + len(failures) != length:
        return None
    return _Chunk(positions.astype(np.int64, copy=False), rows, failures, sizes.astype(np.int64), digests)


def _encode_chunk(
    encoder: Encoder,
    paths: list[str],
    start: int,
    done: Path,
    thumbs: Path,
    transform: Callable[[NDArray[np.float32]], NDArray[Any]],
    batch_size: int,
    thumbnails: bool,
    progress: ProgressBar | None,
) -> None:
    """Encode one chunk and write ``done`` (atomically): the positions that decoded, their
    transformed rows, and the failures."""
    from clipbranches.embed.encoders.files import DecodeReport, encode_files

    decode = DecodeReport()
    positions: list[NDArray[np.int64]] = []
    rows: list[NDArray[Any]] = []

    def save_thumbnails(batch: NDArray[np.int64], images: list[Image.Image]) -> None:
        for p, image in zip(batch.tolist(), images, strict=True):
            save_thumbnail(image, thumbs, start + p)

    batches = encode_files(
        encoder,
        paths,
        batch_size=batch_size,
        report=decode,
        progress=progress if progress is not None else False,
        on_images=save_thumbnails if thumbnails else None,
    )
    for pos, features in batches:
        positions.append(pos + start)
        rows.append(transform(features))
    failures = [(paths[i], reason) for i, _, reason in decode.failures]
    kept = np.concatenate(positions) - start if positions else np.zeros(0, np.int64)
    sizes = [decode.sizes[i] for i in kept.tolist()]
    write_chunk(done, kept + start, rows, failures, sizes, [decode.digests.get(i, "") for i in kept.tolist()])


def _gather(
    work: Path, chunks: int, chunk_size: int, total: int, width: int, dtype: type[np.generic], report: EncodeReport
) -> tuple[NDArray[np.int64], NDArray[Any]]:
    """All chunks' positions and rows, in order; their failures go into ``report``."""
    positions: list[NDArray[np.int64]] = [np.zeros(0, np.int64)]
    rows: list[NDArray[Any]] = [np.zeros((0, width), dtype)]
    sizes: list[NDArray[np.int64]] = [np.zeros((0, 2), np.int64)]
    digests: list[NDArray[np.str_]] = [np.zeros(0, "U32")]
    for chunk in range(chunks):
        path = chunk_path(work, chunk)
        start = chunk * chunk_size
        loaded = _load_chunk(path, start, min(chunk_size, total - start), width)
        if loaded is None:  # written by this run a moment ago: only an outside hand can get here
            raise CatalogFormatError(f"{path}: an encoded chunk cannot be read back; run the ingest again")
        positions.append(loaded.positions)
        sizes.append(loaded.sizes)
        digests.append(loaded.digests)
        if len(loaded.positions):
            rows.append(loaded.rows.astype(dtype, copy=False))
        report.skipped += [(str(uri), str(reason)) for uri, reason in loaded.failures]
    report.sizes = np.concatenate(sizes)
    report.digests = np.concatenate(digests)
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
