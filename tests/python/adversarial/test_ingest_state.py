"""Ingest under adversity (issue 15): its chunk and head writes are atomic; its resume state is
bound to its source and owned by one process (two real processes, one killed), and survives
damage; FIFOs in a listing never hang it; bad output folders fail before any encoding.

Every case is bounded in time: a call that could block on a FIFO runs in a helper thread that
is unblocked (and the test failed) after a deadline; subprocesses are waited on with a timeout
and killed by their PID.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from _faults import DEADLINE, PROCESS_DEADLINE, bounded, full_disk_writer, leftovers  # noqa: F401  (the sibling helper module)
from PIL import Image

from clipbranches import (
    CatalogExistsError,
    CatalogNotFoundError,
    InvalidArgumentError,
    OutputError,
)
from clipbranches.embed.head import Heads, load_heads, save_heads  # noqa: E402
from clipbranches.embed.ingest import ingest  # noqa: E402
from clipbranches.testing import MeanColourEncoder, tiny_heads  # noqa: E402


@pytest.fixture
def heads() -> Heads:
    return tiny_heads()


def make_folder(path: Path, seed: int, n: int = 7) -> Path:
    """``n`` small random PNGs named ``img<i>.png`` (the same names whatever the seed)."""
    path.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (12 + i, 16, 3), dtype=np.uint8)).save(path / f"img{i}.png")
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return make_folder(tmp_path / "first", seed=1)


@pytest.fixture
def other_folder(tmp_path: Path) -> Path:
    return make_folder(tmp_path / "second", seed=2)


def interrupted(source: Path, target: Path, heads: Heads, after: int = 2, chunk_size: int = 3) -> None:
    """An ingest stopped (as by a Ctrl-C) once ``after`` chunks are written."""

    def stop(done: int, _: int) -> None:
        if done == after:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ingest(source, target, encoder=MeanColourEncoder(), heads=heads, chunk_size=chunk_size, on_chunk=stop)


def fresh_codes(source: Path, where: Path, heads: Heads) -> np.ndarray:
    catalog, _ = ingest(source, where, encoder=MeanColourEncoder(), heads=heads, chunk_size=3)
    return np.asarray(catalog.codes)


def test_chunk_write_onto_a_full_disk(
    tmp_path: Path, folder: Path, heads: Heads, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(np, "savez", full_disk_writer(np.savez, calls_before_failing=1))
        with pytest.raises(OutputError, match=r"cannot write the ingest chunk .*chunk-000001\.npz: the disk is full"):
            ingest(folder, tmp_path / "cat", encoder=MeanColourEncoder(), heads=heads, chunk_size=3)
    assert leftovers(tmp_path) == [], "no half-written chunk"
    catalog, report = ingest(folder, tmp_path / "cat", encoder=MeanColourEncoder(), heads=heads, chunk_size=3)
    assert report.resumed_chunks == 1
    np.testing.assert_array_equal(catalog.codes, fresh_codes(folder, tmp_path / "fresh", heads))


def test_save_heads_onto_a_full_disk(tmp_path: Path, heads: Heads, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "head.safetensors"
    save_heads(heads, target)
    before = target.read_bytes()

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OutputError, match=r"cannot write the head file .*head\.safetensors: the disk is full"):
        save_heads(heads, target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["head.safetensors"]
    monkeypatch.undo()
    assert load_heads(target).config == heads.config


# -- 3. ingest resume bound to its source, owned by one process ---------------------------


def test_ingest_resume_with_another_source(tmp_path: Path, folder: Path, other_folder: Path, heads: Heads) -> None:
    interrupted(folder, tmp_path / "cat", heads)
    encoder = MeanColourEncoder()
    catalog, report = ingest(other_folder, tmp_path / "cat", encoder=encoder, heads=heads, chunk_size=3)
    assert report.resumed_chunks == 0, "the first folder's chunks are not the second's"
    assert encoder.images_seen == 7
    assert all(Path(u).parent == other_folder for u in catalog.items["uri"].to_list())
    np.testing.assert_array_equal(catalog.codes, fresh_codes(other_folder, tmp_path / "fresh", heads))


def test_ingest_resume_after_a_file_changed_in_place(tmp_path: Path, folder: Path, heads: Heads) -> None:
    interrupted(folder, tmp_path / "cat", heads)
    changed = folder / "img1.png"  # in the first chunk, already encoded
    Image.fromarray(np.full((13, 16, 3), 200, np.uint8)).save(changed)
    os.utime(changed, ns=(time.time_ns(), time.time_ns() + 10_000_000_000))  # a later mtime, whatever the clock
    catalog, report = ingest(folder, tmp_path / "cat", encoder=MeanColourEncoder(), heads=heads, chunk_size=3)
    assert report.resumed_chunks == 0, "a changed file is another source"
    np.testing.assert_array_equal(catalog.codes, fresh_codes(folder, tmp_path / "fresh", heads))


def test_ingest_resume_with_other_head_weights(tmp_path: Path, folder: Path, heads: Heads) -> None:
    interrupted(folder, tmp_path / "cat", heads)
    other = tiny_heads(seed=1)  # the same config, other weights
    catalog, report = ingest(folder, tmp_path / "cat", encoder=MeanColourEncoder(), heads=other, chunk_size=3)
    assert report.resumed_chunks == 0
    np.testing.assert_array_equal(catalog.codes, fresh_codes(folder, tmp_path / "fresh", other))


INGEST_SCRIPT = """
import json
import sys
import time
from pathlib import Path

from clipbranches import ClipBranchesError
from clipbranches.embed.ingest import ingest
from clipbranches.testing import MeanColourEncoder, tiny_heads as make_heads

source, target, gate = sys.argv[1:4]


def on_chunk(done, chunks):
    if gate != "-" and done == 1:  # hold the ingest (and its lock) until the test says go
        Path(gate + ".started").touch()
        deadline = time.monotonic() + 120
        while not Path(gate + ".go").exists() and time.monotonic() < deadline:
            time.sleep(0.05)


try:
    catalog, report = ingest(
        source, target, encoder=MeanColourEncoder(), heads=make_heads(), chunk_size=3, on_chunk=on_chunk
    )
    print(json.dumps({"items": len(catalog), "resumed": report.resumed_chunks}))
except ClipBranchesError as e:
    print(json.dumps({"error": type(e).__name__, "message": str(e)}))
"""


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Subprocesses a test starts: any still running at the end is killed by its PID."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=10)  # reaps it and closes its pipes


def start_ingest(
    processes: list[subprocess.Popen[str]], script: Path, source: Path, target: Path, gate: str = "-"
) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, str(script), str(source), str(target), gate],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    processes.append(process)
    return process


def finished(process: subprocess.Popen[str]) -> dict[str, Any]:
    """The JSON line a script process printed (failing the test if it does not end in time)."""
    try:
        out, err = process.communicate(timeout=PROCESS_DEADLINE)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.communicate(timeout=10)
        pytest.fail(f"process {process.pid} did not finish within {PROCESS_DEADLINE:g} s")
    assert process.returncode == 0, err
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def test_two_concurrent_ingests_into_one_target(
    tmp_path: Path, folder: Path, other_folder: Path, heads: Heads, processes: list[subprocess.Popen[str]]
) -> None:
    script = tmp_path / "ingest_one.py"
    script.write_text(INGEST_SCRIPT)
    target = tmp_path / "cat"
    gate = str(tmp_path / "gate")
    first = start_ingest(processes, script, folder, target, gate)
    deadline = time.monotonic() + PROCESS_DEADLINE
    while not Path(gate + ".started").exists():  # the first holds the work directory now
        assert first.poll() is None, first.communicate()[1]
        assert time.monotonic() < deadline, "the first ingest did not start in time"
        time.sleep(0.05)
    second = finished(start_ingest(processes, script, other_folder, target))
    assert second["error"] == "CatalogExistsError"
    assert second["message"] == (
        f"another ingest into {target} is running (pid {first.pid}); "
        "wait for it to finish or stop it, then run this again"
    )
    Path(gate + ".go").touch()
    assert finished(first) == {"items": 7, "resumed": 0}
    # The catalog holds the first folder's codes, and only them.
    np.testing.assert_array_equal(np.asarray(_open(target).codes), fresh_codes(folder, tmp_path / "fresh", heads))
    assert all(Path(u).parent == folder for u in _open(target).items["uri"].to_list())
    assert not (tmp_path / ".cat.ingest").exists()


def test_an_ingest_after_a_killed_one_takes_over(
    tmp_path: Path, folder: Path, other_folder: Path, heads: Heads, processes: list[subprocess.Popen[str]]
) -> None:
    script = tmp_path / "ingest_one.py"
    script.write_text(INGEST_SCRIPT)
    target = tmp_path / "cat"
    gate = str(tmp_path / "gate")
    first = start_ingest(processes, script, folder, target, gate)
    deadline = time.monotonic() + PROCESS_DEADLINE
    while not Path(gate + ".started").exists():
        assert first.poll() is None, first.communicate()[1]
        assert time.monotonic() < deadline, "the first ingest did not start in time"
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGKILL)  # the lock dies with its process
    first.communicate(timeout=10)
    second = finished(start_ingest(processes, script, other_folder, target))
    assert second == {"items": 7, "resumed": 0}
    np.testing.assert_array_equal(np.asarray(_open(target).codes), fresh_codes(other_folder, tmp_path / "fresh", heads))


def _open(path: Path) -> Any:
    from clipbranches import Catalog

    return Catalog.open(path)


# -- 4. damaged resume state ---------------------------------------------------------------


def test_ingest_resume_with_a_truncated_chunk(tmp_path: Path, folder: Path, heads: Heads) -> None:
    interrupted(folder, tmp_path / "cat", heads)
    chunk = tmp_path / ".cat.ingest" / "chunk-000001.npz"
    chunk.write_bytes(chunk.read_bytes()[: chunk.stat().st_size // 2])
    encoder = MeanColourEncoder()
    catalog, report = ingest(folder, tmp_path / "cat", encoder=encoder, heads=heads, chunk_size=3)
    assert report.resumed_chunks == 1, "chunk 0 resumed, chunk 1 encoded again"
    assert encoder.images_seen == 4
    np.testing.assert_array_equal(catalog.codes, fresh_codes(folder, tmp_path / "fresh", heads))


@pytest.mark.parametrize("damage", ["garbage", "empty", "a_directory", "a_fifo"])
def test_ingest_resume_with_a_broken_stamp(damage: str, tmp_path: Path, folder: Path, heads: Heads) -> None:
    interrupted(folder, tmp_path / "cat", heads)
    stamp = tmp_path / ".cat.ingest" / "source.json"
    stamp.unlink()
    if damage == "garbage":
        stamp.write_text('{"fingerprint": ')
    elif damage == "empty":
        stamp.write_bytes(b"")
    elif damage == "a_directory":
        stamp.mkdir()
    else:
        os.mkfifo(stamp)
    catalog, report = bounded(
        lambda: ingest(folder, tmp_path / "cat", encoder=MeanColourEncoder(), heads=heads, chunk_size=3), [stamp]
    )
    assert report.resumed_chunks == 0, "a stamp that cannot be read: the work starts over"
    np.testing.assert_array_equal(catalog.codes, fresh_codes(folder, tmp_path / "fresh", heads))


# -- 5. FIFOs in an ingest listing ---------------------------------------------------------


def test_a_fifo_listed_in_an_ingest_csv(tmp_path: Path, folder: Path, heads: Heads) -> None:
    fifo = tmp_path.resolve() / "fifo.png"
    os.mkfifo(fifo)
    table = tmp_path / "list.csv"
    pl.DataFrame({"path": [str(folder / "img0.png"), str(fifo), str(folder / "img2.png")]}).write_csv(table)
    catalog, report = bounded(lambda: ingest(table, tmp_path / "cat", encoder=MeanColourEncoder(), heads=heads), [fifo])
    assert len(catalog) == 2
    assert report.skipped == [(str(fifo), f"{fifo}: a FIFO, not a regular image file; refusing to read it")]


def test_a_fifo_in_a_folder_source(tmp_path: Path, folder: Path, heads: Heads) -> None:
    fifo = folder.resolve() / "zz.jpg"
    os.mkfifo(fifo)
    catalog, report = bounded(
        lambda: ingest(folder, tmp_path / "cat", encoder=MeanColourEncoder(), heads=heads), [fifo]
    )
    assert len(catalog) == 7
    assert report.skipped == [(str(fifo), f"{fifo}: a FIFO, not a regular image file; refusing to read it")]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_an_ingest_source_table_that_is_a_fifo(suffix: str, tmp_path: Path, heads: Heads) -> None:
    fifo = tmp_path / f"list{suffix}"
    os.mkfifo(fifo)
    encoder = MeanColourEncoder()
    with pytest.raises(InvalidArgumentError, match=rf"list\{suffix}: a FIFO, not a regular source table"):
        bounded(lambda: ingest(fifo, tmp_path / "cat", encoder=encoder, heads=heads), [fifo])


def test_an_image_query_from_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "query.png"
    os.mkfifo(fifo)
    from clipbranches.embed.encoders.files import open_image

    assert bounded(lambda: open_image(fifo), [fifo]) == f"{fifo}: a FIFO, not a regular image file; refusing to read it"


# -- 6. output folders that do not exist, refused before any encoding ----------------------


def test_ingest_into_a_missing_folder(tmp_path: Path, folder: Path, heads: Heads) -> None:
    encoder = MeanColourEncoder()
    target = tmp_path / "nowhere" / "cat"
    with pytest.raises(CatalogNotFoundError, match=f"cannot ingest into {target}: the folder {target.parent} does not"):
        ingest(folder, target, encoder=encoder, heads=heads)
    assert encoder.images_seen == 0, "refused before any encoding"
    assert not (tmp_path / "nowhere").exists()


def test_ingest_into_a_path_with_nul(tmp_path: Path, folder: Path, heads: Heads) -> None:
    encoder = MeanColourEncoder()
    with pytest.raises(InvalidArgumentError, match="contains a NUL byte"):
        ingest(folder, str(tmp_path / "c\x00at"), encoder=encoder, heads=heads)
    assert encoder.images_seen == 0


def test_save_heads_to_a_missing_folder(tmp_path: Path, heads: Heads) -> None:
    from clipbranches.embed.head.store import check_heads_path

    target = tmp_path / "nowhere" / "head.safetensors"
    message = f"cannot write the head file {target}: the folder {target.parent} does not exist"
    with pytest.raises(InvalidArgumentError, match=message):
        check_heads_path(target)  # what a caller checks before training
    with pytest.raises(InvalidArgumentError, match=message):
        save_heads(heads, target)
    assert not (tmp_path / "nowhere").exists()


def test_ingest_lock_error_type_is_catalog_exists(tmp_path: Path) -> None:
    """Within one process too: a second holder of a work directory is refused, typed."""
    from clipbranches.embed.chunks import work_lock

    work = tmp_path / ".cat.ingest"
    with work_lock(work, "ingest into cat"):
        with work_lock(work):  # the same thread: re-entrant
            pass
        errors: list[BaseException] = []

        def other() -> None:
            try:
                with work_lock(work, "ingest into cat"):
                    pass
            except BaseException as e:  # noqa: BLE001
                errors.append(e)

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(DEADLINE)
        assert len(errors) == 1
        assert isinstance(errors[0], CatalogExistsError)
        assert "another ingest into cat is running" in str(errors[0])
    with work_lock(work):  # released
        pass
