"""One catalog against the same items as a catalog set of 8 shards, in one process and on a local
Ray cluster: the refine time per model in the same run, and what Ray adds per round.

    python benchmarks/cluster.py                    # 10M items, 8 shards
    python benchmarks/cluster.py --items 100000000  # the issue's 100M (3.2 GB of codes, twice)

Labels as in benchmarks/engine.py: 10 positives from one cluster and 10 negatives (plus the
default 500 random negatives); each model's median over ``--repeat`` rounds, each round with
another cluster and seed, and labels no earlier round used (the engines keep the codes of rows
they have gathered: each round pays for fetching its labels' codes, the worst case of a
session). Every answer is checked against the single catalog's (ids, scores, total) before its
time counts. Columns:

- one catalog: :class:`SearchEngine` over the one catalog (the baseline);
- 8 shards, one process: :class:`ShardedEngine`, the shards one after another in this process;
- 8 shards, Ray: one actor per shard on a local Ray cluster (``cluster="local"``);
- Ray - one process: what Ray adds to a round;
- fan-outs: the calls to all the actors one Ray round makes (gathers of codes, passes, the apply).

Above the table, the Ray fan-out: the median round trip of a call that does no work to all 8
actors at once: the transport and scheduling a round pays per fan-out, whatever the shards' work.

On this 2-core machine the shards cannot run side by side on more than two cores, so Ray's
parallelism is bounded by two; what a cluster of N machines gives is modelled in the README
("Scale out") from these figures.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from clipbranches import Catalog, CatalogSet, testing
from clipbranches.engine import SearchEngine
from engine import labels_for
from harness import machine_line

MODELS = ("branch", "ensemble", "hybrid", "linear")
SHARDS = 8
#: Every fan-out of the Ray engine (its method), and how many each timed round made.
FAN_OUTS: list[str] = []
ROUND_FAN_OUTS: list[int] = []


def build(workdir: Path, n: int) -> tuple[Path, Path, np.ndarray]:
    """The one catalog and the 8-shard set of the same codes and ids (and the cluster labels)."""
    codes = np.lib.format.open_memmap(workdir / "codes.npy", mode="w+", dtype=np.uint8, shape=(n, 32))
    at = 0
    for block, _ in testing.codes(n, seed=0):
        codes[at : at + len(block)] = block
        at += len(block)
    labels = testing.labels(n, seed=0)
    Catalog.create(workdir / "one", codes, pl.DataFrame({"id": np.arange(n), "label": labels}))
    cuts = np.linspace(0, n, SHARDS + 1).astype(np.int64)
    parts = []
    for i, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
        items = pl.DataFrame({"id": np.arange(a, b), "label": labels[a:b]})
        Catalog.create(workdir / f"part{i}", codes[a:b], items)
        parts.append(workdir / f"part{i}")
    CatalogSet.create(workdir / "set", parts, move=True)
    (workdir / "codes.npy").unlink()
    return workdir / "one", workdir / "set", labels


def rounds(
    engine: SearchEngine, labels: np.ndarray, model: str, repeat: int, first: int
) -> tuple[float, list[tuple[Any, ...]]]:
    """Median ms of ``repeat`` refine rounds (labels ``first``, ``first + 1``...), and each
    round's answer (ids, scores, total). The fan-outs of the rounds themselves (not of reading
    their answers) are counted in :data:`ROUND_FAN_OUTS`."""
    times, answers = [], []
    for run in range(first, first + repeat):
        pos, neg = labels_for(labels, run)
        before = len(FAN_OUTS)
        start = time.perf_counter()
        results = engine.refine(pos.tolist(), neg.tolist(), model=model, seed=run)
        times.append((time.perf_counter() - start) * 1000)
        ROUND_FAN_OUTS.append(len(FAN_OUTS) - before)
        answers.append((results.ids[:100].tolist(), np.round(results.scores[:100], 6).tolist(), results.total))
    return statistics.median(times), answers


def fan_out_ms(engine: SearchEngine, repeat: int = 50) -> tuple[float, float]:
    """Median and p90 of a no-work call to every shard's actor at once."""
    calls = [()] * len(engine.workers)  # type: ignore[attr-defined]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        engine._map("count", calls)  # type: ignore[attr-defined]  # the fan-out every round uses
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.9)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args()
    print(machine_line())
    workdir = Path(tempfile.mkdtemp(prefix="cluster-bench-", dir=args.workdir))
    try:
        start = time.perf_counter()
        one_path, set_path, labels = build(workdir, args.items)
        print(f"{args.items:,} items: one catalog and {SHARDS} shards built in {time.perf_counter() - start:.0f} s")
        one = SearchEngine.open(one_path, build_index=True)
        local = SearchEngine.open(set_path, build_index=True)
        start = time.perf_counter()
        ray = SearchEngine.open(set_path, cluster="local")
        print(f"local Ray cluster and {SHARDS} actors up in {time.perf_counter() - start:.1f} s\n")
        median, p90 = fan_out_ms(ray)
        print(f"Ray fan-out to {SHARDS} actors, no work: median {median:.2f} ms, p90 {p90:.2f} ms\n")
        real_map = ray._map  # type: ignore[attr-defined]

        def counted(method: str, calls: Any) -> list[Any]:
            FAN_OUTS.append(method)
            return real_map(method, calls)

        ray._map = counted  # type: ignore[attr-defined]
        print(
            f"| model | one catalog | {SHARDS} shards, one process | {SHARDS} shards, Ray | Ray - one process "
            "| fan-outs per Ray round |"
        )
        print("|---|---|---|---|---|---|")
        for m, model in enumerate(MODELS):
            first = 1000 * m  # labels no other model's rounds used
            base, expected = rounds(one, labels, model, args.repeat, first)
            times = []
            for engine in (local, ray):
                ROUND_FAN_OUTS.clear()
                took, answers = rounds(engine, labels, model, args.repeat, first)
                if answers != expected:
                    raise SystemExit(f"{model}: the sharded answer differs from the one catalog's")
                times.append(took)
            per_round = statistics.median(ROUND_FAN_OUTS)  # the Ray engine's (it ran last)
            cells = [f"{base:,.1f} ms", f"{times[0]:,.1f} ms", f"{times[1]:,.1f} ms", f"{times[1] - times[0]:+,.1f} ms"]
            print(f"| {model} | " + " | ".join(cells) + f" | {per_round:g} |")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
