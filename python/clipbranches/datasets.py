"""The real data sets the demo and the benchmarks use, as Debian packages them.

- Fashion-MNIST (``dataset-fashion-mnist``): 70,000 28x28 grayscale images in 10 classes;
  :func:`load_fashion_mnist`.
- OpenClipArt (``openclipart-png`` + ``openclipart-svg``): 8,121 clip-art images with titles and
  keywords from the SVGs, classed by top folder; :func:`openclipart_items`.

Installing them needs root; ``make data`` (part of ``make setup``) does it. The library never
installs anything: a missing data set is a :class:`DatasetNotFoundError` that names the package.
"""

from __future__ import annotations

import gzip
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from clipbranches.exceptions import DatasetNotFoundError

__all__ = [
    "DEBIAN_PACKAGES",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_DIR",
    "OPENCLIPART_DIR",
    "ClipArt",
    "is_installed",
    "load_fashion_mnist",
    "openclipart_items",
    "require",
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
#: The Debian packages of each data set.
DEBIAN_PACKAGES: dict[str, tuple[str, ...]] = {
    "openclipart": ("openclipart-png", "openclipart-svg"),
    "fashion-mnist": ("dataset-fashion-mnist",),
}


def is_installed(name: str, root: Path | None = None) -> bool:
    """Whether data set ``name`` (a key of :data:`DEBIAN_PACKAGES`) is present under ``root``
    (default: where Debian puts it)."""
    if name == "openclipart":
        return any((root or OPENCLIPART_DIR).joinpath("png").rglob("*.png"))
    if name == "fashion-mnist":
        return (root or FASHION_MNIST_DIR).joinpath("t10k-images-idx3-ubyte.gz").is_file()
    raise DatasetNotFoundError(f"unknown data set {name!r}; choose one of {', '.join(DEBIAN_PACKAGES)}")


def require(name: str, root: Path | None = None) -> None:
    """Raise :class:`DatasetNotFoundError` naming the Debian packages (and ``make data``) when
    data set ``name`` is missing."""
    if is_installed(name, root):
        return
    packages = " ".join(DEBIAN_PACKAGES[name])
    where = f" under {root}" if root is not None else ""
    raise DatasetNotFoundError(
        f"the {name} data set is not installed{where}: run `make data` in the repository, or as root "
        f"`apt-get install -y --no-install-recommends {packages}`"
    )


def _read_idx(path: Path, magic: int, header: int) -> NDArray[np.uint8]:
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < header or struct.unpack(">I", data[:4])[0] != magic:
        raise DatasetNotFoundError(f"{path} is not an idx file (magic {magic:#x} expected)")
    dims = struct.unpack(f">{(header - 4) // 4}I", data[4:header])
    array = np.frombuffer(data, dtype=np.uint8, offset=header)
    if array.size != int(np.prod(dims)):
        raise DatasetNotFoundError(f"{path}: {array.size} bytes of data, the header says {dims}")
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
            raise DatasetNotFoundError(
                f"Fashion-MNIST not found in {root} (missing {image_file} or {label_file}); "
                "install it with `apt-get install dataset-fashion-mnist` (needs root)"
            )
        images.append(_read_idx(root / image_file, 0x0803, 16))
        labels.append(_read_idx(root / label_file, 0x0801, 8))
    return np.concatenate(images), np.concatenate(labels).astype(np.int64)


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
        raise DatasetNotFoundError(
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
