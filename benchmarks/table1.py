"""Table 1 of the paper on data available here: how well nearest neighbours survive the 32-d
projection's 8-bit quantization, for PCA-to-32, the head without KoLeo and the head with KoLeo,
plus zero-shot accuracy, with the offline towers on Fashion-MNIST.

    python benchmarks/table1.py                # needs .cache/fmnist_lite0_pca256_*.npy
    python benchmarks/table1.py --wide         # also the original's 8192-wide hidden layer

Image features: EfficientNet-Lite0 (1280-d pooled) reduced to 256 dims by PCA (90% of the
variance), computed on a GPU by ``benchmarks/device_features.py`` (a device run may return at
most 64 MB; 70,000 x 1280 floats do not fit). Text: WordLlama (256-d) embeddings of captions built
from the class names with five templates. Stratified 50/50 split (seed 0): heads train on the
first half (10% of it held out for early stopping), everything is measured on the second.

Recall@k: for 1,000 test queries, the overlap between the k nearest test items by cosine on the
float 32-d vectors and the k nearest by L2 on their uint8 codes (the paper's fixed-range
quantizer), divided by k. Zero-shot: each test image gets the class whose caption
"a photo of a {class}" is nearest (float and uint8 codes).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from clipbranches import FixedRangeQuantizer
from clipbranches.evaluation import FASHION_MNIST_CLASSES, stratified_split
from harness import machine_line

CACHE = Path(__file__).resolve().parent.parent / ".cache"
TEMPLATES = ("a photo of a {}", "a {}", "a picture of a {}", "an image of a {}", "a product photo of a {}")
KS = (1, 10, 100)


def load_features() -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    parts = sorted(CACHE.glob("fmnist_lite0_pca256_*.npy"))
    if not parts:
        raise SystemExit(f"no features in {CACHE}: run benchmarks/device_features.py on a GPU machine first")
    return np.concatenate([np.load(p) for p in parts]).astype(np.float32), np.load(CACHE / "fmnist_labels.npy")


def text_features(labels: NDArray[np.int64], seed: int) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Per image a caption from a random template; and the zero-shot prompts."""
    import wordllama
    from wordllama import WordLlama

    model = WordLlama.load(cache_dir=os.path.dirname(wordllama.__file__), disable_download=True)
    names = [c.lower() for c in FASHION_MNIST_CLASSES]
    table = np.asarray(model.embed([t.format(n) for n in names for t in TEMPLATES]), np.float32)
    table = table.reshape(len(names), len(TEMPLATES), -1)
    template = np.random.default_rng(seed).integers(len(TEMPLATES), size=len(labels))
    prompts = np.asarray(model.embed([f"a photo of a {n}" for n in names]), np.float32)
    return table[labels, template], prompts


def neighbour_recall(vectors: NDArray[np.float32], codes: NDArray[np.uint8], queries: NDArray[np.int64]) -> list[float]:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    exact = np.argsort(-(unit[queries] @ unit.T), axis=1)[:, 1 : max(KS) + 1]
    c = codes.astype(np.int32)
    d = (c * c).sum(1)[None, :] - 2 * c[queries] @ c.T
    quantized = np.argsort(d, axis=1, kind="stable")[:, 1 : max(KS) + 1]
    return [
        float(np.mean([len(np.intersect1d(e[:k], q[:k])) / k for e, q in zip(exact, quantized, strict=True)]))
        for k in KS
    ]


def zero_shot(images: NDArray[np.float32], prompts: NDArray[np.float32], labels: NDArray[np.int64]) -> float:
    return float(np.mean(np.argmax(images @ prompts.T, axis=1) == labels))


def main() -> None:
    import torch

    from clipbranches.head import HeadConfig, TrainConfig, train_heads

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wide", action="store_true", help="also train the 8192-wide head")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--koleo", type=float, default=0.5)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    images, labels = load_features()
    captions, prompts = text_features(labels, seed=0)
    train, test = stratified_split(labels, seed=0)
    queries = np.random.default_rng(0).choice(len(test), size=1000, replace=False)
    quantizer = FixedRangeQuantizer()
    print("table 1: Fashion-MNIST, offline towers (EfficientNet-Lite0 -> PCA 256, WordLlama 256)")
    print(f"train {len(train):,} pairs, test {len(test):,} images, 1,000 queries; {machine_line()}\n")

    rows: list[tuple[str, list[float], float | None, float | None, float | None]] = []
    # PCA to 32 of the image features (fitted on the training half): no text side, so no zero-shot.
    x = images[train] - images[train].mean(0)
    _, _, vt = np.linalg.svd(x[:20000], full_matrices=False)
    pca = (images[test] - images[train].mean(0)) @ vt[:32].T
    pca /= np.linalg.norm(pca, axis=1, keepdims=True)
    rows.append(("PCA to 32", neighbour_recall(pca, quantizer.quantize(pca), queries), None, None, None))

    configs = [("head, no KoLeo", 0.0, (1024,)), (f"head + KoLeo {args.koleo}", args.koleo, (1024,))]
    if args.wide:
        configs.append((f"head + KoLeo {args.koleo}, hidden 8192", args.koleo, (8192,)))
    for name, koleo, hidden in configs:
        config = TrainConfig(epochs=args.epochs, batch_size=1024, koleo_weight=koleo, patience=5, device="cpu")
        start = time.perf_counter()
        result = train_heads(images[train], captions[train], HeadConfig(256, 256, hidden=hidden), config)
        per_epoch = (time.perf_counter() - start) / len(result.history)
        with torch.no_grad():
            zi = result.heads.encode_image(torch.from_numpy(images[test])).numpy()
            zp = result.heads.encode_text(torch.from_numpy(prompts)).numpy()
        codes = quantizer.quantize(zi)
        shot = zero_shot(zi, zp, labels[test])
        shot_q = zero_shot(quantizer.dequantize(codes), quantizer.dequantize(quantizer.quantize(zp)), labels[test])
        rows.append((name, neighbour_recall(zi, codes, queries), shot, shot_q, per_epoch))

    print("| projection | R@1 | R@10 | R@100 | zero-shot acc (float) | zero-shot acc (uint8) | s/epoch (CPU) |")
    print("|---|---|---|---|---|---|---|")
    for label, recall, accuracy, accuracy_q, seconds in rows:
        cells = [f"{r:.3f}" for r in recall]
        extra = ["n/a", "n/a", ""] if accuracy is None else [f"{accuracy:.3f}", f"{accuracy_q:.3f}", f"{seconds:.1f}"]
        print(f"| {label} | " + " | ".join(cells + extra) + " |")
    print("\n(paper, head + KoLeo on MSCOCO: R@1/10/100 = 0.953 / 0.970 / 0.985)")


if __name__ == "__main__":
    main()
