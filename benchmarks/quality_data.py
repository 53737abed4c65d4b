"""The real data sets of the quality report: cached EfficientNet-Lite0 features and labels.

    python benchmarks/quality_data.py                 # every data set not cached yet
    python benchmarks/quality_data.py --only digits   # one of them

Each data set is cached once as ``.cache/quality/<name>.npz`` (1280-d float16 features of the
image tower, integer labels, the class names and the images/s it took), so a rerun of
``benchmarks/quality.py`` takes minutes. On this 2-core CPU computing them takes about 30
minutes in all; a GPU does it in seconds.

- ``fmnist``: a stratified 20,000-image subset of Fashion-MNIST (Debian
  ``dataset-fashion-mnist``; 2,000 per class, seed 0), 28x28 grayscale upscaled to 224.
- ``openclipart``: Debian ``openclipart-png``: symlinks skipped, byte-identical duplicates
  dropped, the ten largest top folders except ``unsorted`` (label = top folder), each PNG through
  the ingest path (``encode_files``: transparency on white).
- ``digits``: scikit-learn's ``load_digits`` (1,797 real 8x8 handwritten digits, 17 grey
  levels), upscaled to 224.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from collections import Counter
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from clipbranches.datasets import FASHION_MNIST_CLASSES, load_fashion_mnist, openclipart_items
from evaluation import lite0_features
from harness import machine_line

CACHE = Path(__file__).resolve().parent.parent / ".cache" / "quality"
DATASETS = ("fmnist", "openclipart", "digits")
FMNIST_SUBSET = 20_000
OPENCLIPART_CLASSES = 10


def cache_path(name: str) -> Path:
    return CACHE / f"{name}.npz"


def _save(name: str, features: NDArray[np.float32], labels: NDArray[np.int64], classes: list[str], rate: str) -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = CACHE / f".{name}.tmp.npz"
    np.savez(tmp, features=features.astype(np.float16), labels=labels, classes=np.array(classes), rate=rate)
    os.replace(tmp, cache_path(name))
    print(f"{name}: {len(labels):,} images, {len(classes)} classes, {rate} -> {cache_path(name)}", flush=True)


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def fmnist() -> None:
    images, labels = load_fashion_mnist()
    rng = np.random.default_rng(0)
    per_class = FMNIST_SUBSET // 10
    ids = np.sort(
        np.concatenate([rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(10)])
    )
    start = time.perf_counter()
    features = lite0_features(images[ids], batch_size=100)
    rate = f"{len(ids) / (time.perf_counter() - start):.1f} images/s on {_device()}"
    _save("fmnist", features, labels[ids], list(FASHION_MNIST_CLASSES), rate)


def openclipart_selection() -> tuple[list[Path], NDArray[np.int64], list[str]]:
    """The PNGs of the OpenClipArt set (see the module docstring), their labels and class names."""
    seen: set[str] = set()
    kept = []
    for item in openclipart_items():
        if item.path.is_symlink():
            continue
        digest = hashlib.blake2b(item.path.read_bytes(), digest_size=16).hexdigest()
        if digest in seen:
            continue
        seen.add(digest)
        kept.append(item)
    counts = Counter(i.category for i in kept if i.category != "unsorted")
    classes = sorted(c for c, _ in counts.most_common(OPENCLIPART_CLASSES))
    chosen = [i for i in kept if i.category in classes]
    labels = np.array([classes.index(i.category) for i in chosen], np.int64)
    return [i.path for i in chosen], labels, classes


def openclipart() -> None:
    from clipbranches.embed.encoders import DecodeReport, OfflineEncoder, encode_files

    paths, labels, classes = openclipart_selection()
    encoder = OfflineEncoder()
    report = DecodeReport()
    start = time.perf_counter()
    batches = list(encode_files(encoder, paths, batch_size=64, report=report, progress=True))
    positions = np.concatenate([p for p, _ in batches])
    features = np.concatenate([f for _, f in batches])
    rate = f"{len(positions) / (time.perf_counter() - start):.1f} images/s on {encoder.device} (PNG decoding included)"
    if len(report):
        print(f"openclipart: {len(report)} files could not be decoded and are left out")
    _save("openclipart", features, labels[positions], classes, rate)


def digits() -> None:
    from sklearn.datasets import load_digits

    data = load_digits()
    images = np.round(data.images * (255.0 / 16.0)).astype(np.uint8)  # 0..16 grey levels -> 0..255
    start = time.perf_counter()
    features = lite0_features(images, batch_size=100)
    rate = f"{len(images) / (time.perf_counter() - start):.1f} images/s on {_device()}"
    _save("digits", features, data.target.astype(np.int64), [str(c) for c in data.target_names], rate)


def load(name: str) -> tuple[NDArray[np.float32], NDArray[np.int64], list[str], str]:
    """Cached ``(features (n, 1280) float32, labels (n,), class names, rate)`` of a data set,
    computing them first when missing."""
    if not cache_path(name).is_file():
        print(f"({name}: no cached features at {cache_path(name)}: computing them)", flush=True)
        BUILDERS[name]()
    data = np.load(cache_path(name))
    return data["features"].astype(np.float32), data["labels"], [str(c) for c in data["classes"]], str(data["rate"])


BUILDERS = {"fmnist": fmnist, "openclipart": openclipart, "digits": digits}


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=DATASETS, action="append", help="data sets to cache (default: all)")
    parser.add_argument("--force", action="store_true", help="recompute cached ones too")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    print(machine_line())
    for name in args.only or DATASETS:
        if args.force or not cache_path(name).is_file():
            BUILDERS[name]()
        else:
            print(f"{name}: cached at {cache_path(name)}")


if __name__ == "__main__":
    main()
