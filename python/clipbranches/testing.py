"""The synthetic data every test and benchmark of the project uses, and small stand-ins for
the towers (:class:`MeanColourEncoder`, :func:`tiny_heads`) for tests that ingest real files.

K centres drawn uniformly on the unit sphere in ``dim`` dimensions; each point is
``normalise(centre + noise * standard_normal)`` for a uniformly drawn centre, whose index is the
point's label; codes are quantized with the paper's fixed range.

Points are generated in fixed blocks of :data:`BLOCK_ROWS`, labels and noise each from their own
seeded stream, so the data is the same whatever chunking a consumer uses, and the first m points
of a catalog of n are the m points of a catalog of m.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from numpy.typing import ArrayLike, NDArray

from clipbranches.embed.encoders.base import Encoder
from clipbranches.exceptions import InvalidArgumentError
from clipbranches.store.quantize import CalibratedQuantizer, FixedRangeQuantizer, Quantizer

if TYPE_CHECKING:
    from PIL import Image

    from clipbranches.embed.head import Heads
    from clipbranches.engine import SearchEngine
    from clipbranches.results import Results
    from clipbranches.store.catalog import Catalog

__all__ = [
    "BLOCK_ROWS",
    "MeanColourEncoder",
    "centres",
    "codes",
    "embeddings",
    "labels",
    "make_catalog",
    "photo_views",
    "refine_concurrently",
    "quantize_numpy",
    "tiny_heads",
]

#: Rows generated per block (one seed each).
BLOCK_ROWS = 1 << 16


def centres(k: int = 1000, dim: int = 32, seed: int = 0) -> NDArray[np.float32]:
    """``k`` points uniform on the unit sphere in ``dim`` dimensions, float32 ``(k, dim)``."""
    if k < 1 or dim < 1:
        raise InvalidArgumentError(f"need k >= 1 and dim >= 1, got k={k}, dim={dim}")
    rng = np.random.default_rng([seed, 0])
    points = rng.standard_normal((k, dim))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def embeddings(
    n: int, *, dim: int = 32, k: int = 1000, noise: float = 0.18, seed: int = 0
) -> Iterator[tuple[NDArray[np.float32], NDArray[np.int32]]]:
    """Unit-norm float32 points ``(rows, dim)`` and their int32 cluster labels, in blocks."""
    if n < 0:
        raise InvalidArgumentError(f"n must be >= 0, got {n}")
    centre = centres(k, dim, seed)
    for block, start in enumerate(range(0, n, BLOCK_ROWS)):
        rows = min(BLOCK_ROWS, n - start)
        labels = _block_labels(seed, block, rows, k)
        gauss = np.random.default_rng([seed, block + 1, 1]).standard_normal((rows, dim), dtype=np.float32)
        points = centre[labels] + np.float32(noise) * gauss
        points /= np.linalg.norm(points, axis=1, keepdims=True)
        yield points, labels


def codes(
    n: int,
    *,
    dim: int = 32,
    k: int = 1000,
    noise: float = 0.18,
    seed: int = 0,
    quantizer: Quantizer | None = None,
) -> Iterator[tuple[NDArray[np.uint8], NDArray[np.int32]]]:
    """uint8 codes ``(rows, dim)`` of :func:`embeddings` and their labels, in blocks."""
    quantizer = FixedRangeQuantizer() if quantizer is None else quantizer
    for points, labels in embeddings(n, dim=dim, k=k, noise=noise, seed=seed):
        yield quantizer.quantize(points), labels


def make_catalog(
    path: str | os.PathLike[str],
    n: int,
    *,
    dim: int = 32,
    k: int = 1000,
    noise: float = 0.18,
    seed: int = 0,
    overwrite: bool = False,
) -> Catalog:
    """Create a synthetic catalog of ``n`` items; ``items`` has the cluster id in ``label``."""
    from clipbranches.store.catalog import Catalog

    stream = (block for block, _ in codes(n, dim=dim, k=k, noise=noise, seed=seed))
    return Catalog.create(
        path,
        stream,
        items=pl.DataFrame({"label": labels(n, k=k, seed=seed)}),
        encoder={"name": "synthetic", "k": k, "noise": noise, "seed": seed},
        dim=dim,
        overwrite=overwrite,
    )


def labels(n: int, *, k: int = 1000, seed: int = 0) -> NDArray[np.int32]:
    """The labels of the first ``n`` points, without generating the points."""
    if n < 0:
        raise InvalidArgumentError(f"n must be >= 0, got {n}")
    blocks = [
        _block_labels(seed, block, min(BLOCK_ROWS, n - start), k) for block, start in enumerate(range(0, n, BLOCK_ROWS))
    ]
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.int32)


def _block_labels(seed: int, block: int, rows: int, k: int) -> NDArray[np.int32]:
    """The labels of one block: their own stream, so they can be replayed without the points."""
    return np.random.default_rng([seed, block + 1, 0]).integers(0, k, size=rows, dtype=np.int32)


def quantize_numpy(quantizer: Quantizer, x: ArrayLike) -> NDArray[np.uint8]:
    """The pure-numpy twin of ``quantizer.quantize(x)`` (the native kernel): the same bytes,
    operation for operation, slower; the property tests hold the kernel to it."""
    rows = np.asarray(x, dtype=np.float32)
    single = rows.ndim == 1
    rows = rows.reshape(1, -1) if single else rows
    if np.isnan(rows).any():
        r, d = (int(i) for i in np.argwhere(np.isnan(rows))[0])
        raise InvalidArgumentError(f"invalid argument: NaN at row {r}, dimension {d}: embeddings must be numbers")
    if isinstance(quantizer, FixedRangeQuantizer):
        with np.errstate(over="ignore"):  # overflow to +-inf saturates, as in the kernel
            scaled = rows * np.float32(quantizer.scale) + np.float32(quantizer.offset)
    elif isinstance(quantizer, CalibratedQuantizer):
        quantizer.check_dim(rows.shape[1])
        inv = (np.float32(255.0) / (quantizer.high - quantizer.low)).astype(np.float32)
        with np.errstate(over="ignore"):
            scaled = np.rint((rows - quantizer.low) * inv)
    else:
        raise InvalidArgumentError(f"no numpy twin for {type(quantizer).__name__}")
    codes = np.clip(scaled, 0, 255).astype(np.uint8)
    return codes[0] if single else codes


class MeanColourEncoder(Encoder):
    """A tiny deterministic encoder for tests: per-channel means and stds of an image (6-d
    "image features", zeros for texts), counting the images it saw. No model, no torch."""

    image_dim = 6
    text_dim = 6

    def __init__(self) -> None:
        self.images_seen = 0

    @property
    def identity(self) -> dict[str, Any]:
        return {"kind": "test-mean-colour"}

    def encode_images(self, images: Sequence[Image.Image]) -> NDArray[np.float32]:
        self.images_seen += len(images)
        rows = [
            np.concatenate([np.asarray(im, np.float32).mean((0, 1)), np.asarray(im, np.float32).std((0, 1))])
            for im in images
        ]
        return np.array(rows, np.float32).reshape(-1, 6) / 255.0

    def encode_texts(self, texts: Sequence[str]) -> NDArray[np.float32]:
        return np.zeros((len(texts), 6), np.float32)


def tiny_heads(seed: int = 0) -> Heads:
    """Untrained heads for :class:`MeanColourEncoder` (6-d towers, 32-d codes), seeded; torch
    loads here."""
    import torch

    from clipbranches.embed.head import HeadConfig, Heads

    torch.manual_seed(seed)
    return Heads(HeadConfig(6, 6, out_dim=32, hidden=(16,))).eval()


def photo_views(folder: str | os.PathLike[str], names: Sequence[str], views: int = 3) -> list[Path]:
    """Real photos for tests: scikit-image's bundled photos ``names`` (``skimage.data.<name>``),
    each saved whole and as crops (``{name}_{v}.jpg``: 0 whole, 1 its top-left 80%, 2 it less
    its top and left fifth), into ``folder`` (created). Returns the files; PIL and scikit-image
    load here."""
    from PIL import Image
    from skimage import data

    if not 1 <= views <= 3:
        raise InvalidArgumentError(f"views is 1, 2 or 3, not {views!r}")
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names:
        image = Image.fromarray(getattr(data, name)()).convert("RGB")
        w, h = image.size
        crops = [image, image.crop((0, 0, int(w * 0.8), int(h * 0.8))), image.crop((w // 5, h // 5, w, h))]
        for v, view in enumerate(crops[:views]):
            path = root / f"{name}_{v}.jpg"
            view.save(path, quality=90)
            written.append(path)
    return written


def refine_concurrently(
    engine: SearchEngine, positives: Sequence[int], negatives: Sequence[int], models: Sequence[str], seed: int = 9
) -> list[Results]:
    """One refine round per model, all at once on threads (each fully ranked, so its pages
    are merged concurrently too); the results in ``models``' order. The first error of any
    thread is raised."""
    import threading

    got: dict[int, Results] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            results = engine.refine(positives, negatives, model=models[i], seed=seed)
            results.rows  # noqa: B018 (the full ranking)
            got[i] = results
        except BaseException as e:  # reported below, in the caller's thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(models))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return [got[i] for i in range(len(models))]
