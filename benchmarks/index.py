"""Index and query engine benchmark: box queries (1 box, one 30-box model, a 25-member
ensemble of 750 boxes) and exact top-60, through the block index, the fused scan and numpy
brute force, plus the index build, all in one run.

    python benchmarks/index.py              # 10M synthetic items
    python benchmarks/index.py --large      # 100M items
    python benchmarks/index.py --n 1000000

Boxes are made the way a learner would make them until the learner lands: for a target
cluster, each box takes a random subset of 4, 6 or 8 dims (in the original's proportions
64:32:8) and spans the cluster's 5th-95th percentiles on those dims, widened to contain a
random member of the cluster (its seed).

Those boxes are as wide as a cluster, so 30 of them hold nearly the whole catalog. A trained box
must exclude the random negatives, so the table adds "selective" boxes: each recipe box shrunk
toward its seed until at most 1 of 2,000 randomly sampled items is inside (what a learner's box
looks like against 500+ random negatives). Both kinds are timed in the same run.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from clipbranches import Catalog, testing
from clipbranches.learn import BranchEnsemble, DecisionBranch, build_training_set
from clipbranches.store import Box
from harness import machine_line, run_cli, timed

SUBSET_SIZES = (4, 6, 8)
#: Above this many items the slow engines are timed once, with the 750-box column scaled from 30.
BIG = 20_000_000
SUBSET_WEIGHTS = (64 / 104, 32 / 104, 8 / 104)


def cluster_boxes(
    codes: NDArray[np.uint8], members: NDArray[np.int64], n: int, group: int, rng: np.random.Generator
) -> list[Box]:
    """``n`` boxes around one cluster (see the module docstring)."""
    cluster = codes[members]
    boxes = []
    for _ in range(n):
        size = rng.choice(SUBSET_SIZES, p=SUBSET_WEIGHTS)
        dims = np.sort(rng.choice(codes.shape[1], size=size, replace=False))
        seed = cluster[rng.integers(len(cluster))]
        lo = np.minimum(np.percentile(cluster[:, dims], 5, axis=0).astype(int), seed[dims])
        hi = np.maximum(np.percentile(cluster[:, dims], 95, axis=0).astype(int), seed[dims])
        boxes.append(Box(tuple(int(d) for d in dims), tuple(int(v) for v in lo), tuple(int(v) for v in hi), group))
    return boxes


def selective(
    boxes: list[Box], codes: NDArray[np.uint8], members: NDArray[np.int64], rng: np.random.Generator
) -> list[Box]:
    """Each box shrunk toward a random cluster member until at most 1 of 2,000 sampled items is inside."""
    sample = codes[rng.integers(len(codes), size=2000)]
    out = []
    for b in boxes:
        dims = list(b.dims)
        seed = codes[members[rng.integers(len(members))]][dims].astype(int)
        lo, hi = np.minimum(b.lo, seed), np.maximum(b.hi, seed)
        for f in np.linspace(1, 0, 41):
            new_lo = np.floor(seed - f * (seed - lo)).astype(int)
            new_hi = np.ceil(seed + f * (hi - seed)).astype(int)
            if np.all((sample[:, dims] >= new_lo) & (sample[:, dims] <= new_hi), axis=1).sum() <= 1:
                break
        out.append(Box(b.dims, tuple(int(v) for v in new_lo), tuple(int(v) for v in new_hi), b.group))
    return out


def numpy_boxes(codes: NDArray[np.uint8], boxes: list[Box]) -> int:
    """Brute force: one boolean mask per box, counts summed."""
    counts = np.zeros(len(codes), np.uint16)
    for b in boxes:
        mask = np.ones(len(codes), bool)
        for d, lo, hi in zip(b.dims, b.lo, b.hi, strict=True):
            column = codes[:, d]
            mask &= (column >= lo) & (column <= hi)
        counts += mask
    return int(np.count_nonzero(counts))


def numpy_top_k(codes: NDArray[np.uint8], query: NDArray[np.uint8], k: int) -> NDArray[np.int64]:
    """Brute force in chunks: squared L2 in int32, then argpartition."""
    q = query.astype(np.int32)
    best_d = np.empty(0, np.int64)
    best_i = np.empty(0, np.int64)
    for start in range(0, len(codes), 1 << 20):
        diff = codes[start : start + (1 << 20)].astype(np.int32) - q
        d = np.einsum("ij,ij->i", diff, diff).astype(np.int64)
        best_d = np.concatenate([best_d, d])
        best_i = np.concatenate([best_i, np.arange(start, start + len(d))])
        keep = np.argpartition(best_d, min(k, len(best_d) - 1))[:k]
        best_d, best_i = best_d[keep], best_i[keep]
    order = np.lexsort((best_i, best_d))
    return best_i[order]


def main() -> None:
    run_cli(__doc__, "cb-index-bench-", 5, run)


def run(n: int, workdir: Path, repeat: int) -> None:
    print(f"index benchmark: {n:,} synthetic items x 32 dims (K=1000, noise 0.18)")
    print(f"{machine_line()}\n")
    start = time.perf_counter()
    catalog = testing.make_catalog(workdir / "catalog", n)
    print(f"(creating the catalog took {time.perf_counter() - start:.1f} s)")
    codes = catalog.codes
    labels = catalog.items["label"].to_numpy()
    rng = np.random.default_rng(0)
    target = int(labels[rng.integers(n)])
    members = np.flatnonzero(labels == target)
    one = cluster_boxes(codes, members, 1, 0, rng)
    model = cluster_boxes(codes, members, 30, 0, rng)
    ensemble = [b for g in range(25) for b in cluster_boxes(codes, members, 30, g, rng)]
    narrow = {name: selective(b, codes, members, rng) for name, b in [("1", one), ("30", model), ("750", ensemble)]}
    query = codes[members[0]]

    start = time.perf_counter()
    index = catalog.build_index()
    build = time.perf_counter() - start
    per_item = index.nbytes / n

    hits = {
        name: len(catalog.query_boxes(b, method="index").rows)
        for name, b in [("1", one), ("30", model), ("750", ensemble)]
    }
    # The property tests prove index == scan on random boxes; here a spot check on 1 and 30 boxes
    # (the scan of 750 boxes takes tens of seconds at 10M).
    for b in (one, model):
        by_index = np.sort(catalog.query_boxes(b, method="index").rows)
        assert np.array_equal(by_index, catalog.query_boxes(b, method="scan").rows), "index and scan differ"
    for b in narrow.values():
        by_index = np.sort(catalog.query_boxes(b, method="index").rows)
        assert np.array_equal(by_index, catalog.query_boxes(b, method="scan").rows), "index and scan differ"
    reference = numpy_top_k(codes, query, 60)
    assert np.array_equal(catalog.nearest(query, 60)[1][0], reference), "top-60 differs from numpy"

    def row(name: str, q: Callable[[list[Box]], object], top: Callable[[], object], big: bool) -> list[str]:
        r = max(1, repeat if big else 1)
        t1 = timed(lambda: q(one), r, warmup=True)
        t30 = timed(lambda: q(model), r, warmup=True)
        if big:
            slow = t30 > 1.0  # the fused scan: seconds per run, one run is precise enough
            t750 = f"{timed(lambda: q(ensemble), 1 if slow else r, warmup=not slow) * 1e3:,.1f}"
        else:  # slow engines: 750 boxes would take minutes; time one member and scale by 25
            t750 = f"{timed(lambda: q(ensemble[:30]), 1) * 25e3:,.0f} (25 x 30)"
        return [name, f"{t1 * 1e3:,.1f}", f"{t30 * 1e3:,.1f}", t750, f"{timed(top, r, warmup=True) * 1e3:,.1f}"]

    def top_60() -> object:
        return catalog.nearest(query, 60)

    rows = [
        row("block index", lambda b: catalog.query_boxes(b, method="index"), top_60, True),
        row("fused scan", lambda b: catalog.query_boxes(b, method="scan"), top_60, n <= BIG),
    ]
    if n <= BIG:  # numpy at 100M: minutes per column
        rows.append(
            row("numpy brute force", lambda b: numpy_boxes(codes, b), lambda: numpy_top_k(codes, query, 60), False)
        )
    narrow_hits = {name: len(catalog.query_boxes(b, method="index").rows) for name, b in narrow.items()}

    def narrow_ms(name: str, method: Literal["index", "scan"], reps: int) -> float:
        return timed(lambda: catalog.query_boxes(narrow[name], method=method), reps, warmup=reps > 1) * 1e3

    narrow_index = {name: narrow_ms(name, "index", max(1, repeat)) for name in narrow}
    narrow_scan = {name: narrow_ms(name, "scan", 1) for name in ("1", "30")}
    rows.append(["block index, selective", *(f"{narrow_index[k]:,.1f}" for k in ("1", "30", "750")), ""])
    rows.append(["fused scan, selective", f"{narrow_scan['1']:,.1f}", f"{narrow_scan['30']:,.1f}", "", ""])
    print(f"index: built in {build:.2f} s, {index.nbytes / 1e6:,.1f} MB = {per_item:.1f} bytes per item")
    print(
        f"hits: 1 box {hits['1']:,}, 30 boxes {hits['30']:,}, 750 boxes {hits['750']:,} (cluster of {len(members):,})"
    )
    print(
        f"selective boxes hit: 1 box {narrow_hits['1']:,}, 30 boxes {narrow_hits['30']:,}, "
        f"750 boxes {narrow_hits['750']:,}\n"
    )
    header = ["engine (times in ms)", "1 box", "30 boxes", "750 boxes / 25 groups", "top-60 exact"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(
            "| "
            + " | ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
            + " |"
        )
    print("\n(top-60 for 'fused scan' is the same exact SIMD scan as for 'block index': the index has no top-k path)")
    trained_models(catalog, members, repeat)


def trained_models(catalog: Catalog, members: NDArray[np.int64], repeat: int) -> None:
    """Boxes from the learners, trained the way the original was measured: 20 positives of the
    target cluster and 500 random negatives; query = every box of the model on the index."""
    positives = np.random.default_rng(1).choice(members, size=20, replace=False)
    training = build_training_set(catalog.codes, positives, random_negatives=500, seed=0)
    print("\nlearner-trained models (20 positives of the cluster + 500 random negatives):\n")
    print("| model | boxes | fit ms | index query ms | scan query ms | hits | accepted | F1 vs the cluster |")
    print("|---|---|---|---|---|---|---|---|")
    learners: list[tuple[str, DecisionBranch | BranchEnsemble]] = [
        ("branch", DecisionBranch(seed=0)),
        ("ensemble-25", BranchEnsemble(seed=0)),
    ]
    for name, learner in learners:
        fit = timed(functools.partial(learner.fit, training.codes, training.labels, training.weights), repeat)
        boxes = learner.box_set_  # the native set the engine queries (no conversion per query)
        assert boxes is not None
        query = timed(functools.partial(catalog.query_boxes, boxes, method="index"), max(1, repeat), warmup=True)
        scan = timed(functools.partial(catalog.query_boxes, boxes, method="scan"), 1)
        hits = catalog.query_boxes(boxes, method="index")
        accepted = learner.apply(catalog).rows
        hit = len(np.intersect1d(accepted, members))
        f1 = 2 * hit / (len(accepted) + len(members)) if hit else 0.0
        print(
            f"| {name} | {len(boxes)} | {fit * 1e3:.1f} | {query * 1e3:.1f} | {scan * 1e3:,.1f} | "
            f"{len(hits.rows):,} | {len(accepted):,} | {f1:.3f} |"
        )


if __name__ == "__main__":
    main()
