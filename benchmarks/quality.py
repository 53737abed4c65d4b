"""Quality report: how many positives a model needs before its F1 beats nearest-neighbour search
(the original paper's Figure 3 protocol), on real image features.

    python benchmarks/quality.py                      # all models, 10 classes x 7 p x 3 seeds
    python benchmarks/quality.py --models branch,ensemble --seeds 1
    python benchmarks/quality.py --variants          # the alternatives the defaults were chosen over

Data (``clipbranches.evaluation``): Fashion-MNIST (Debian dataset-fashion-mnist), every image
embedded with EfficientNet-Lite0 (1280-d), PCA to 32 dims, unit norm, the paper's fixed-range
quantizer; a stratified 50/50 split (seed 0) into a training pool and a test catalog (35,000
items, indexed). The embeddings are cached in ``.cache/fmnist_lite0_pca32.npz``; computing them
takes ~15 s on a GPU and over an hour on 2 CPU cores.

Per class, number of positives p and seed: p positives of the class from the pool plus 500
random negatives from the rest of the pool (not cleaned: ~10% are of the class), fit, apply to
the whole test catalog, F1 against the class's test items. Baselines given the true number k of
test positives (an oracle): ``nn_min`` (smallest distance to any positive) and ``nn_centroid``
(distance to the positives' centroid), top k.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from clipbranches import BranchEnsemble, Catalog, FixedRangeQuantizer, build_training_set
from clipbranches.evaluation import embed_fashion_mnist, stratified_split
from clipbranches.learn import DecisionBranch
from clipbranches.models import MODELS, BoxModel, Model
from clipbranches.selftrain import SelfTrainedLinear
from harness import machine_line, timed

CACHE = Path(__file__).resolve().parent.parent / ".cache" / "fmnist_lite0_pca32.npz"
PS = (1, 2, 4, 8, 16, 32, 64)

#: Alternatives to the registry's defaults, each a measured reason for a default (--variants).
VARIANTS: dict[str, Callable[[int], Model]] = {
    "branch_minpts_original": lambda seed: BoxModel("branch", DecisionBranch(seed=seed, min_pts=None)),
    "branch_stop_infinite": lambda seed: BoxModel("branch", DecisionBranch(seed=seed, open_sides=False)),
    "ensemble_original": lambda seed: BoxModel(
        "ensemble", BranchEnsemble(seed=seed, min_pts=None, keep_positives=False)
    ),
    "ensemble_bootstrap_positives": lambda seed: BoxModel("ensemble", BranchEnsemble(seed=seed, keep_positives=False)),
    "ensemble_keep_positives": lambda seed: BoxModel("ensemble", BranchEnsemble(seed=seed, keep_positives=True)),
    "ensemble_threshold_0.3": lambda seed: BoxModel("ensemble", BranchEnsemble(seed=seed, threshold=0.3)),
    "linear_pseudo_64": lambda seed: SelfTrainedLinear(seed, pseudo_weight=64.0),
    "linear_pseudo_128": lambda seed: SelfTrainedLinear(seed, pseudo_weight=128.0),
}
BASELINES = ("nn_min", "nn_centroid")


def load_embeddings(path: Path) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    if not path.is_file():
        print(f"(no cached embeddings at {path}: computing them; on CPU this takes over an hour)")
        embeddings, labels = embed_fashion_mnist()
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, embeddings=embeddings, labels=labels)
    data = np.load(path)
    return data["embeddings"], data["labels"]


def f1(found: NDArray[np.int64], truth: NDArray[np.int64]) -> float:
    hit = len(np.intersect1d(found, truth))
    return 0.0 if hit == 0 else 2 * hit / (len(found) + len(truth))


def squared_distances(codes: NDArray[np.uint8], queries: NDArray[np.uint8]) -> NDArray[np.int64]:
    c = codes.astype(np.int64)
    q = queries.astype(np.int64)
    return (c * c).sum(1)[:, None] - 2 * c @ q.T + (q * q).sum(1)[None, :]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated registry names")
    parser.add_argument(
        "--variants", action="store_true", help="the alternatives in VARIANTS, with branch and ensemble"
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--ps", default=",".join(map(str, PS)))
    parser.add_argument("--features", type=Path, default=CACHE)
    args = parser.parse_args()
    factories: dict[str, Callable[[int], Model]] = dict(MODELS)
    if args.variants:
        factories = {"branch": MODELS["branch"], "ensemble": MODELS["ensemble"], "linear": MODELS["linear"], **VARIANTS}
    models = list(factories) if args.variants else args.models.split(",")
    if unknown := [m for m in models if m not in factories]:
        raise SystemExit(f"unknown models {unknown}; choose from {', '.join(factories)}")
    ps = [int(p) for p in args.ps.split(",")]

    embeddings, labels = load_embeddings(args.features)
    codes = FixedRangeQuantizer().quantize(embeddings)
    pool_ids, test_ids = stratified_split(labels, seed=0)
    pool_codes, pool_labels = codes[pool_ids], labels[pool_ids]
    test_labels = labels[test_ids]
    workdir = Path(tempfile.mkdtemp(prefix="cb-quality-"))
    try:
        catalog = Catalog.create(workdir / "test", codes[test_ids])
        catalog.build_index()
        print("quality report: Fashion-MNIST, EfficientNet-Lite0 -> PCA 32 -> uint8 codes")
        print(f"pool {len(pool_ids):,} items, test catalog {len(test_ids):,} items (indexed), {args.seeds} seeds")
        print(f"{machine_line()}\n")
        f1s: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
        fit_ms: dict[str, list[float]] = defaultdict(list)
        apply_ms: dict[str, list[float]] = defaultdict(list)
        for p in ps:
            for c in range(10):
                truth = np.flatnonzero(test_labels == c)
                members = np.flatnonzero(pool_labels == c)
                for seed in range(args.seeds):
                    rng = np.random.default_rng([c, p, seed])
                    positives = rng.choice(members, size=p, replace=False)
                    training = build_training_set(pool_codes, positives, random_negatives=500, seed=seed)
                    for name in models:
                        model = factories[name](seed)
                        start = time.perf_counter()
                        model.fit(training)
                        mid = time.perf_counter()
                        ranked = model.apply(catalog)
                        end = time.perf_counter()
                        fit_ms[name].append((mid - start) * 1e3)
                        apply_ms[name].append((end - mid) * 1e3)
                        f1s[name][p].append(f1(ranked.ids, truth))
                    d = squared_distances(catalog.codes, pool_codes[positives])
                    f1s["nn_min"][p].append(f1(np.argsort(d.min(1), kind="stable")[: len(truth)], truth))
                    centroid = pool_codes[positives].astype(np.float64).mean(0)
                    dc = ((catalog.codes.astype(np.float64) - centroid) ** 2).sum(1)
                    f1s["nn_centroid"][p].append(f1(np.argsort(dc, kind="stable")[: len(truth)], truth))
            print(f"  p={p} done", flush=True)
        report(f1s, fit_ms, apply_ms, models, ps)
        ensemble_fit_time(pool_codes, pool_labels)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def ensemble_fit_time(pool_codes: NDArray[np.uint8], pool_labels: NDArray[np.int64]) -> None:
    """The learner issue's speed target: ensemble fit on 20 positives + 500 negatives."""
    times = []
    for c in range(10):
        positives = np.random.default_rng(c).choice(np.flatnonzero(pool_labels == c), size=20, replace=False)
        training = build_training_set(pool_codes, positives, random_negatives=500, seed=c)
        fit = functools.partial(BranchEnsemble(seed=c).fit, training.codes, training.labels, training.weights)
        times.append(timed(fit, 9, warmup=True))
    print(
        f"\nensemble-25 fit on 20 positives + 500 negatives: median {np.median(times) * 1e3:.1f} ms, "
        f"max {np.max(times) * 1e3:.1f} ms over the 10 classes (target < 20 ms)"
    )


def report(
    f1s: dict[str, dict[int, list[float]]],
    fit_ms: dict[str, list[float]],
    apply_ms: dict[str, list[float]],
    models: list[str],
    ps: list[int],
) -> None:
    names = models + list(BASELINES)
    print("\nmean F1 over 10 classes x seeds (baselines are told the true k)\n")
    print("| model | " + " | ".join(f"p={p}" for p in ps) + " | fit ms | apply ms |")
    print("|---|" + "---|" * (len(ps) + 2))
    for name in names:
        cells = [f"{np.mean(f1s[name][p]):.3f}" for p in ps]
        fit = f"{np.mean(fit_ms[name]):.1f}" if name in fit_ms else ""
        apply = f"{np.mean(apply_ms[name]):.1f}" if name in apply_ms else ""
        print(f"| {name} | " + " | ".join(cells) + f" | {fit} | {apply} |")
    print("\nsmallest p at which a model's mean F1 beats each baseline (and every larger p too)\n")
    print("| model | " + " | ".join(BASELINES) + " |")
    print("|---|" + "---|" * len(BASELINES))
    for name in models:
        cells = []
        for base in BASELINES:
            wins = [np.mean(f1s[name][p]) > np.mean(f1s[base][p]) for p in ps]
            first = next((ps[i] for i in range(len(ps)) if all(wins[i:])), None)
            cells.append("never" if first is None else str(first))
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
