"""Catalog store benchmark: create, open, verify, and a full scan of the codes through the
zero-copy memory-mapped view against the same scan of an in-RAM numpy copy, in one run.

    python benchmarks/store.py              # 10M synthetic items
    python benchmarks/store.py --large      # 100M items (3.2 GB of codes)
    python benchmarks/store.py --n 1000000  # any size

Data: the project's synthetic generator (K=1000 centres on the unit sphere in 32 dims, noise
0.18, the paper's fixed-range quantizer), see ``clipbranches.testing``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
from numpy.typing import NDArray

from clipbranches import Catalog, testing
from harness import machine_line, run_cli, timed

ROWS_PER_CHUNK = 1 << 16
BOX_DIMS = 4


def rss_mb() -> float:
    """Resident set size of this process in MB (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def drop_from_page_cache(path: Path) -> None:
    """Evict a file's clean pages from the page cache (no root needed), for a cold read."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def dim_sums(codes: NDArray[np.uint8]) -> NDArray[np.uint64]:
    """Scan 1: the sum of every dimension (touches every byte)."""
    return np.add.reduce(codes, axis=0, dtype=np.uint64)


def box_count(codes: NDArray[np.uint8]) -> int:
    """Scan 2: items inside one box on the first dims, chunked as a query engine would."""
    lo, hi = 100, 160
    total = 0
    for start in range(0, len(codes), ROWS_PER_CHUNK):
        block = codes[start : start + ROWS_PER_CHUNK, :BOX_DIMS]
        total += int(np.all((block >= lo) & (block <= hi), axis=1).sum())
    return total


def chunks_of(codes: NDArray[np.uint8]) -> Iterator[NDArray[np.uint8]]:
    for start in range(0, len(codes), ROWS_PER_CHUNK):
        yield codes[start : start + ROWS_PER_CHUNK]


def main() -> None:
    run_cli(__doc__, "cb-bench-", 3, run)


def run(n: int, workdir: Path, repeat: int) -> None:
    mb = n * 32 / 1e6
    print(f"store benchmark: {n:,} items x 32 dims = {mb:,.1f} MB of codes (synthetic K=1000, noise 0.18)")
    print(f"{machine_line()}, polars {pl.__version__}\n")
    start = time.perf_counter()
    ram = np.concatenate([block for block, _ in testing.codes(n)])
    labels = testing.labels(n)
    print(f"(generating the codes took {time.perf_counter() - start:.1f} s; not part of any row below)\n")

    path = workdir / "catalog"
    items = pl.DataFrame({"label": labels})
    t_create = timed(lambda: Catalog.create(path, chunks_of(ram), items), 1)

    rss_before = rss_mb()
    t_open = timed(lambda: Catalog.open(path).codes, repeat=max(repeat, 5))
    catalog = Catalog.open(path)
    view = catalog.codes
    rss_open = rss_mb() - rss_before
    t_verify = timed(catalog.verify, 1)

    assert np.array_equal(dim_sums(view), dim_sums(ram)), "the view and the copy disagree"
    rows: list[tuple[str, float, str]] = [
        ("create (stream codes, items, checksums)", t_create, f"{mb / t_create:,.0f} MB/s"),
        ("open (manifest, sizes, headers, mmap)", t_open, f"RSS +{rss_open:.1f} MB"),
        ("verify (blake3 of every file)", t_verify, f"{mb / t_verify:,.0f} MB/s"),
    ]
    for name, scan in (("per-dim sum", dim_sums), ("box count", box_count)):
        t_view = timed(lambda scan=scan: scan(view), repeat)  # type: ignore[misc]
        t_ram = timed(lambda scan=scan: scan(ram), repeat)  # type: ignore[misc]
        rows.append((f"scan {name}: mmap view, warm", t_view, f"{t_view / t_ram:.2f}x RAM"))
        rows.append((f"scan {name}: in-RAM copy", t_ram, "baseline"))
    drop_from_page_cache(path / "codes.u8")
    cold = Catalog.open(path)
    t_cold = timed(lambda: dim_sums(cold.codes), 1)
    rows.append(("scan per-dim sum: mmap view, cold", t_cold, f"{mb / t_cold:,.0f} MB/s from disk"))
    rss_scanned = rss_mb() - rss_before

    width = max(len(r[0]) for r in rows)
    print(f"| {'step':<{width}} | {'time':>10} | note")
    print(f"|{'-' * (width + 2)}|{'-' * 12}|{'-' * 24}")
    for name, seconds, note in rows:
        shown = f"{seconds * 1e3:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"
        print(f"| {name:<{width}} | {shown:>10} | {note}")
    print(f"\nRSS after the scans: +{rss_scanned:,.0f} MB (the mapped pages read; the OS may drop them)")


if __name__ == "__main__":
    main()
