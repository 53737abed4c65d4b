"""Streaming, batched image encoding from files.

Images are decoded in a worker pool (PIL releases the interpreter while decoding) a few batches
ahead of the encoder; a file that is missing or cannot be decoded is skipped and recorded in a
:class:`DecodeReport`, never raised.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeGuard

import numpy as np
from numpy.typing import NDArray

from clipbranches.embed.encoders.base import Encoder

if TYPE_CHECKING:
    import urllib.request

    from PIL import Image

__all__ = ["DecodeReport", "ProgressBar", "encode_files", "flatten_on_white", "open_image", "progress_bar"]


@dataclass
class DecodeReport:
    """Files that were skipped, as ``(position in the input, path, reason)``; for each decoded
    file, its image's ``(width, height)`` as decoded (before any shrinking) and, for a local
    file, the BLAKE2b digest of its bytes (exact duplicates share it), by position."""

    failures: list[tuple[int, str, str]] = field(default_factory=list)
    sizes: dict[int, tuple[int, int]] = field(default_factory=dict)
    digests: dict[int, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.failures)


#: Seconds a whole image download may take, from connecting to the last byte (a timeout per
#: read alone lets a server that sends a byte every few seconds hold a download forever).
URL_DEADLINE = 30.0
#: The most bytes an image download may hold (a larger Content-Length is refused up front, a
#: body without one is counted while it is read).
URL_MAX_BYTES = 64 * 1024 * 1024
#: Decoded images are shrunk (aspect kept) until their short side is at most this: every tower
#: resizes to 224 and thumbnails are 160 px, and a poster-sized PNG would otherwise hold
#: hundreds of MB while it waits for the encoder.
MAX_SHORT_SIDE = 448
#: Batches decoded ahead of the encoder (bounds memory: decoding is usually faster).
BATCHES_AHEAD = 3


def _quiet_large_images() -> None:
    """Pillow warns about every image over ~89 Mpixel (OpenClipArt has 168-Mpixel posters),
    which floods progress output; such images are shrunk right after decoding, and Pillow still
    refuses real decompression bombs (over twice the limit) with an error we report."""
    import warnings

    from PIL import Image

    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def open_image(path: str | os.PathLike[str], *, max_short_side: int | None = MAX_SHORT_SIDE) -> Image.Image | str:
    """The decoded RGB image of a file path or an http(s) URL (transparency on white, shrunk to
    ``max_short_side`` unless None), or the reason it cannot be read."""
    import io
    from typing import IO

    from PIL import Image, UnidentifiedImageError

    from clipbranches._io import open_regular
    from clipbranches.exceptions import InvalidArgumentError

    try:
        source: IO[bytes]
        if is_url(path):
            source = io.BytesIO(download(path))
        else:
            # A local file is opened only if it is a regular one: a FIFO, a socket or a device
            # never blocks the decode, it is skipped with its reason like an undecodable file.
            try:
                source = open_regular(path, "image file")
            except InvalidArgumentError as e:
                return "file not found" if not os.path.exists(path) else str(e)
        with source, Image.open(source) as im:
            im.load()
            rgb = flatten_on_white(im)
        return rgb if max_short_side is None else shrink(rgb, max_short_side)
    except DownloadError as e:
        return f"cannot fetch: {e}"
    except FileNotFoundError:
        return "file not found"
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        return f"cannot decode: {e}"


def shrink(image: Image.Image, max_short_side: int) -> Image.Image:
    """``image`` with its short side at most ``max_short_side`` (bilinear; smaller ones as they are)."""
    if min(image.size) <= max_short_side:
        return image
    from PIL import Image

    scale = max_short_side / min(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)


def is_url(path: object) -> TypeGuard[str]:
    """Whether ``path`` is an http(s) URL (which :func:`open_image` downloads) rather than a path."""
    return isinstance(path, str) and path[:8].lower().startswith(("http://", "https://"))


class DownloadError(Exception):
    """Why an image URL could not be downloaded (:func:`open_image` returns it as the reason)."""


def download(url: str, *, deadline: float | None = None, max_bytes: int | None = None) -> bytes:
    """The body of an http(s) URL, all of it within ``deadline`` seconds (default
    :data:`URL_DEADLINE`) and at most ``max_bytes`` long (default :data:`URL_MAX_BYTES`).

    Raises :class:`DownloadError` with the reason: an HTTP error status, a refused connection,
    a body over the limit (a larger Content-Length is refused before reading any of it), or a
    download still unfinished at the deadline (whatever it was waiting for: the connection, the
    headers or the body).
    """
    import http.client
    import urllib.error

    seconds = URL_DEADLINE if deadline is None else deadline
    limit = URL_MAX_BYTES if max_bytes is None else max_bytes
    late = f"the download did not finish within {seconds:g} s"
    chunks: list[bytes] = []
    with _Deadline(seconds) as watch:
        try:
            with _opener(watch).open(url, timeout=seconds) as response:
                length = (response.headers.get("Content-Length") or "").strip()
                if length.isdigit() and int(length) > limit:
                    raise DownloadError(f"the image is {int(length):,} bytes, over the limit of {limit:,} bytes")
                size = 0
                while chunk := response.read(min(_READ_SIZE, limit + 1 - size)):
                    size += len(chunk)
                    if size > limit:
                        raise DownloadError(f"the image is over the limit of {limit:,} bytes")
                    chunks.append(chunk)
                if length.isdigit() and size < int(length) and not watch.expired:
                    raise DownloadError(f"the connection closed after {size:,} of {int(length):,} bytes")
        except (OSError, http.client.HTTPException, ValueError) as e:
            if watch.expired:
                raise DownloadError(late) from None
            if isinstance(e, urllib.error.HTTPError):
                e.close()  # it holds the error page's response open
            elif isinstance(e, urllib.error.URLError):
                raise DownloadError(str(e.reason)) from None
            elif isinstance(e, http.client.HTTPException):
                raise DownloadError(f"not a valid HTTP answer ({type(e).__name__}: {str(e).strip()!r})") from None
            raise DownloadError(str(e) or type(e).__name__) from None
        if watch.expired:  # the timer's shutdown ends a body without Content-Length like a normal end
            raise DownloadError(late)
    return b"".join(chunks)


#: Bytes asked for per read of a download.
_READ_SIZE = 1 << 20


class _Deadline:
    """The end of one download: when ``seconds`` have passed, a timer shuts down every
    connection the download opened, so a blocked read returns at once whatever it waits for
    (the connection, TLS, the headers or the body) and :attr:`expired` says why.

    Each connection is watched through a duplicate of its descriptor, owned here and closed on
    exit, so the timer can never touch a descriptor that was closed and reused meanwhile.
    """

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._timer = threading.Timer(max(0.0, seconds), self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            copy = sock.dup()
            self._sockets.append(copy)
            if self.expired:
                _shut(copy)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the peer
        sock.shutdown(socket.SHUT_RDWR)


def _opener(watch: _Deadline) -> urllib.request.OpenerDirector:
    """urllib's opener for http(s) only (a redirect elsewhere, e.g. to ftp, is refused), whose
    connections ``watch`` can end."""
    import http.client
    import urllib.request

    class Connection(http.client.HTTPConnection):
        def connect(self) -> None:
            super().connect()
            watch.watch(self.sock)

    # HTTPSConnection.connect calls super().connect() for the TCP socket, which this order
    # makes Connection.connect: the socket is watched before the TLS handshake.
    class TLSConnection(http.client.HTTPSConnection, Connection):
        pass

    class Handler(urllib.request.AbstractHTTPHandler):
        def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(Connection, req)

        def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(TLSConnection, req)

        http_request = https_request = urllib.request.AbstractHTTPHandler.do_request_

    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.UnknownHandler(),
        Handler(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPRedirectHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


def flatten_on_white(image: Image.Image) -> Image.Image:
    """RGB of ``image`` with any transparency composited onto white.

    A plain ``convert("RGB")`` keeps whatever colour the transparent pixels happen to hold
    (often black), which turns clip art and icons into dark blobs for the towers.
    """
    from PIL import Image

    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


class ProgressBar(Protocol):
    """What :func:`encode_files` needs of a progress bar it is given (a ``tqdm`` bar fits)."""

    def update(self, n: float | None = 1) -> bool | None: ...

    def close(self) -> None: ...


def progress_bar(total: int, initial: int = 0) -> ProgressBar:
    """A tqdm bar over ``total`` images (``initial`` of them already done), with rate and ETA."""
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="img", desc="encoding", smoothing=0.1, dynamic_ncols=True)


def _decode(path: str | os.PathLike[str]) -> tuple[Image.Image | str, tuple[int, int], str | None]:
    """:func:`open_image` (shrunk), the image's size before shrinking and a local file's digest."""
    import hashlib

    from clipbranches._io import open_regular
    from clipbranches.exceptions import ClipBranchesError

    image = open_image(path, max_short_side=None)
    if isinstance(image, str):
        return image, (0, 0), None
    size = image.size
    image = shrink(image, MAX_SHORT_SIDE)  # as open_image does, once the size is known
    digest = None
    if not is_url(path):
        try:
            hasher = hashlib.blake2b(digest_size=16)
            with open_regular(path, "image file") as f:
                while block := f.read(1 << 20):
                    hasher.update(block)
            digest = hasher.hexdigest()
        except (ClipBranchesError, OSError):
            digest = None  # changed since it was decoded: no duplicate check for it
    return image, size, digest


def encode_files(
    encoder: Encoder,
    paths: Sequence[str | os.PathLike[str]],
    *,
    batch_size: int = 64,
    workers: int | None = None,
    report: DecodeReport | None = None,
    progress: bool | ProgressBar = False,
    on_images: Callable[[NDArray[np.int64], list[Image.Image]], None] | None = None,
) -> Iterator[tuple[NDArray[np.int64], NDArray[np.float32]]]:
    """Yield ``(positions, features)`` per batch: the input positions that decoded and their
    image features. Skipped files go into ``report`` (with each decoded image's size and each
    local file's digest); ``on_images`` sees each batch's decoded images (e.g. to write
    thumbnails without decoding the files again). ``progress``: True for a bar of this call's
    own, or a bar (:func:`progress_bar`) that this call advances by its files, e.g. one bar
    over many calls."""
    report = report if report is not None else DecodeReport()
    _quiet_large_images()
    own = progress is True
    bar: ProgressBar | None = progress if not isinstance(progress, bool) else progress_bar(len(paths)) if own else None
    counted = 0
    try:
        with ThreadPoolExecutor(max_workers=workers or min(8, (os.cpu_count() or 2))) as pool:
            # In order, at most BATCHES_AHEAD batches ahead of the encoder (pool.map would decode
            # everything at once and hold it all in memory when the encoder is the slower side).
            pending: deque[Future[tuple[Image.Image | str, tuple[int, int], str | None]]] = deque()
            upcoming = iter(paths)
            for path in itertools.islice(upcoming, BATCHES_AHEAD * batch_size):
                pending.append(pool.submit(_decode, path))
            positions: list[int] = []
            images: list[Image.Image] = []
            for i in range(len(paths)):
                result, size, digest = pending.popleft().result()
                for path in itertools.islice(upcoming, 1):
                    pending.append(pool.submit(_decode, path))
                if isinstance(result, str):
                    report.failures.append((i, os.fspath(paths[i]), result))
                else:
                    positions.append(i)
                    images.append(result)
                    report.sizes[i] = size
                    if digest is not None:
                        report.digests[i] = digest
                if len(images) == batch_size or (i == len(paths) - 1 and images):
                    batch = np.array(positions, np.int64)
                    if on_images is not None:
                        on_images(batch, images)
                    yield batch, encoder.encode_images(images)
                    if bar is not None:
                        bar.update(i + 1 - counted)  # skipped files count as done too
                        counted = i + 1
                    positions, images = [], []
            if bar is not None and counted < len(paths):  # trailing skipped files
                bar.update(len(paths) - counted)
    finally:
        if own and bar is not None:
            bar.close()
