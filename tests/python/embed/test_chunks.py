"""Resumable chunked encoding: chunks written atomically, a resume encodes only what is left, a
changed fingerprint starts over, failures are reported, thumbnails follow the positions."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from clipbranches.embed.chunks import EncodeReport, encode_resumable, stage_thumbnails
from clipbranches.embed.encoders import Encoder


class CountingEncoder(Encoder):
    """Per-image channel means, counting the images it saw."""

    image_dim = text_dim = 3

    def __init__(self) -> None:
        self.seen = 0

    @property
    def identity(self) -> dict[str, Any]:
        return {"kind": "test-counting"}

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        self.seen += len(images)
        return np.array([np.asarray(im, np.float32).mean((0, 1)) for im in images], np.float32).reshape(-1, 3)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        return np.zeros((len(texts), 3), np.float32)


@pytest.fixture
def uris(tmp_path: Path) -> list[str]:
    rng = np.random.default_rng(1)
    paths = []
    for i in range(10):
        path = tmp_path / "src" / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (8, 8 + i, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    (tmp_path / "src" / "bad.png").write_bytes(b"not a png")
    paths.insert(4, str(tmp_path / "src" / "bad.png"))
    return paths


def run(encoder: Encoder, uris: list[str], work: Path, **kwargs: Any) -> tuple[np.ndarray, np.ndarray, EncodeReport]:
    report = EncodeReport()
    options: dict[str, Any] = {"fingerprint": {"n": len(uris)}, "chunk_size": 4, "batch_size": 3} | kwargs
    positions, rows = encode_resumable(
        encoder, uris, work, transform=lambda f: f * 2, width=3, dtype=np.float32, report=report, **options
    )
    return positions, rows, report


def test_every_decodable_file_in_order_with_the_failures_reported(tmp_path: Path, uris: list[str]) -> None:
    progress: list[tuple[int, int]] = []
    positions, rows, report = run(CountingEncoder(), uris, tmp_path / "work", on_chunk=lambda *a: progress.append(a))
    assert positions.tolist() == [0, 1, 2, 3, 5, 6, 7, 8, 9, 10]
    assert rows.shape == (10, 3)
    assert rows.dtype == np.float32
    expected = np.asarray(Image.open(uris[5]).convert("RGB"), np.float32).mean((0, 1)) * 2
    np.testing.assert_allclose(rows[4], expected, rtol=1e-6)
    assert [path for path, _ in report.skipped] == [uris[4]]
    assert progress == [(1, 3), (2, 3), (3, 3)]
    thumbs = sorted(int(p.stem) for p in (tmp_path / "work" / "thumbs").iterdir())
    assert thumbs == positions.tolist()


def test_a_resume_encodes_only_the_chunks_left(tmp_path: Path, uris: list[str]) -> None:
    encoder = CountingEncoder()

    def stop(done: int, _: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(encoder, uris, tmp_path / "work", on_chunk=stop)
    assert encoder.seen == 7  # chunks 0 and 1: eight files, one undecodable
    assert not list((tmp_path / "work").glob("*.tmp*")), "no half-written chunk"
    positions, rows, report = run(encoder, uris, tmp_path / "work")
    assert report.resumed_chunks == 2
    assert encoder.seen == 10, "only the last chunk was encoded again"
    assert [path for path, _ in report.skipped] == [uris[4]], "failures of resumed chunks are still reported"
    fresh = run(CountingEncoder(), uris, tmp_path / "fresh")
    np.testing.assert_array_equal(positions, fresh[0])
    np.testing.assert_array_equal(rows, fresh[1])


def test_another_fingerprint_starts_over(tmp_path: Path, uris: list[str]) -> None:
    run(CountingEncoder(), uris, tmp_path / "work")
    encoder = CountingEncoder()
    _, _, report = run(encoder, uris, tmp_path / "work", fingerprint={"n": len(uris), "model": "other"})
    assert report.resumed_chunks == 0
    assert encoder.seen == 10


def test_thumbnails_are_staged_by_new_id(tmp_path: Path) -> None:
    thumbs = tmp_path / "thumbs"
    thumbs.mkdir()
    for position in (0, 2, 5):
        (thumbs / f"{position}.jpg").write_bytes(f"thumb {position}".encode())
    stage_thumbnails(thumbs, np.array([2, 5, 7]), tmp_path / "final")
    staged = {p.name: p.read_bytes() for p in (tmp_path / "final").iterdir()}
    assert staged == {"0.jpg": b"thumb 2", "1.jpg": b"thumb 5"}, "item 2 (position 7) has no thumbnail"
    assert (thumbs / "2.jpg").is_file(), "the work folder keeps its own until the catalog is in place"


class RecordingBar:
    """A progress bar that remembers what it was told."""

    def __init__(self, total: int, initial: int) -> None:
        self.total, self.initial, self.n, self.closed = total, initial, initial, False

    def update(self, n: float | None = 1) -> None:
        self.n += int(n or 0)

    def close(self) -> None:
        self.closed = True


def test_one_progress_bar_covers_the_whole_run_from_the_resumed_files(
    tmp_path: Path, uris: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from clipbranches.embed import chunks

    bars: list[RecordingBar] = []
    monkeypatch.setattr(
        chunks, "_progress_bar", lambda total, initial: bars.append(RecordingBar(total, initial)) or bars[-1]
    )

    def stop(done: int, _: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(CountingEncoder(), uris, tmp_path / "work", progress=True, on_chunk=stop)
    assert [(b.total, b.initial, b.n, b.closed) for b in bars] == [(11, 0, 8, True)]
    run(CountingEncoder(), uris, tmp_path / "work", progress=True)
    assert [(b.total, b.initial, b.n, b.closed) for b in bars[1:]] == [(11, 8, 11, True)], "one bar, from 8 files"


def test_the_progress_bar_shows_all_files_with_a_rate(
    tmp_path: Path, uris: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    run(CountingEncoder(), uris, tmp_path / "work", progress=True)
    err = capsys.readouterr().err
    assert "11/11" in err
    assert "img/s" in err
    assert "/4 " not in err, "no bar per chunk"
    assert "/3 " not in err, "no bar per chunk"


def test_image_sizes_are_recorded_and_a_chunk_without_them_is_encoded_again(tmp_path: Path, uris: list[str]) -> None:
    _, _, report = run(CountingEncoder(), uris, tmp_path / "work")
    expected = []
    for i, uri in enumerate(uris):
        if i != 4:
            with Image.open(uri) as image:
                expected.append(list(image.size))
    assert report.sizes.tolist() == expected
    assert len(set(report.digests.tolist())) == 10
    # a chunk as written before sizes and digests were recorded
    old = tmp_path / "work" / "chunk-000001.npz"
    with np.load(old) as data:
        arrays = {k: data[k] for k in ("positions", "rows", "failures")}
    with open(old, "wb") as f:
        np.savez(f, **arrays)
    encoder = CountingEncoder()
    _, _, again = run(encoder, uris, tmp_path / "work")
    assert again.resumed_chunks == 2
    assert encoder.seen == 3, "the old chunk (one undecodable file) was encoded again"
    assert again.sizes.tolist() == expected
