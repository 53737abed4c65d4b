"""The files the package reads and writes on a user's behalf: only regular files are opened
(a FIFO, a socket or a device in their place never blocks a read), and every write is atomic.

- :func:`open_regular`: open for reading without blocking, then refuse what is not a regular
  file (checked on the open descriptor, so nothing can be swapped in between).
- :func:`atomic_write`: write to a temporary file in the target's directory, fsync it, rename
  it over the target, fsync the directory. A failure removes the temporary file, leaves any
  previous file intact and raises a typed error naming the path.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

from clipbranches.exceptions import ClipBranchesError, InvalidArgumentError, OutputError

__all__ = ["atomic_write", "check_path", "dir_identity", "fsync_dir", "open_regular", "read_bytes", "read_text"]


def check_path(path: str | os.PathLike[str], what: str = "file") -> Path:
    """``path`` as a :class:`Path`; a NUL byte (or something that is not a path) is an
    :class:`InvalidArgumentError`."""
    try:
        text = os.fspath(path)
    except TypeError:
        raise InvalidArgumentError(f"the {what} path must be a string or a path, not {type(path).__name__}") from None
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if "\x00" in text:
        raise InvalidArgumentError(f"the {what} path {text!r} contains a NUL byte")
    if not text:
        raise InvalidArgumentError(f"the {what} path is empty")
    return Path(text)


def open_regular(
    path: str | os.PathLike[str],
    what: str = "file",
    *,
    error: type[ClipBranchesError] = InvalidArgumentError,
) -> IO[bytes]:
    """Open ``path`` for reading if it is a regular file (symlinks to one are followed).

    Raises ``error`` (default :class:`InvalidArgumentError`) naming ``what`` when it is
    missing, a directory, a FIFO, a socket or a device, or cannot be read.
    """
    target = check_path(path, what)
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise error(f"{target}: no such {what}") from None
    except IsADirectoryError:
        raise error(f"{target}: a directory, not a {what}") from None
    except OSError as e:
        raise error(f"{target}: cannot open the {what} ({e.strerror or e})") from None
    try:
        mode_bits = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode_bits):
            kind = _kind(mode_bits)
            raise error(f"{target}: a {kind}, not a regular {what}; refusing to read it")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(
    path: str | os.PathLike[str], what: str = "file", *, error: type[ClipBranchesError] = InvalidArgumentError
) -> bytes:
    """The whole of a regular file (:func:`open_regular`'s checks)."""
    with open_regular(path, what, error=error) as f:
        return f.read()


def read_text(
    path: str | os.PathLike[str], what: str = "file", *, error: type[ClipBranchesError] = InvalidArgumentError
) -> str:
    """A regular file as UTF-8 text; undecodable bytes are an error of the same type."""
    data = read_bytes(path, what, error=error)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{path}: not UTF-8 text ({e})") from None


def atomic_write(path: str | os.PathLike[str], write: bytes | Callable[[Path], None], what: str = "file") -> Path:
    """Write ``path`` atomically: ``write`` is the bytes, or a function that writes a given
    temporary path (e.g. ``frame.write_parquet``). Returns the target, with the mode a new
    file gets (``0o666 & ~umask``) whatever mode the writer created its temporary file with.

    Raises
    ------
    InvalidArgumentError
        A path with a NUL byte, a target that is a directory, a parent that is not a directory.
    OutputError
        The operating system refused the write (disk full, read-only, permissions); the
        previous file, if any, is intact and no temporary file is left.
    """
    target = check_path(path, what)
    parent = target.parent
    if not parent.is_dir():
        raise InvalidArgumentError(f"cannot write the {what} {target}: {parent} is not a directory")
    if target.is_dir():
        raise InvalidArgumentError(f"cannot write the {what} {target}: it is a directory")
    tmp = parent / f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        if isinstance(write, (bytes, bytearray, memoryview)):
            with open(tmp, "xb") as f:
                f.write(write)
        else:
            write(tmp)
        # A writer may create its file 0600 (tempfile semantics): the target gets the mode any
        # new file gets, so a shared catalog is readable like the rest of its folder.
        os.chmod(tmp, 0o666 & ~_umask())
        _fsync_file(tmp)
        os.replace(tmp, target)
        fsync_dir(parent)
    except BaseException as e:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        except OSError:
            pass  # best effort: the original error is the one to report
        if isinstance(e, OSError):
            reason = "the disk is full" if e.errno == errno.ENOSPC else (e.strerror or str(e))
            raise OutputError(f"cannot write the {what} {target}: {reason}; nothing was changed") from e
        raise
    return target


def _umask() -> int:
    """This process's umask, read without changing it where the system tells it (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_guard:  # elsewhere: set and restore it (no other thread of ours changes it meanwhile)
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


_umask_guard = threading.Lock()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in directory ``path`` durable (where the file system can)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # some file systems cannot open directories; the rename is still atomic
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def dir_identity(path: Path) -> tuple[int, int] | None:
    """(st_dev, st_ino) of a directory, or None if it cannot be read: tells a directory from
    another one swapped in at the same path."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino)


def _kind(mode_bits: int) -> str:
    if stat.S_ISDIR(mode_bits):
        return "directory"
    if stat.S_ISFIFO(mode_bits):
        return "FIFO"
    if stat.S_ISSOCK(mode_bits):
        return "socket"
    if stat.S_ISCHR(mode_bits) or stat.S_ISBLK(mode_bits):
        return "device"
    return "special file"
