"""What every benchmark script shares: the command line, a scratch directory, the machine line
printed above each table, and a median timer."""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import clipbranches


def run_cli(doc: str | None, prefix: str, default_repeat: int, run: Callable[[int, Path, int], None]) -> None:
    """Parse ``--n/--large/--repeat/--dir``, then ``run(n, workdir, repeat)`` in a scratch
    directory that is removed afterwards, whatever happens."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000_000, help="number of items (default 10M)")
    parser.add_argument("--large", action="store_true", help="100M items")
    parser.add_argument("--repeat", type=int, default=default_repeat, help="runs per measurement (median reported)")
    parser.add_argument("--dir", type=Path, default=None, help="where to write the catalog (default: a temp dir)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix=prefix, dir=args.dir))
    try:
        run(100_000_000 if args.large else args.n, workdir, args.repeat)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def machine_line() -> str:
    """CPUs, threads and versions, for the line above a table."""
    threads = os.environ.get("CLIPBRANCHES_NUM_THREADS", "all")
    return (
        f"machine: {os.cpu_count()} CPUs (threads: {threads}), Python {platform.python_version()}, "
        f"numpy {np.__version__}, clipbranches {clipbranches.__version__}"
    )


def timed(work: Callable[[], object], repeat: int, warmup: bool = False) -> float:
    """Median wall time of ``repeat`` runs (after one untimed run if ``warmup``), in seconds."""
    if warmup:
        work()
    times = []
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
