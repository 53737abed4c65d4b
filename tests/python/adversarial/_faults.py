"""Fault helpers the adversarial tests share: a call bounded in time (a FIFO cannot hang the
suite), a writer that fails as a full disk does, the atomic writer's leftovers."""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

#: Seconds any single bounded step may take (generous: CI machines are shared).
DEADLINE = 60.0
#: Seconds a subprocess that imports torch may take to start and finish its work.
PROCESS_DEADLINE = 180.0


def bounded(call: Callable[[], Any], fifos: Sequence[Path] = (), seconds: float = DEADLINE) -> Any:
    """``call()`` in a helper thread, failed when it has not returned within ``seconds``; a call
    stuck opening or reading one of ``fifos`` is then released (a writer opens and closes it)."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as e:  # noqa: BLE001 (handed to the test thread)
            outcome["error"] = e

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        for fifo in fifos:  # let the stuck reader see end-of-file, so the thread ends
            with contextlib.suppress(OSError):
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(5)
        pytest.fail(f"the call did not return within {seconds:g} s (blocked on a FIFO?)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def full_disk_writer(real: Callable[..., Any], calls_before_failing: int = 0) -> Callable[..., Any]:
    """A stand-in for a writer method or function (``f(self_or_target, file, ...)`` or
    ``f(file, ...)``) that writes a few bytes of its file and then fails as a full disk does,
    after ``calls_before_failing`` calls that go through to ``real``."""
    count = {"calls": 0}

    def write(*args: Any, **kwargs: Any) -> Any:
        count["calls"] += 1
        if count["calls"] <= calls_before_failing:
            return real(*args, **kwargs)
        file = next(a for a in args if isinstance(a, (str, os.PathLike)) or hasattr(a, "write"))
        if hasattr(file, "write"):
            file.write(b"PAR1 half of it")
        else:
            Path(file).write_bytes(b"PAR1 half of it")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    return write


def leftovers(folder: Path) -> list[str]:
    """Temporary files of the atomic writer (or of the old writers) left in ``folder``."""
    return sorted(p.name for p in folder.rglob("*") if ".tmp" in p.name)
