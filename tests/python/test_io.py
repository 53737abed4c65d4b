"""The package's file helpers: only regular files are read, every write is atomic and typed."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from clipbranches import InvalidArgumentError, OutputError
from clipbranches._io import atomic_write, open_regular, read_text


def test_a_fifo_a_directory_or_a_missing_file_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InvalidArgumentError, match="a FIFO, not a regular session file"):
        open_regular(fifo, "session file")  # would block forever with a plain open()
    with pytest.raises(InvalidArgumentError, match="a directory"):
        open_regular(tmp_path, "image")
    with pytest.raises(InvalidArgumentError, match="no such image"):
        open_regular(tmp_path / "missing.png", "image")
    with pytest.raises(InvalidArgumentError, match="NUL"):
        open_regular("a\x00b", "image")
    (tmp_path / "ok.txt").write_text("héllo")
    assert read_text(tmp_path / "ok.txt") == "héllo"
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe")
    with pytest.raises(InvalidArgumentError, match="not UTF-8"):
        read_text(tmp_path / "bad.txt")


def test_an_atomic_write_replaces_or_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out.bin"
    atomic_write(target, b"old")
    atomic_write(target, lambda tmp: tmp.write_bytes(b"new"))
    assert target.read_bytes() == b"new"

    def full(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OutputError, match="the disk is full; nothing was changed"):
        atomic_write(target, full)
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"], "no temporary file left"


def test_bad_targets_are_typed(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="is not a directory"):
        atomic_write(tmp_path / "missing" / "out.bin", b"x")
    with pytest.raises(InvalidArgumentError, match="it is a directory"):
        atomic_write(tmp_path, b"x")
    with pytest.raises(InvalidArgumentError, match="NUL"):
        atomic_write(str(tmp_path / "a\x00b"), b"x")
    with pytest.raises(InvalidArgumentError, match="empty"):
        atomic_write("", b"x")


@pytest.mark.parametrize("mask", [0o022, 0o002, 0o077])
def test_an_atomic_write_gives_the_mode_of_a_new_file(tmp_path: Path, mask: int) -> None:
    def private(tmp: Path) -> None:  # a writer with tempfile semantics: its file is 0600
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, b"data")
        os.close(fd)

    old = os.umask(mask)
    try:
        atomic_write(tmp_path / "a.bin", private)
        atomic_write(tmp_path / "b.bin", b"data")
    finally:
        os.umask(old)
    for name in ("a.bin", "b.bin"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~mask, name
