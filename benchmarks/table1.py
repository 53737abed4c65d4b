"""Table 1 of the paper on data available here: how well nearest neighbours survive the 32-d
projection's 8-bit quantization, for PCA-to-32, the head without KoLeo and the head with KoLeo,
plus zero-shot accuracy, with the offline towers on Fashion-MNIST and OpenClipArt; and which way of
joining the offline towers' unrelated spaces works better: the trained heads or ConSE.

    python benchmarks/table1.py                # both datasets (needs the .cache files below)
    python benchmarks/table1.py --wide         # also the original's 8192-wide hidden layer
    python benchmarks/table1.py --dataset openclipart

Image features (EfficientNet-Lite0, 1280-d pooled):
- Fashion-MNIST: reduced to 256 dims by PCA (90% of the variance), computed on a GPU by
  ``benchmarks/device_features.py`` (a device run may return at most 64 MB), in
  ``.cache/fmnist_lite0_pca256_*.npy``; captions from the class names with five templates.
- OpenClipArt: all 1280 dims, from ``benchmarks/offline_features.py`` (CPU), in
  ``.cache/openclipart_lite0.npz``; captions are the titles from the SVG files (the paper's
  recipe); the zero-shot classes are the top folders (less "unsorted" and "special").
Text: WordLlama (256-d). Stratified 50/50 split (seed 0): heads train on the first half (10% of it
held out for early stopping), everything is measured on the second.

Recall@k: for 1,000 test queries, the overlap between the k nearest test items by cosine on the
float 32-d vectors and the k nearest by L2 on their uint8 codes (the paper's fixed-range
quantizer), divided by k. Zero-shot: each test image gets the class whose prompt
"a photo of a {class}" is nearest (float and uint8 codes).

Joining: ConSE (no training) maps an image to the probability-weighted mean of the WordLlama
embeddings of its 10 most likely ImageNet classes ("a photo of a {class}"), then zero-shot as
above in WordLlama's 256-d space. It needs the Lite0 logits, which PCA-256 features cannot give, so
on Fashion-MNIST it runs on a stratified subset of the test half whose raw features
``benchmarks/offline_features.py`` computed (``.cache/fmnist_lite0_subset.npz``); the trained head
is scored on the same images.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from clipbranches.datasets import FASHION_MNIST_CLASSES, openclipart_items, stratified_split
from clipbranches.store import FixedRangeQuantizer
from evaluation import conse, imagenet_classes, lite0_classifier
from harness import machine_line

CACHE = Path(__file__).resolve().parent.parent / ".cache"
TEMPLATES = ("a photo of a {}", "a {}", "a picture of a {}", "an image of a {}", "a product photo of a {}")
PROMPT = "a photo of a {}"
KS = (1, 10, 100)
#: OpenClipArt folders that name no kind of picture: kept for training, not zero-shot classes.
NOT_CLASSES = ("unsorted", "special")


@dataclass
class Dataset:
    name: str
    description: str
    images: NDArray[np.float32]  # tower features, one row per item
    captions: NDArray[np.float32]  # text features of each item's caption
    labels: NDArray[np.int64]  # class per item, -1 where it is not a zero-shot class
    prompts: NDArray[np.float32]  # text features of each class's prompt
    conse_ids: NDArray[np.int64]  # test items ConSE is scored on
    conse_images: NDArray[np.float32]  # their images joined to the text space by ConSE
    rates: str  # images encoded per second, as measured when the features were cached


def _need(path: Path, how: str) -> Path:
    if not path.exists():
        raise SystemExit(f"{path} is missing: run {how} first")
    return path


def _wordllama() -> Any:
    import wordllama
    from wordllama import WordLlama

    return WordLlama.load(cache_dir=os.path.dirname(wordllama.__file__), disable_download=True)


def _embed(model: Any, texts: list[str]) -> NDArray[np.float32]:
    return np.asarray(model.embed(texts), np.float32)


def _conse(model: Any, features: NDArray[np.float32]) -> NDArray[np.float32]:
    weight, bias = lite0_classifier()
    classes = _embed(model, [PROMPT.format(c) for c in imagenet_classes()])
    return conse(features.astype(np.float32) @ weight.T + bias, classes)


def fashion_mnist(model: Any) -> Dataset:
    parts = sorted(CACHE.glob("fmnist_lite0_pca256_*.npy"))
    if not parts:
        raise SystemExit(f"no features in {CACHE}: run benchmarks/device_features.py on a GPU machine first")
    images = np.concatenate([np.load(p) for p in parts]).astype(np.float32)
    labels = np.load(_need(CACHE / "fmnist_labels.npy", "benchmarks/device_features.py"))
    names = [c.lower() for c in FASHION_MNIST_CLASSES]
    table = _embed(model, [t.format(n) for n in names for t in TEMPLATES]).reshape(len(names), len(TEMPLATES), -1)
    template = np.random.default_rng(0).integers(len(TEMPLATES), size=len(labels))
    subset = np.load(_need(CACHE / "fmnist_lite0_subset.npz", "benchmarks/offline_features.py"))
    return Dataset(
        "Fashion-MNIST",
        "EfficientNet-Lite0 -> PCA 256, WordLlama 256; captions from the class names",
        images,
        table[labels, template],
        labels,
        _embed(model, [PROMPT.format(n) for n in names]),
        subset["ids"],
        _conse(model, subset["features"]),
        f"{subset['rate']} here; 70,000 images at ~8,350 images/s on an H200 (device_features.py)",
    )


def openclipart(model: Any) -> Dataset:
    cached = np.load(_need(CACHE / "openclipart_lite0.npz", "benchmarks/offline_features.py"))
    every = openclipart_items()
    items = [every[i] for i in cached["positions"]]
    classes = sorted({i.category for i in items} - set(NOT_CLASSES))
    labels = np.array([classes.index(i.category) if i.category in classes else -1 for i in items], np.int64)
    images = cached["features"].astype(np.float32)
    return Dataset(
        "OpenClipArt",
        "EfficientNet-Lite0 1280, WordLlama 256; captions are the SVG titles",
        images,
        _embed(model, [i.title for i in items]),
        labels,
        _embed(model, [PROMPT.format(c.replace("_", " ")) for c in classes]),
        np.arange(len(items)),  # every test item (filtered to the test half below)
        _conse(model, images),
        str(cached["rate"]),
    )


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
    """Accuracy over the items that have a class (label >= 0)."""
    known = labels >= 0
    return float(np.mean(np.argmax(images[known] @ prompts.T, axis=1) == labels[known]))


def measure(data: Dataset, args: argparse.Namespace) -> None:
    import torch

    from clipbranches.embed.head import HeadConfig, TrainConfig, train_heads

    images, captions, labels = data.images, data.captions, data.labels
    train, test = stratified_split(labels, seed=0)
    queries = np.random.default_rng(0).choice(len(test), size=1000, replace=False)
    conse_ids = np.intersect1d(data.conse_ids, test)
    conse_rows = np.searchsorted(data.conse_ids, conse_ids)
    quantizer = FixedRangeQuantizer()
    print(f"\n## {data.name} ({data.description})")
    print(f"train {len(train):,} pairs, test {len(test):,} images, 1,000 queries; images encoded: {data.rates}\n")

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
    joined: list[tuple[str, float]] = []
    for name, koleo, hidden in configs:
        config = TrainConfig(epochs=args.epochs, batch_size=1024, koleo_weight=koleo, patience=5, device="cpu")
        start = time.perf_counter()
        config_dims = HeadConfig(images.shape[1], captions.shape[1], hidden=hidden)
        result = train_heads(images[train], captions[train], config_dims, config)
        per_epoch = (time.perf_counter() - start) / len(result.history)
        with torch.no_grad():
            zi = result.heads.encode_image(torch.from_numpy(images)).numpy()
            zp = result.heads.encode_text(torch.from_numpy(data.prompts)).numpy()
        codes = quantizer.quantize(zi[test])
        shot = zero_shot(zi[test], zp, labels[test])
        shot_q = zero_shot(quantizer.dequantize(codes), quantizer.dequantize(quantizer.quantize(zp)), labels[test])
        rows.append((name, neighbour_recall(zi[test], codes, queries), shot, shot_q, per_epoch))
        joined.append((name, zero_shot(zi[conse_ids], zp, labels[conse_ids])))

    print("| projection | R@1 | R@10 | R@100 | zero-shot acc (float) | zero-shot acc (uint8) | s/epoch (CPU) |")
    print("|---|---|---|---|---|---|---|")
    for label, recall, accuracy, accuracy_q, seconds in rows:
        cells = [f"{r:.3f}" for r in recall]
        extra = ["n/a", "n/a", ""] if accuracy is None else [f"{accuracy:.3f}", f"{accuracy_q:.3f}", f"{seconds:.1f}"]
        print(f"| {label} | " + " | ".join(cells + extra) + " |")

    print(f"\njoining the towers, zero-shot accuracy on {len(conse_ids):,} test images:\n")
    print("| join | zero-shot acc (float) |\n|---|---|")
    conse_accuracy = zero_shot(data.conse_images[conse_rows], data.prompts, labels[conse_ids])
    print(f"| ConSE, top-10 ImageNet classes (no training) | {conse_accuracy:.3f} |")
    for name, accuracy in joined:
        print(f"| trained {name} | {accuracy:.3f} |")


def uncaptioned_rows(model: Any, epochs: int) -> None:
    """The text-search-without-captions rows (see benchmarks/uncaptioned.py)."""
    import torch

    import uncaptioned
    from clipbranches.embed.encoders import OfflineEncoder
    from clipbranches.embed.encoders.imagenet import PROMPT as PROMPT_IMAGENET
    from clipbranches.embed.encoders.imagenet import imagenet_classes, lite0_classifier, pseudo_captions
    from clipbranches.embed.head.projection import fit_projection_heads

    def embed(texts: list[str]) -> NDArray[np.float32]:
        return _embed(model, texts)

    clipart, fmnist = uncaptioned.sets(CACHE, openclipart_items, list(FASHION_MNIST_CLASSES))
    for data, other in ((clipart, fmnist), (fmnist, clipart)):
        print(f"\n## {data.name}: {len(data.test):,} catalog images, {len(data.train):,} training-half images")
        print(
            f"(the reference trains on this set's training-half captions, the general head on {other.name}'s; "
            "the other rows use no caption at all)\n"
        )
        print("| heads | zero-shot acc | class P@10 | caption R@10 | s to make |\n|---|---|---|---|---|")
        for name, cells, seconds in uncaptioned.measure(data, other, embed, epochs):
            print(f"| {name} | " + " | ".join(cells) + f" | {seconds:.1f} |")

    prompts = embed([PROMPT_IMAGENET.format(c) for c in imagenet_classes()])
    both = (
        np.concatenate([clipart.train, clipart.train, fmnist.train, fmnist.train]),
        clipart.train_captions + pseudo_captions(clipart.train) + fmnist.train_captions + pseudo_captions(fmnist.train),
    )
    makers = {
        "general head (both sets' captions + pseudo-captions)": lambda: uncaptioned.train(
            both[0], embed(both[1]), epochs
        ),
        "ConSE -> PCA-32 (prompts; the default below 1,000 images)": lambda: uncaptioned._encoder(
            fit_projection_heads(prompts, classifier=lite0_classifier()), torch
        ),
    }
    encoder = OfflineEncoder(device="cpu")
    found = uncaptioned.photos(embed, encoder.encode_images, makers)
    print(f"\n## scikit-image photos: the right photo first, of {len(uncaptioned.PHOTOS)} queries\n")
    print("| heads | right photo first |\n|---|---|")
    for name, hits in found:
        print(f"| {name} | {hits} / {len(uncaptioned.PHOTOS)} |")


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wide", action="store_true", help="also train the 8192-wide head")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--koleo", type=float, default=0.5)
    parser.add_argument("--dataset", choices=("all", "fmnist", "openclipart"), default="all")
    parser.add_argument(
        "--uncaptioned", action="store_true", help="only the rows for catalogs without captions (uncaptioned.py)"
    )
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    model = _wordllama()
    print(f"table 1: offline towers (EfficientNet-Lite0 images, WordLlama texts); {machine_line()}")
    if args.uncaptioned:
        uncaptioned_rows(model, args.epochs)
        return
    if args.dataset in ("all", "fmnist"):
        measure(fashion_mnist(model), args)
    if args.dataset in ("all", "openclipart"):
        measure(openclipart(model), args)
    print("\n(paper, head + KoLeo on MSCOCO: R@1/10/100 = 0.953 / 0.970 / 0.985)")


if __name__ == "__main__":
    main()
