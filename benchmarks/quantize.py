"""Quantizer comparison: reconstruction error and nearest-neighbour agreement of the paper's
fixed range against per-dimension calibrated ranges, on the project's synthetic data.

    python benchmarks/quantize.py [--n 200000] [--queries 500]

recall@10: of the 10 nearest neighbours by cosine on the float embeddings, the fraction found
among the 10 nearest by L2 on the uint8 codes (what the initial search uses).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from numpy.typing import NDArray

from clipbranches import testing
from clipbranches.store import CalibratedQuantizer, FixedRangeQuantizer, Quantizer

K = 10


def top_k_float(x: NDArray[np.float32], q: NDArray[np.float32]) -> NDArray[np.intp]:
    return np.argsort(-(q @ x.T), axis=1)[:, :K]


def top_k_codes(codes: NDArray[np.uint8], q: NDArray[np.uint8]) -> NDArray[np.intp]:
    c = codes.astype(np.int32)
    qq = q.astype(np.int32)
    d = (qq**2).sum(1)[:, None] - 2 * qq @ c.T + (c**2).sum(1)[None, :]
    return np.argsort(d, axis=1, kind="stable")[:, :K]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=500)
    args = parser.parse_args()
    x = np.concatenate([b for b, _ in testing.embeddings(args.n)])
    rng = np.random.default_rng(123)
    queries = x[rng.choice(args.n, args.queries, replace=False)]
    truth = top_k_float(x, queries)
    sample = x[rng.choice(args.n, min(args.n, 100_000), replace=False)]
    candidates: list[tuple[str, Quantizer]] = [
        ("fixed (paper: x*127.5+128, trunc)", FixedRangeQuantizer()),
        ("calibrated, min/max", CalibratedQuantizer.fit(sample, quantile=0.0)),
        ("calibrated, 0.1% quantiles", CalibratedQuantizer.fit(sample, quantile=0.001)),
        ("calibrated, 1% quantiles", CalibratedQuantizer.fit(sample, quantile=0.01)),
    ]
    print(f"quantizers on {args.n:,} synthetic points (32 dims, K=1000, noise 0.18), {args.queries} queries\n")
    print(f"| {'quantizer':<34} | levels used | mean abs err | recall@{K} | quantize MB/s")
    print(f"|{'-' * 36}|-------------|--------------|-----------|--------------")
    for name, quantizer in candidates:
        start = time.perf_counter()
        codes = quantizer.quantize(x)
        rate = x.nbytes / 1e6 / (time.perf_counter() - start)
        levels = np.mean([len(np.unique(codes[:, d])) for d in range(codes.shape[1])])
        error = np.abs(quantizer.dequantize(codes) - x).mean()
        found = top_k_codes(codes, quantizer.quantize(queries))
        recall = np.mean([len(set(t) & set(f)) / K for t, f in zip(truth, found, strict=True)])
        print(f"| {name:<34} | {levels:11.0f} | {error:12.5f} | {recall:9.3f} | {rate:12,.0f}")


if __name__ == "__main__":
    main()
