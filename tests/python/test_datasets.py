"""The data-set loaders on tiny stand-ins: idx parsing, OpenClipArt titles, the stratified split,
and the errors that say how to install a missing data set."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from clipbranches import DatasetNotFoundError
from clipbranches.datasets import load_fashion_mnist, stratified_split


def _write_idx(path: Path, magic: int, array: np.ndarray) -> None:
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_reader_on_tiny_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    train, test = rng.integers(0, 256, (6, 28, 28)), rng.integers(0, 256, (4, 28, 28))
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", 0x0803, train)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", 0x0801, np.arange(6) % 10)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", 0x0803, test)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", 0x0801, np.arange(4) % 10)
    images, labels = load_fashion_mnist(tmp_path)
    np.testing.assert_array_equal(images, np.concatenate([train, test]).astype(np.uint8))
    np.testing.assert_array_equal(labels, [0, 1, 2, 3, 4, 5, 0, 1, 2, 3])
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", 0x0803, np.arange(4))
    with pytest.raises(DatasetNotFoundError, match="not an idx file"):
        load_fashion_mnist(tmp_path)


def test_missing_dataset_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path)


def test_split_is_stratified_disjoint_and_seeded() -> None:
    labels = np.repeat(np.arange(3), [10, 7, 4])
    pool, test = stratified_split(labels, seed=0)
    assert len(np.intersect1d(pool, test)) == 0
    assert len(pool) + len(test) == len(labels)
    assert list(np.bincount(labels[pool])) == [5, 3, 2]
    np.testing.assert_array_equal(pool, stratified_split(labels, seed=0)[0])


def test_openclipart_titles_skip_agent_names_and_fall_back_to_file_names(tmp_path: Path) -> None:
    from clipbranches.datasets import openclipart_items

    with pytest.raises(DatasetNotFoundError, match="apt-get install openclipart-png"):
        openclipart_items(tmp_path)
    for folder in ("png/animals", "svg/animals", "png/food"):
        (tmp_path / folder).mkdir(parents=True)
    svg = (
        "<svg><metadata><cc:Work><dc:creator><cc:Agent><dc:title>Some Artist</dc:title></cc:Agent></dc:creator>"
        "<dc:title>Happy\n  cat</dc:title><dc:subject><rdf:Bag><rdf:li>cat</rdf:li><rdf:li> pet </rdf:li>"
        "</rdf:Bag></dc:subject></cc:Work></metadata></svg>"
    )
    (tmp_path / "svg/animals/cat_01.svg").write_text(svg)
    (tmp_path / "png/animals/cat_01.png").write_bytes(b"")
    (tmp_path / "png/food/red_apple.png").write_bytes(b"")  # no svg
    cat, apple = openclipart_items(tmp_path)
    assert (cat.title, cat.keywords, cat.category) == ("Happy cat", ("cat", "pet"), "animals")
    assert (apple.title, apple.keywords, apple.category) == ("red apple", (), "food")
