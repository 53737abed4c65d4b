"""Table 1, text search without captions: how each way of giving an uncaptioned catalog a text
side does on sets whose captions it never saw (``python benchmarks/table1.py --uncaptioned``).

Every set has raw 1280-d EfficientNet-Lite0 features (``benchmarks/offline_features.py``) and a
stratified 50/50 split (seed 0); the test half is the catalog. Rows:

- **captions of this set** (reference, needs captions): heads trained on the training half's
  own (image, caption) pairs, as ``train-head`` does.
- **general head (other set)**: heads trained on the *other* set's captions plus pseudo-captions
  of its images; it never saw this set. The shipped general head would be this, trained on both.
- **pseudo-captions of this set**: heads trained on the training half's images with captions
  made by the image tower's own ImageNet classifier ("a photo of a {top class}"): no captions.
- **ConSE -> PCA-32 (catalog)**: no training; images joined to WordLlama's space by ConSE,
  PCA fitted on the catalog's images. **(prompts)**: the PCA fitted on the 1,000 ImageNet class
  prompts alone (the same heads for every catalog). **one mean**: both sides centred on the
  images' mean (no modality-gap correction).
- **ConSE, 256-d float**: the join without projection or quantization (reference).

Metrics on the test half, through the uint8 codes (the product's path; the references' float):
zero-shot accuracy (each image's nearest class prompt), class P@10 (each class prompt as a text
query: the share of its 10 nearest catalog images in that class, averaged over classes) and,
where the set has per-image captions (OpenClipArt titles), caption R@10 (a test image's own
title as the query: its image among the 10 nearest). Plus, on scikit-image's photos, how many
hand-written queries ("a cat", ...) put the right photo first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from clipbranches.datasets import stratified_split
from clipbranches.embed.encoders.imagenet import PROMPT, imagenet_classes, lite0_classifier, pseudo_captions
from clipbranches.embed.head.projection import fit_projection_heads
from clipbranches.store import FixedRangeQuantizer

Embed = Callable[[list[str]], NDArray[np.float32]]
Encode = Callable[[NDArray[np.float32], str], NDArray[np.float32]]  # (features, side) -> 32-d unit rows

#: scikit-image photos and a query each (the right photo should come first among them all).
PHOTOS = {
    "chelsea": "a cat",
    "coffee": "a cup of coffee",
    "rocket": "a rocket launch",
    "astronaut": "an astronaut",
    "camera": "a man with a camera",
    "coins": "old coins",
    "clock": "a clock",
    "moon": "the surface of the moon",
    "horse": "a horse",
}


@dataclass
class UncaptionedSet:
    name: str
    train: NDArray[np.float32]  # raw image features, training half
    train_captions: list[str]
    test: NDArray[np.float32]  # raw image features, the catalog
    test_labels: NDArray[np.int64]  # -1: no class
    test_captions: list[str] | None  # per-image captions for R@10, or None
    classes: list[str]  # class names (prompt: "a photo of a {class}")


def sets(cache: Any, openclipart_items: Callable[[], list[Any]], fmnist_classes: list[str]) -> list[UncaptionedSet]:
    """OpenClipArt (titles, 20 top folders as classes) and Fashion-MNIST (class-name captions)."""
    from clipbranches.datasets import load_fashion_mnist

    cached = np.load(cache / "openclipart_lite0.npz")
    every = openclipart_items()
    items = [every[i] for i in cached["positions"]]
    classes = sorted({i.category for i in items} - {"unsorted", "special"})
    labels = np.array([classes.index(i.category) if i.category in classes else -1 for i in items], np.int64)
    features = cached["features"].astype(np.float32)
    train, test = stratified_split(labels, seed=0)
    titles = [i.title for i in items]
    clipart = UncaptionedSet(
        "OpenClipArt",
        features[train],
        [titles[i] for i in train],
        features[test],
        labels[test],
        [titles[i] for i in test],
        [c.replace("_", " ") for c in classes],
    )
    _, fm_labels = load_fashion_mnist()
    names = [c.lower() for c in fmnist_classes]
    fm_train = np.load(cache / "fmnist_lite0_train_subset.npz")
    fm_test = np.load(cache / "fmnist_lite0_subset.npz")
    fmnist = UncaptionedSet(
        "Fashion-MNIST",
        fm_train["features"].astype(np.float32),
        [PROMPT.format(names[c]) for c in fm_labels[fm_train["ids"]]],
        fm_test["features"].astype(np.float32),
        fm_labels[fm_test["ids"]],
        None,
        names,
    )
    return [clipart, fmnist]


def _quantized(vectors: NDArray[np.float32]) -> NDArray[np.float32]:
    quantizer = FixedRangeQuantizer()
    return quantizer.dequantize(quantizer.quantize(vectors))


def scores(
    images: NDArray[np.float32], data: UncaptionedSet, embed_text: Callable[[list[str]], NDArray[np.float32]]
) -> list[str]:
    """zero-shot accuracy, class P@10 and caption R@10 (or n/a), nearest by L2 (unit rows)."""
    prompts = embed_text([PROMPT.format(c) for c in data.classes])
    known = data.test_labels >= 0
    accuracy = float(np.mean(np.argmax(images[known] @ prompts.T, axis=1) == data.test_labels[known]))
    # L2 on (dequantized) codes ranks like -dot for unit rows up to quantization error; use -dot.
    top = np.argsort(-(prompts @ images.T), axis=1)[:, :10]
    precision = float(np.mean(data.test_labels[top] == np.arange(len(data.classes))[:, None]))
    cells = [f"{accuracy:.3f}", f"{precision:.3f}"]
    if data.test_captions is None:
        return [*cells, "n/a"]
    queries = embed_text(data.test_captions)
    similarity = queries @ images.T
    own = similarity[np.arange(len(images)), np.arange(len(images))][:, None]
    rank = (similarity > own).sum(axis=1)
    return [*cells, f"{float(np.mean(rank < 10)):.3f}"]


def train(images: NDArray[np.float32], texts: NDArray[np.float32], epochs: int) -> Encode:
    import torch

    from clipbranches.embed.head import HeadConfig, TrainConfig, train_heads

    config = TrainConfig(epochs=epochs, patience=5, device="cpu")
    heads = train_heads(images, texts, HeadConfig(images.shape[1], texts.shape[1]), config).heads
    return _encoder(heads, torch)


def _encoder(heads: Any, torch: Any) -> Encode:
    def encode(features: NDArray[np.float32], side: str) -> NDArray[np.float32]:
        with torch.no_grad():
            x = torch.from_numpy(np.ascontiguousarray(features, np.float32))
            z = heads.encode_text(x) if side == "text" else heads.encode_image(x)
        return z.numpy()

    return encode


def measure(
    data: UncaptionedSet, other: UncaptionedSet, embed: Embed, epochs: int
) -> list[tuple[str, list[str], float]]:
    """One row per option: (name, cells, seconds to make the heads)."""
    import torch

    weight, bias = lite0_classifier()
    prompts = embed([PROMPT.format(c) for c in imagenet_classes()])
    rows: list[tuple[str, list[str], float]] = []

    def row(name: str, make: Callable[[], Encode]) -> None:
        start = time.perf_counter()
        encode = make()
        seconds = time.perf_counter() - start
        images = _quantized(encode(data.test, "image"))

        def text(texts: list[str]) -> NDArray[np.float32]:
            return _quantized(encode(embed(texts), "text"))

        rows.append((name, scores(images, data, text), seconds))

    row("captions of this set (reference)", lambda: train(data.train, embed(data.train_captions), epochs))
    row(
        "general head (other set's captions + pseudo-captions)",
        lambda: train(
            np.concatenate([other.train, other.train]),
            embed(other.train_captions + pseudo_captions(other.train)),
            epochs,
        ),
    )
    row("pseudo-captions of this set", lambda: train(data.train, embed(pseudo_captions(data.train)), epochs))
    classifier = (weight, bias)
    row(
        "ConSE -> PCA-32 (catalog)",
        lambda: _encoder(fit_projection_heads(prompts, data.test, classifier=classifier), torch),
    )
    row("ConSE -> PCA-32 (prompts)", lambda: _encoder(fit_projection_heads(prompts, classifier=classifier), torch))

    row(
        "ConSE -> PCA-32 (catalog), one mean: the default",
        lambda: _encoder(fit_projection_heads(prompts, data.test, classifier=classifier, one_mean=True), torch),
    )
    # The join alone: 256-d float, no projection, no quantization.
    joined = fit_projection_heads(prompts, classifier=classifier)
    with torch.no_grad():
        space = joined.to_space(torch.from_numpy(data.test)).numpy()

    def unit(texts: list[str]) -> NDArray[np.float32]:
        t = embed(texts)
        return t / np.linalg.norm(t, axis=1, keepdims=True)

    rows.append(("ConSE, 256-d float (reference)", scores(space, data, unit), 0.0))
    return rows


def photos(
    embed: Embed, encode_images: Callable[[list[Any]], NDArray[np.float32]], makers: dict[str, Callable[[], Encode]]
) -> list[tuple[str, int]]:
    """For each option, how many of PHOTOS' queries put their photo first among all of them."""
    import skimage.data
    from PIL import Image

    names = list(PHOTOS)
    pictures = []
    for name in names:
        array = getattr(skimage.data, name)()
        pictures.append(Image.fromarray(array).convert("RGB"))
    features = encode_images(pictures)
    queries = embed([PHOTOS[n] for n in names])
    found = []
    for option, make in makers.items():
        encode = make()
        images, texts = encode(features, "image"), encode(queries, "text")
        found.append((option, int(np.sum(np.argmax(texts @ images.T, axis=1) == np.arange(len(names))))))
    return found
