"""Block-size sweep of the block index: build time and query times for recipe and selective
boxes (the boxes of ``benchmarks/index.py``) per ``block_items``, in one run.

    python benchmarks/block_size.py                       # 10M items, 512 1024 4096 16384
    python benchmarks/block_size.py --n 1000000 --sizes 128 256 512 1024 2048 4096 8192
"""

from __future__ import annotations

import argparse
import functools
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from clipbranches import Catalog, testing
from clipbranches.store import Box
from harness import machine_line, timed
from index import cluster_boxes, selective


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 4096, 16384])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="cb-blocks-"))
    try:
        catalog = testing.make_catalog(workdir / "catalog", args.n)
        codes = catalog.codes
        labels = catalog.items["label"].to_numpy()
        rng = np.random.default_rng(0)
        members = np.flatnonzero(labels == int(labels[rng.integers(args.n)]))
        recipe = [b for g in range(25) for b in cluster_boxes(codes, members, 30, g, rng)]
        narrow = selective(recipe, codes, members, rng)
        queries: dict[str, list[Box]] = {
            "r1": recipe[:1],
            "r30": recipe[:30],
            "r750": recipe,
            "s1": narrow[:1],
            "s30": narrow[:30],
            "s750": narrow,
        }
        print(f"block-size sweep: {args.n:,} synthetic items; r = recipe boxes, s = selective; times in ms")
        print(f"{machine_line()}\n")
        print("| block_items | build s | " + " | ".join(queries) + " |")
        print("|---|---|" + "---|" * len(queries))
        for size in args.sizes:
            start = time.perf_counter()
            catalog.build_index(block_items=size)
            build = time.perf_counter() - start
            fresh = Catalog.open(catalog.path)
            query = functools.partial(fresh.query_boxes, method="index")
            cells = [
                f"{timed(functools.partial(query, b), args.repeat, warmup=True) * 1e3:,.1f}" for b in queries.values()
            ]
            print(f"| {size} | {build:.1f} | " + " | ".join(cells) + " |", flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
