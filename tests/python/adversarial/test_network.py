"""Downloads, queries and hangs (issue 15): image URLs that trickle, are too large or missing,
huge and invalid text queries, URLs on the command line, a FIFO as an image query, and a CUDA
device on a machine without one. Every call runs in a thread with a bound: a test never hangs.

The servers are loopback ``http.server`` threads; nothing leaves the machine.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from PIL import Image

from clipbranches import Catalog, EncoderError, InvalidArgumentError
from clipbranches.embed.encoders import files
from clipbranches.embed.encoders.base import Encoder
from clipbranches.engine import MAX_QUERY_CHARS, SearchEngine

T = TypeVar("T")

#: Seconds any one call under test may take before the test fails (it would otherwise hang).
BOUND = 20.0
#: The download deadline the trickling tests set (the default is 30 s).
DEADLINE = 2.0


def within(seconds: float, call: Callable[[], T]) -> T:
    """``call()`` run in a daemon thread: its result or its exception, or a failure when it is
    still running after ``seconds``."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as e:  # noqa: BLE001 (handed to the test's thread)
            outcome["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"still running after {seconds:g} s (it hangs)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), "red").save(buffer, "PNG")
    return buffer.getvalue()


PNG = _png()


class _Handler(BaseHTTPRequestHandler):
    stop: threading.Event

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        with contextlib.suppress(OSError):  # the client gave up: what these tests expect
            route = getattr(self, "route_" + self.path.strip("/").replace("-", "_").replace(".", "_"), None)
            if route is None:
                self.send_error(404)
            else:
                route()

    def route_image_png(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(PNG)))
        self.end_headers()
        self.wfile.write(PNG)

    def route_trickle(self) -> None:
        """A PNG sent one byte per 0.5 s (the whole would take minutes)."""
        self.send_response(200)
        self.send_header("Content-Length", str(len(PNG)))
        self.end_headers()
        for byte in PNG:
            if self.stop.wait(0.5):
                return
            self.wfile.write(bytes([byte]))
            self.wfile.flush()

    def route_huge_length(self) -> None:
        """Announces 1.5 GB (and sends a little of it)."""
        self.send_response(200)
        self.send_header("Content-Length", str(1_500_000_000))
        self.end_headers()
        self.wfile.write(PNG)

    def route_huge_stream(self) -> None:
        """A body without Content-Length that goes on past any limit (up to 64 MiB here)."""
        self.send_response(200)
        self.end_headers()
        chunk = b"\0" * (1 << 16)
        for _ in range(1024):
            if self.stop.is_set():
                return
            self.wfile.write(chunk)


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback requests go straight to the test server, whatever proxy the environment names."""
    for name in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The base URL of a loopback server with the routes of :class:`_Handler`."""
    stop = threading.Event()
    handler = type("Handler", (_Handler,), {"stop": stop})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        stop.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


class _FakeEncoder(Encoder):
    """Tiny towers: enough to decode and encode, nothing to load."""

    image_dim = text_dim = 4

    @property
    def identity(self) -> dict[str, Any]:
        return {"name": "test"}

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        return np.ones((len(images), 4), np.float32)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        return np.ones((len(texts), 4), np.float32)


@pytest.fixture
def engine(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> SearchEngine:
    """An engine whose towers are :class:`_FakeEncoder` (an image query fails before the heads)."""
    monkeypatch.setattr(SearchEngine, "_towers", lambda self: (_FakeEncoder(), None))
    return SearchEngine(catalog)


@pytest.fixture
def short_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files, "URL_DEADLINE", DEADLINE)


# -- 1. downloads: an overall deadline and a size limit ---------------------------------------


@pytest.mark.usefixtures("short_deadline")
def test_trickling_url_in_search_image(engine: SearchEngine, server: str) -> None:
    url = f"{server}/trickle"
    start = time.monotonic()
    with pytest.raises(InvalidArgumentError) as caught:
        within(BOUND, lambda: engine.search_image(url))
    assert time.monotonic() - start < DEADLINE + 3
    message = str(caught.value)
    assert url in message
    assert f"did not finish within {DEADLINE:g} s" in message


@pytest.mark.usefixtures("short_deadline")
def test_trickling_url_in_ingest(server: str) -> None:
    urls = [f"{server}/image.png", f"{server}/trickle", f"{server}/image.png"]
    report = files.DecodeReport()
    start = time.monotonic()
    batches = within(BOUND, lambda: list(files.encode_files(_FakeEncoder(), urls, batch_size=2, report=report)))
    assert time.monotonic() - start < DEADLINE + 3
    assert [int(i) for positions, _ in batches for i in positions] == [0, 2]
    assert report.failures == [(1, urls[1], f"cannot fetch: the download did not finish within {DEADLINE:g} s")]


def test_url_with_oversized_content_length(engine: SearchEngine, server: str) -> None:
    url = f"{server}/huge-length"
    with pytest.raises(InvalidArgumentError) as caught:
        within(BOUND, lambda: engine.search_image(url))
    limit = files.URL_MAX_BYTES
    assert limit == 64 * 1024 * 1024
    reason = f"cannot fetch: the image is 1,500,000,000 bytes, over the limit of {limit:,} bytes"
    assert str(caught.value) == f"cannot use {url} as a query: {reason}"
    # the same reason for ingest, as a skipped file
    assert within(BOUND, lambda: files.open_image(url)) == reason


def test_url_with_oversized_body_without_content_length(
    engine: SearchEngine, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "URL_MAX_BYTES", 1 << 20)
    url = f"{server}/huge-stream"
    with pytest.raises(InvalidArgumentError) as caught:
        within(BOUND, lambda: engine.search_image(url))
    assert (
        str(caught.value)
        == f"cannot use {url} as a query: cannot fetch: the image is over the limit of 1,048,576 bytes"
    )
    with pytest.raises(files.DownloadError, match="over the limit of 4,096 bytes"):
        within(BOUND, lambda: files.download(url, max_bytes=4096))


def test_url_not_found(engine: SearchEngine, server: str) -> None:
    url = f"{server}/missing.png"
    with pytest.raises(InvalidArgumentError) as caught:
        within(BOUND, lambda: engine.search_image(url))
    assert str(caught.value) == f"cannot use {url} as a query: cannot fetch: HTTP Error 404: Not Found"


def test_url_that_answers(server: str) -> None:
    """The limits leave a normal download alone."""
    image = within(BOUND, lambda: files.open_image(f"{server}/image.png"))
    assert not isinstance(image, str)
    assert image.size == (8, 6)


# -- 2, 3. text queries -------------------------------------------------------------------------


@pytest.fixture
def engine_without_towers(catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> SearchEngine:
    """An engine whose towers must not be loaded."""

    def refuse(self: SearchEngine) -> None:
        raise AssertionError("the towers were loaded")

    monkeypatch.setattr(SearchEngine, "_towers", refuse)
    return SearchEngine(catalog)


def test_huge_text_query(engine_without_towers: SearchEngine) -> None:
    query = "a cat " * 2_000_000  # 12 MB
    with pytest.raises(InvalidArgumentError) as caught:
        within(BOUND, lambda: engine_without_towers.search_text(query))
    assert str(caught.value) == (
        f"the text query is 11,999,999 characters long, over the limit of {MAX_QUERY_CHARS:,} "
        "(the towers read only its first 77 tokens)"
    )
    # the limit counts the stripped text
    with pytest.raises(AssertionError, match="towers were loaded"):
        engine_without_towers.encode_text("  " * MAX_QUERY_CHARS + "x" * MAX_QUERY_CHARS + "\n" * MAX_QUERY_CHARS)


def test_lone_surrogate_in_text_query(engine_without_towers: SearchEngine) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        within(BOUND, lambda: engine_without_towers.search_text("a\ud800b"))
    assert (
        str(caught.value)
        == "the text query is not valid Unicode text: '\\ud800' at character 1 (surrogates not allowed)"
    )
    with pytest.raises(InvalidArgumentError, match="a text query is a string, not bytes"):
        engine_without_towers.encode_text(b"a cat")  # type: ignore[arg-type]


# -- 4. image queries: URLs on the command line, FIFOs ----------------------------------------


def test_cli_search_image_url(
    catalog: Catalog, server: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from clipbranches.cli import EXIT_BAD_INPUT, main

    monkeypatch.setattr(SearchEngine, "_towers", lambda self: (_FakeEncoder(), None))
    url = f"{server}/missing.png"
    code = within(BOUND, lambda: main(["search", str(catalog.path), "--image", url]))
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT
    # the URL reached the download as it was typed (not as the path "http:/127.0.0.1...")
    assert f"cannot use {url} as a query: cannot fetch: HTTP Error 404: Not Found" in err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_search_image_fifo(engine: SearchEngine, tmp_path: Path) -> None:
    fifo = tmp_path / "query.png"
    os.mkfifo(fifo)
    try:
        with pytest.raises(InvalidArgumentError, match="FIFO"):
            within(5, lambda: engine.search_image(fifo))
    finally:
        # A reader blocked in open() (the hang this test catches) gets an end of file and goes.
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


# -- 5. devices ---------------------------------------------------------------------------------


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.usefixtures("no_gpu")
def test_cuda_device_without_gpu() -> None:
    from clipbranches.embed.encoders.base import pick_device

    for device in ("cuda", "cuda:0"):
        with pytest.raises(EncoderError) as caught:
            pick_device(device)
        assert str(caught.value) == (
            f"device {device!r} asked for, but CUDA is not available on this machine "
            "(no GPU, or torch built without CUDA); use --device cpu or leave the device unset"
        )
    assert pick_device(None) == "cpu"
    assert pick_device("cpu") == "cpu"
    with pytest.raises(EncoderError, match="unknown device 'gpu0'"):
        pick_device("gpu0")


@pytest.mark.usefixtures("no_gpu")
def test_cli_ingest_on_cuda_without_gpu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("wordllama")
    from clipbranches.cli import EXIT_BAD_INPUT, main

    Image.new("RGB", (8, 6), "red").save(tmp_path / "a.png")
    (tmp_path / "head.safetensors").write_bytes(b"")
    args = ["ingest", tmp_path, tmp_path / "cat", "--head", tmp_path / "head.safetensors", "--device", "cuda"]
    code = within(BOUND * 3, lambda: main([str(a) for a in args]))
    assert code == EXIT_BAD_INPUT
    assert capsys.readouterr().err == (
        "clipbranches ingest: device 'cuda' asked for, but CUDA is not available on this machine "
        "(no GPU, or torch built without CUDA); use --device cpu or leave the device unset\n"
    )
