"""The alternatives the hybrid model was chosen over, measured apart: rankings (F1 at the true k
and average precision) and class-size estimates for the cut (F1 of the accepted set).

    python benchmarks/refine_variants.py                         # OpenClipArt, 1 seed
    python benchmarks/refine_variants.py --dataset fmnist --seeds 2

Same protocol and cached features as ``benchmarks/quality.py`` (run ``quality_data.py``
first). Rankings score every catalog item; cuts accept the top ``share x N`` of the hybrid
ranking (the kept one, z(logistic) - z(distance to the nearest positive)).
"""

from __future__ import annotations

import argparse
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from clipbranches.learn import build_training_set
from clipbranches.learn.hybrid import HybridModel
from clipbranches.learn.logistic import fit_logistic
from clipbranches.learn.training import random_pool
from quality import average_precision, prepare
from quality_data import DATASETS

Array = NDArray[np.float64]


def distances(x: Array, refs: Array) -> Array:
    d2 = (x * x).sum(1)[:, None] - 2 * x @ refs.T + (refs * refs).sum(1)[None]
    return np.sqrt(np.maximum(d2, 0))


def farthest_points(p: Array, m: int) -> Array:
    """``m`` of the rows of ``p`` spread out by farthest-point sampling."""
    if len(p) <= m:
        return p
    chosen = [0]
    d = distances(p, p[:1])[:, 0]
    for _ in range(m - 1):
        j = int(d.argmax())
        chosen.append(j)
        d = np.minimum(d, distances(p, p[j : j + 1])[:, 0])
    return p[chosen]


def rankings(x: Array, sample: NDArray[np.int64], f: Array, positives: Array, p: int) -> dict[str, Array]:
    def z(v: Array) -> Array:
        return (v - v[sample].mean()) / (v[sample].std() + 1e-9)

    d = distances(x, positives)
    dmin = d.min(1)
    hybrid = z(f) - z(dmin)
    h = np.median(dmin[sample])
    soft = -np.log(np.exp(-((d / h) ** 2)).sum(1) + 1e-300)
    top = np.argsort(-hybrid)[: 5 * p]
    expanded = distances(x, x[top]).min(1)
    ranks = {
        "logistic": f,
        "nn_min": -dmin,
        "hybrid (kept): z(f) - z(d+)": hybrid,
        "z(f) - 0.5 z(d+)": z(f) - 0.5 * z(dmin),
        "z(f) - 2 z(d+)": z(f) - 2 * z(dmin),
        "z(f) - z(mean of 3 nearest)": z(f) - z(np.sort(d, 1)[:, : min(3, p)].mean(1)),
        "z(f) - z(soft-min kernel)": z(f) - z(soft),
        "z(f) - z(d+)/2 - z(centroid)/2": z(f) - 0.5 * z(dmin) - 0.5 * z(distances(x, positives.mean(0)[None])[:, 0]),
        "rank(f) + rank(-d+)": np.argsort(np.argsort(f)) + np.argsort(np.argsort(-dmin)),
        "feedback: top 5p as extra positives": z(f) - 0.5 * z(dmin) - 0.5 * z(expanded),
        "d+ over 8 spread positives": z(f) - z(distances(x, farthest_points(positives, 8)).min(1)),
        "d+ over 16 spread positives": z(f) - z(distances(x, farthest_points(positives, 16)).min(1)),
    }
    for share in (0.1, 0.2):
        keep = f > np.quantile(f[sample], 1 - share)
        ranks[f"d+ only in the top {share:.0%} by f"] = np.where(keep, hybrid, -1e9)
    return ranks


def shares(model: HybridModel, sample_codes: NDArray[np.uint8]) -> dict[str, float]:
    """The class-size estimates of the cut, as shares of the catalog."""
    terms, _ = model._fitted().calibrated(sample_codes)
    floor = 1.0 / len(sample_codes)
    p = len(terms.positives)
    ranks, _ = model._held_out_ranks(sample_codes)
    recall = np.arange(1, p + 1) / p
    linear = max(float((terms.linear.decision(sample_codes) > 0).mean()), floor)
    trained = max(model._self_trained_share(sample_codes, terms.linear), floor)
    out = {"first fit's linear share": linear, "self-trained linear share": trained}
    for least in (0.25, 0.5):
        usable = recall >= least
        out[f"held-out ranks, R >= {least}"] = max(float((ranks[usable] / recall[usable]).min()), floor)
    out["2 x median held-out rank"] = min(1.0, 2 * float(np.median(ranks)))
    positives = terms.positives.astype(np.float64)
    dpp = distances(positives, positives)
    np.fill_diagonal(dpp, np.inf)
    inside = distances(sample_codes.astype(np.float64), positives) < dpp.min(1)[None]
    out["(p - 1) x median count in each positive's ball"] = max((p - 1) * float(np.median(inside.mean(0))), floor)
    assert model.training is not None
    fixed = HybridModel(modes_gain=0.0).fit(model.training)
    out[f"blend, p / (p + {fixed.shrink:g})"] = fixed.estimate_share(sample_codes, terms)
    kept = f"hybrid (kept): blend, p / (p + {model.shrink:g} or {model.linear_shrink:g} by the modes test)"
    out[kept] = model.estimate_share(sample_codes, terms)
    return out


def cut_f1(hits: NDArray[np.int64], k: int, share: float) -> float:
    """F1 of the top ``share`` of a ranking whose cumulative hit counts are ``hits``."""
    n = len(hits)
    taken = min(n, max(1, round(share * n)))
    return float(2 * hits[taken - 1] / (taken + k))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=DATASETS, default="openclipart")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--ps", default="4,8,16,64")
    args = parser.parse_args()
    ps = [int(p) for p in args.ps.split(",")]
    split = prepare(args.dataset, Path(tempfile.mkdtemp(prefix="cb-variants-")))
    codes = np.asarray(split.catalog.codes)
    x = codes.astype(np.float64)
    n = len(x)
    sample_rows = np.sort(random_pool(n, 4096))
    rank_scores: dict[str, dict[int, list[tuple[float, float]]]] = defaultdict(lambda: defaultdict(list))
    cut_scores: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for p in ps:
        for c in range(len(split.classes)):
            members = np.flatnonzero(split.pool_labels == c)
            if len(members) < p:
                continue
            truth = split.test_labels == c
            k = int(truth.sum())
            for seed in range(args.seeds):
                chosen = np.random.default_rng([c, p, seed]).choice(members, p, replace=False)
                training = build_training_set(split.pool_codes, chosen, random_negatives=500, seed=seed)
                positives = training.codes[training.labels].astype(np.float64)
                f = fit_logistic(training.codes, training.labels, training.weights).decision(codes)
                for name, score in rankings(x, sample_rows, f, positives, p).items():
                    order = np.lexsort((np.arange(n), -score))
                    rank_scores[name][p].append((float(truth[order[:k]].mean()), average_precision(order, truth)))
                model = HybridModel(seed).fit(training)
                hybrid = model._fitted().calibrated(codes[sample_rows])[0].score(codes)
                order = np.lexsort((np.arange(n), -hybrid))
                hits = np.cumsum(truth[order])
                cut_scores["true k (oracle)"][p].append(cut_f1(hits, k, k / n))
                for name, share in shares(model, codes[sample_rows]).items():
                    cut_scores[name][p].append(cut_f1(hits, k, share))
        print(f"  p={p} done", flush=True)
    print(f"\n## {args.dataset}: rankings, F1 at the true k / AP ({args.seeds} seeds)\n")
    print("| ranking | " + " | ".join(f"p={p}" for p in ps) + " |")
    print("|---|" + "---|" * len(ps))
    for name, per_p in rank_scores.items():
        cells = [f"{np.mean([a for a, _ in per_p[p]]):.3f} / {np.mean([b for _, b in per_p[p]]):.3f}" for p in ps]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"\n## {args.dataset}: cuts of the hybrid ranking, F1 of the accepted set\n")
    print("| class-size estimate | " + " | ".join(f"p={p}" for p in ps) + " |")
    print("|---|" + "---|" * len(ps))
    for name, cut_per_p in cut_scores.items():
        print(f"| {name} | " + " | ".join(f"{np.mean(cut_per_p[p]):.3f}" for p in ps) + " |")


if __name__ == "__main__":
    main()
