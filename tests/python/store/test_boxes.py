"""The native box set: built from arrays or Box objects, its arrays and Box view round-trip, the
one-call native query agrees with numpy brute force for every method, and every bad box is a
typed error."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clipbranches import Catalog, InvalidArgumentError, InvalidQueryError, _core, testing
from clipbranches.store.boxes import Box, BoxSet, as_box_set, boxes_of

DIM = 16


@pytest.fixture(scope="module")
def clustered(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """3,000 synthetic items of width 16 in 10 clusters, with an index of 128-item blocks."""
    catalog = testing.make_catalog(tmp_path_factory.mktemp("boxes") / "cat", 3000, dim=DIM, k=10)
    catalog.build_index(block_items=128)
    return catalog


@st.composite
def boxes(draw: st.DrawFn, dim: int = DIM) -> list[Box]:
    out = []
    for _ in range(draw(st.integers(1, 10))):
        dims = draw(st.lists(st.integers(0, dim - 1), min_size=1, max_size=6, unique=True))
        bounds = [sorted(draw(st.lists(st.integers(0, 255), min_size=2, max_size=2))) for _ in dims]
        if draw(st.booleans()):  # wide boxes, so that blocks are covered whole too
            bounds = [[min(a, 60), max(b, 200)] for a, b in bounds]
        out.append(Box(tuple(dims), tuple(a for a, _ in bounds), tuple(b for _, b in bounds), draw(st.integers(0, 3))))
    return out


def brute_force(codes: np.ndarray, boxes: list[Box]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    inside = np.stack(
        [
            np.all([(codes[:, d] >= lo) & (codes[:, d] <= hi) for d, lo, hi in zip(b.dims, b.lo, b.hi, strict=True)], 0)
            for b in boxes
        ]
    )
    groups = np.array([b.group for b in boxes])
    rows = np.flatnonzero(inside.any(axis=0))
    group_counts = [len(set(groups[inside[:, r]])) for r in rows]
    return rows, inside.sum(axis=0)[rows], np.array(group_counts, dtype=np.int64)


@settings(max_examples=60, deadline=None)
@given(boxes=boxes())
def test_arrays_and_boxes_round_trip(boxes: list[Box]) -> None:
    box_set = as_box_set(boxes, DIM)
    assert (len(box_set), box_set.dim, box_set.groups) == (len(boxes), DIM, len({b.group for b in boxes}))
    assert boxes_of(box_set) == boxes, "the order given, not the group order the engines use"
    arrays = box_set.arrays()
    assert [a.dtype for a in arrays] == [np.int64, np.uint16, np.uint8, np.uint8, np.uint32]
    again = BoxSet.from_arrays(*arrays, dim=DIM)
    for a, b in zip(again.arrays(), arrays, strict=True):
        np.testing.assert_array_equal(a, b)
    inferred = BoxSet.from_arrays(*(a.astype(np.int32) for a in arrays))
    assert inferred.dim == 1 + max(d for b in boxes for d in b.dims)
    assert as_box_set(box_set) is box_set


@settings(max_examples=60, deadline=None)
@given(boxes=boxes())
def test_native_query_agrees_with_brute_force_for_every_method(clustered: Catalog, boxes: list[Box]) -> None:
    codes = np.asarray(clustered.codes)
    expected = brute_force(codes, boxes)
    box_set = as_box_set(boxes, DIM)
    index = clustered.index._core
    for core_index, method in ((index, "auto"), (index, "index"), (index, "scan"), (None, "auto"), (None, "scan")):
        rows, box_counts, group_counts = _core.query_boxes(codes, core_index, box_set, method)
        order = np.argsort(rows)
        for got, want in zip((rows[order], box_counts[order], group_counts[order]), expected, strict=True):
            np.testing.assert_array_equal(got, want)
    hits = clustered.query_boxes(box_set)
    np.testing.assert_array_equal(np.sort(hits.rows), expected[0])


def test_auto_is_the_engine_the_cost_model_prefers(clustered: Catalog) -> None:
    box_set = as_box_set([Box((0, 1, 2, 3), (90, 90, 90, 90), (170, 170, 170, 170))], DIM)
    index_ns, scan_ns = clustered.index._core.estimate(box_set)
    assert clustered.choose_method(box_set) == ("scan" if scan_ns < index_ns else "index") == "index"
    auto = _core.query_boxes(clustered.codes, clustered.index._core, box_set, "auto")
    by_index = _core.query_boxes(clustered.codes, clustered.index._core, box_set, "index")
    for a, b in zip(auto, by_index, strict=True):
        np.testing.assert_array_equal(a, b)  # the index's own order: auto ran the index


def test_fitted_width_is_reused_and_other_widths_are_checked(clustered: Catalog) -> None:
    wide = as_box_set([Box((20,), (0,), (255,))], 32)
    with pytest.raises(InvalidQueryError, match="dimension 20 is out of range for codes of width 16"):
        clustered.query_boxes(wide, method="scan")
    narrow = as_box_set([Box((3,), (0,), (255,))])
    assert narrow.dim == 4
    assert len(clustered.query_boxes(narrow).rows) == len(clustered)


def test_an_empty_set_exists_but_cannot_be_queried(clustered: Catalog) -> None:
    empty = as_box_set([])
    assert (len(empty), empty.groups, boxes_of(empty)) == (0, 0, [])
    for method in ("auto", "index", "scan"):
        with pytest.raises(InvalidQueryError, match="empty"):
            clustered.query_boxes(empty, method=method)  # type: ignore[arg-type]


def test_too_many_boxes_are_refused_when_queried(clustered: Catalog) -> None:
    ones = np.ones(65536, np.int64)
    many = BoxSet.from_arrays(np.arange(65537), ones * 0, ones * 0, ones, ones * 0, dim=DIM)
    assert len(many) == 65536
    with pytest.raises(InvalidQueryError, match="65536 boxes; at most 65535"):
        clustered.query_boxes(many)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (([0, 1], [0], [5], [4], [0]), "lower bound 5 > upper bound 4"),
        (([0, 1], [16], [0], [1], [0]), "dimension 16 is out of range for codes of width 16"),
        (([0, 2], [1, 1], [0, 0], [9, 9], [0]), "dimension 1 appears twice"),
        (([0, 1], [70000], [0], [1], [0]), "dims must lie in 0..65535, got 70000"),
        (([0, 1], [1], [-1], [1], [0]), "lo must lie in 0..255, got -1"),
        (([0, 1], [1], [0], [256], [0]), "hi must lie in 0..255, got 256"),
        (([0, 1], [1], [0], [1], [2**32 - 1]), "group must lie in 0..4294967294"),
        (([0, 1, 1], [1], [0], [1], [0]), "3 offsets for 1 boxes"),
        (([0, 1], [1, 2], [0], [1], [0]), "2 dims but 1 lower and 1 upper"),
        (([1, 1], [1], [0], [1], [0]), "offsets must rise from 0"),
        (([0, 0, 1], [1], [0], [1], [0, 0]), "box 0: constrains no dimension"),
    ],
)
def test_bad_arrays(arrays: tuple[list[int], ...], message: str) -> None:
    with pytest.raises(InvalidQueryError, match=message):
        BoxSet.from_arrays(*(np.array(a, dtype=np.int64) for a in arrays), dim=DIM)


def test_arrays_must_be_integer_arrays() -> None:
    good = [np.array(a) for a in ([0, 1], [1], [0], [1], [0])]
    with pytest.raises(InvalidQueryError, match="box lo must be a 1-D integer array, got a 1-D array of float64"):
        BoxSet.from_arrays(good[0], good[1], good[2].astype(np.float64), good[3], good[4])
    with pytest.raises(InvalidQueryError, match="box dims must be a 1-D integer array, got a list"):
        BoxSet.from_arrays(good[0], [1], good[2], good[3], good[4])  # type: ignore[arg-type]
    with pytest.raises(InvalidQueryError, match="got a 2-D array"):
        BoxSet.from_arrays(good[0], good[1].reshape(1, 1), good[2], good[3], good[4])


@pytest.mark.parametrize(
    ("boxes", "message"),
    [
        (Box((1,), (0,), (2,)), "sequence of Box"),
        ({0: Box((1,), (0,), (2,))}, "sequence of Box"),
        ([(1, 0, 2)], "box 0 is a tuple, not a Box"),
        ([Box((1,), (0,), (2,)), Box((1, 2), (0,), (9, 9))], "box 1: 2 dims but 1 lower and 2 upper bounds"),
    ],
)
def test_python_boxes_are_checked_before_conversion(boxes: object, message: str) -> None:
    with pytest.raises(InvalidQueryError, match=message):
        as_box_set(boxes)  # type: ignore[arg-type]


def test_a_bad_method_is_an_argument_error(clustered: Catalog) -> None:
    box_set = as_box_set([Box((0,), (0,), (1,))], DIM)
    with pytest.raises(InvalidArgumentError, match="method must be 'auto', 'index' or 'scan', got 'tree'"):
        _core.query_boxes(clustered.codes, None, box_set, "tree")
    with pytest.raises(InvalidArgumentError, match="method 'index' needs an index"):
        _core.query_boxes(clustered.codes, None, box_set, "index")


def test_box_set_repr() -> None:
    box_set = as_box_set([Box((0,), (0,), (1,), 2), Box((1,), (0,), (1,), 2)], DIM)
    assert repr(box_set) == "BoxSet(boxes=2, groups=1, dim=16)"
