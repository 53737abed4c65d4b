"""Cache the offline image tower's features for benchmarks/table1.py (runs on the CPU here).

- OpenClipArt (Debian openclipart-png/-svg): every PNG through ``OfflineEncoder`` and
  ``encode_files`` (the ingest path: decode pool, transparency flattened on white), 1280-d.
- Fashion-MNIST: raw 1280-d features of a stratified subset of the test half, for the ConSE
  comparison (ConSE needs the ImageNet logits, which the cached PCA-256 features cannot give),
  and of the training half (``--fmnist-train``), for the uncaptioned rows of table1.py.

Prints images encoded per second for each.

    python benchmarks/offline_features.py [--fmnist 2000] [--fmnist-train 3000] [--skip-openclipart]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from clipbranches.datasets import load_fashion_mnist, openclipart_items, stratified_split
from evaluation import lite0_features
from harness import machine_line

CACHE = Path(__file__).resolve().parent.parent / ".cache"


def fmnist_subset(n: int, seed: int = 0, half: int = 1) -> np.ndarray:
    """``n`` ids of the test half (``half=1``) or the training half (``half=0``) of table1.py's
    split, stratified: the same count per class."""
    _, labels = load_fashion_mnist()
    pool = stratified_split(labels, seed=0)[half]
    rng = np.random.default_rng(seed)
    per_class = n // 10
    picked = [rng.choice(pool[labels[pool] == c], per_class, replace=False) for c in range(10)]
    return np.sort(np.concatenate(picked))


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fmnist", type=int, default=2000, help="Fashion-MNIST test images for ConSE")
    parser.add_argument(
        "--fmnist-train", type=int, default=3000, help="Fashion-MNIST training-half images (uncaptioned rows)"
    )
    parser.add_argument("--skip-openclipart", action="store_true", help="only the Fashion-MNIST subsets")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    CACHE.mkdir(exist_ok=True)
    print(machine_line())

    if not args.skip_openclipart:
        openclipart()
    images, _ = load_fashion_mnist()
    for name, ids in (
        ("fmnist_lite0_subset.npz", fmnist_subset(args.fmnist)),
        ("fmnist_lite0_train_subset.npz", fmnist_subset(args.fmnist_train, half=0)),
    ):
        start = time.perf_counter()
        raw = lite0_features(images[ids], batch_size=100, progress=False)
        seconds = time.perf_counter() - start
        rate = f"{len(ids) / seconds:.1f} images/s on {'cuda' if torch.cuda.is_available() else 'cpu'}"
        np.savez(CACHE / name, ids=ids, features=raw.astype(np.float16), rate=rate)
        print(f"Fashion-MNIST ({name}): {len(ids):,} images in {seconds:.0f} s ({rate})")


def openclipart() -> None:
    from clipbranches.embed.encoders import DecodeReport, OfflineEncoder, encode_files

    items = openclipart_items()
    encoder = OfflineEncoder()
    report = DecodeReport()
    start = time.perf_counter()
    batches = list(encode_files(encoder, [i.path for i in items], batch_size=64, report=report, progress=True))
    seconds = time.perf_counter() - start
    positions = np.concatenate([p for p, _ in batches])
    features = np.concatenate([f for _, f in batches])
    rate = f"{len(positions) / seconds:.1f} images/s on {encoder.device} (PNG decoding included)"
    np.savez(CACHE / "openclipart_lite0.npz", positions=positions, features=features.astype(np.float16), rate=rate)
    print(
        f"OpenClipArt: {len(positions):,} of {len(items):,} images in {seconds:.0f} s ({rate}), {len(report)} skipped"
    )


if __name__ == "__main__":
    main()
