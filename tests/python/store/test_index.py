"""The block index and the fused scan against numpy brute force; exact top-k; index files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clipbranches import (
    Catalog,
    DimensionMismatchError,
    IndexFormatError,
    IndexNotFoundError,
    InvalidArgumentError,
    InvalidQueryError,
    StaleIndexError,
    testing,
)
from clipbranches.store import Box, BoxHits


@pytest.fixture(scope="module")
def clustered(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """5,000 synthetic items in 20 clusters, with an index of 128-item blocks."""
    catalog = testing.make_catalog(tmp_path_factory.mktemp("idx") / "cat", 5000, k=20)
    catalog.build_index(block_items=128)
    return catalog


def brute_force(codes: np.ndarray, boxes: list[Box]) -> BoxHits:
    counts = np.zeros(len(codes), np.uint32)
    groups: list[set[int]] = [set() for _ in range(len(codes))]
    for b in boxes:
        inside = np.ones(len(codes), bool)
        for d, lo, hi in zip(b.dims, b.lo, b.hi, strict=True):
            inside &= (codes[:, d] >= lo) & (codes[:, d] <= hi)
        counts += inside
        for i in np.flatnonzero(inside):
            groups[i].add(b.group)
    ids = np.flatnonzero(counts)
    return BoxHits(ids, counts[ids], np.array([len(groups[i]) for i in ids], np.uint32))


def in_id_order(hits: BoxHits) -> BoxHits:
    order = np.argsort(hits.rows, kind="stable")
    return BoxHits(hits.rows[order], hits.box_counts[order], hits.group_counts[order])


@st.composite
def box_lists(draw: st.DrawFn, dim: int = 32) -> list[Box]:
    boxes = []
    for _ in range(draw(st.integers(1, 12))):
        dims = draw(st.lists(st.integers(0, dim - 1), min_size=1, max_size=8, unique=True))
        lo, hi = [], []
        for _ in dims:
            kind = draw(st.sampled_from(["full", "single", "range"]))
            if kind == "full":
                a, b = 0, 255
            elif kind == "single":
                a = b = draw(st.integers(0, 255))
            else:
                a, b = sorted(draw(st.lists(st.integers(0, 255), min_size=2, max_size=2)))
            lo.append(a)
            hi.append(b)
        boxes.append(Box(tuple(dims), tuple(lo), tuple(hi), draw(st.integers(0, 4))))
    return boxes


@settings(max_examples=60, deadline=None)
@given(boxes=box_lists())
def test_index_scan_and_numpy_agree(clustered: Catalog, boxes: list[Box]) -> None:
    expected = brute_force(np.asarray(clustered.codes), boxes)
    for method in ("auto", "index", "scan"):
        got = in_id_order(clustered.query_boxes(boxes, method=method))
        for g, e in zip(got, expected, strict=True):
            np.testing.assert_array_equal(g, e)


def test_boxes_around_a_cluster_find_it(clustered: Catalog) -> None:
    labels = clustered.items["label"].to_numpy()
    members = clustered.codes[labels == 3]
    lo = np.percentile(members, 1, axis=0).astype(int)
    hi = np.percentile(members, 99, axis=0).astype(int)
    box = Box(tuple(range(32)), tuple(int(v) for v in lo), tuple(int(v) for v in hi))
    hits = clustered.query_boxes([box])
    assert (labels[hits.rows] == 3).mean() > 0.95


@settings(max_examples=30, deadline=None)
@given(k=st.integers(1, 80), rows=st.lists(st.integers(0, 4999), min_size=1, max_size=3))
def test_nearest_is_exact(clustered: Catalog, k: int, rows: list[int]) -> None:
    codes = np.asarray(clustered.codes).astype(np.int64)
    queries = clustered.codes[rows]
    distances, ids = clustered.nearest(queries, k)
    assert distances.shape == ids.shape == (len(rows), k)
    for q, query in enumerate(queries.astype(np.int64)):
        d = ((codes - query) ** 2).sum(axis=1)
        order = np.lexsort((np.arange(len(d)), d))[:k]
        np.testing.assert_array_equal(ids[q], order)
        np.testing.assert_array_equal(distances[q], d[order])


def test_nearest_of_one_vector_and_small_catalogs(tmp_path: Path) -> None:
    catalog = Catalog.create(tmp_path / "c", np.array([[0, 0], [3, 4], [1, 1]], np.uint8))
    distances, ids = catalog.nearest(np.array([0, 0], np.uint8), k=10)
    assert ids.tolist() == [[0, 2, 1]]
    assert distances.tolist() == [[0, 2, 25]]
    empty = Catalog.create(tmp_path / "e", iter([]), dim=2)
    assert empty.nearest(np.zeros(2, np.uint8), 5)[1].shape == (1, 0)
    empty.build_index()
    assert len(empty.query_boxes([Box((0,), (0,), (255,))]).rows) == 0


def test_index_persists_and_reopens(clustered: Catalog) -> None:
    reopened = Catalog.open(clustered.path)
    assert reopened.has_index
    assert len(reopened.index) == 5000
    assert reopened.index.nbytes / 5000 < 64  # the budget per item
    boxes = [Box((0, 5), (100, 90), (200, 180), 1)]
    a, b = reopened.query_boxes(boxes), clustered.query_boxes(boxes)
    np.testing.assert_array_equal(a.rows, b.rows)


@pytest.mark.parametrize(
    ("boxes", "message"),
    [
        ([], "empty"),
        ([Box((0,), (5,), (4,))], "lower bound 5 > upper bound 4"),
        ([Box((32,), (0,), (1,))], "dimension 32 is out of range"),
        ([Box((1, 1), (0, 0), (9, 9))], "appears twice"),
        ([Box((1, 2), (0,), (9, 9))], "1 lower and 2 upper"),
        ([Box((1,), (0,), (256,))], "hi must lie in 0..255"),
        ([Box((1,), (-1,), (2,))], "lo must lie in 0..255"),
        ([Box((1,), (0,), (2,), group=-1)], "group must lie"),
        ([(1, 0, 2)], "not a Box"),
        (Box((1,), (0,), (2,)), "sequence of Box"),
    ],
)
def test_bad_boxes(clustered: Catalog, boxes: object, message: str) -> None:
    for method in ("auto", "index", "scan"):
        with pytest.raises(InvalidQueryError, match=message):
            clustered.query_boxes(boxes, method=method)  # type: ignore[arg-type]


def test_bad_nearest_and_method_arguments(clustered: Catalog) -> None:
    with pytest.raises(InvalidArgumentError, match="uint8"):
        clustered.nearest(np.zeros(32, np.float32))
    with pytest.raises(DimensionMismatchError, match="dim 32"):
        clustered.nearest(np.zeros(31, np.uint8))
    with pytest.raises(InvalidArgumentError, match="k must be at least 1"):
        clustered.nearest(np.zeros(32, np.uint8), k=0)
    with pytest.raises(InvalidArgumentError, match="method"):
        clustered.query_boxes([Box((0,), (0,), (1,))], method="tree")  # type: ignore[arg-type]


def test_bad_build_options(tmp_path: Path) -> None:
    catalog = Catalog.create(tmp_path / "c", np.zeros((10, 4), np.uint8))
    with pytest.raises(InvalidArgumentError, match="multiple of 128"):
        catalog.build_index(block_items=100)
    assert not catalog.has_index


def test_missing_stale_and_corrupt_index_files(tmp_path: Path, clustered: Catalog) -> None:
    other = testing.make_catalog(tmp_path / "other", 5000, k=20, seed=1)
    with pytest.raises(IndexNotFoundError, match="build_index"):
        _ = other.index
    assert other.query_boxes([Box((0,), (0,), (255,))], method="auto").rows.size == 5000  # scan, no index
    (other.path / "index").mkdir()
    shutil.copy(clustered.path / "index" / "blocks.cbi", other.path / "index" / "blocks.cbi")
    with pytest.raises(StaleIndexError, match="built for another catalog"):
        _ = Catalog.open(other.path).index
    path = other.build_index().nbytes and other.path / "index" / "blocks.cbi"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(IndexFormatError, match="checksum mismatch"):
        _ = Catalog.open(other.path).index
    path.write_bytes(bytes(data[:-10]))
    with pytest.raises(IndexFormatError, match="truncated"):
        _ = Catalog.open(other.path).index
    path.write_bytes(b"not an index")
    with pytest.raises(IndexFormatError, match="not a clipbranches index"):
        _ = Catalog.open(other.path).index


def test_auto_picks_the_engine_the_cost_model_prefers(tmp_path: Path, clustered: Catalog) -> None:
    boxes = [Box((0, 1, 2, 3), (90, 90, 90, 90), (170, 170, 170, 170))]
    index_ms, scan_ms = clustered.index.estimate(boxes)
    assert 0 < index_ms < scan_ms
    assert clustered.choose_method(boxes) == "index"
    tiny = Catalog.create(tmp_path / "tiny", np.full((1, 32), 100, np.uint8))
    assert tiny.choose_method(boxes) == "scan"  # no index yet
    tiny.build_index()
    assert tiny.choose_method(boxes) == "scan"  # one item: a block pass costs more than one test
    assert tiny.query_boxes(boxes).rows.tolist() == [0]
