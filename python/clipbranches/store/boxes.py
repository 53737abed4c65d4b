"""Box models as data: axis-aligned boxes on subsets of the code dimensions.

A box model (one decision-branch model, or each member of an ensemble) is a union of boxes; a
query is the list of boxes of every member, each tagged with its member's ``group``.

The query engines take a :class:`BoxSet`: the boxes held natively, validated, with the query
built once. The learners return one; :func:`as_box_set` turns a sequence of :class:`Box` into
one; :func:`boxes_of` gives a set's boxes back as :class:`Box` objects (for rules and display).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from clipbranches._core import BoxSet
from clipbranches.exceptions import InvalidQueryError

__all__ = ["Box", "BoxHits", "BoxSet", "as_box_set", "boxes_of"]


@dataclass(frozen=True)
class Box:
    """One box: ``lo[k] <= code[dims[k]] <= hi[k]`` for every k (inclusive uint8 bounds).

    Parameters
    ----------
    dims
        The constrained dimensions (distinct).
    lo, hi
        Bounds per constrained dimension, 0..255.
    group
        The ensemble member the box belongs to (0 for a single model).
    """

    dims: tuple[int, ...]
    lo: tuple[int, ...]
    hi: tuple[int, ...]
    group: int = 0


class BoxHits(NamedTuple):
    """Every item inside at least one box.

    Rows come ascending from the scan and in index (k-d tree leaf) order from the index: both
    deterministic; ``np.argsort(hits.rows)`` gives catalog order.

    Attributes
    ----------
    rows : uint32 (h,)
        Catalog rows (an index holds at most 2**32 - 1 items; 4 bytes keep broad answers small).
    box_counts : uint16 (h,)
        How many boxes contain the item (a query holds at most 65,535 boxes).
    group_counts : uint16 (h,)
        How many distinct groups (ensemble members) have a box containing it.
    """

    rows: NDArray[np.uint32]
    box_counts: NDArray[np.uint16]
    group_counts: NDArray[np.uint16]


def as_box_set(boxes: BoxSet | Sequence[Box], dim: int | None = None) -> BoxSet:
    """``boxes`` as the native set the query engines take: a :class:`BoxSet` as it is, a
    sequence of :class:`Box` converted (once per call, so convert a list queried many times
    yourself).

    Parameters
    ----------
    dim
        The code width the boxes are checked against (default: one more than the largest
        dimension used).

    Raises
    ------
    InvalidQueryError
        Not a sequence of Box; a box with more or fewer bounds than dims, a value that does
        not fit (dims 0..65535, bounds 0..255, groups 0..2**32-2), lo > hi, a dimension out of
        range or repeated (the native checks).
    """
    if isinstance(boxes, BoxSet):
        return boxes
    if isinstance(boxes, Box) or not isinstance(boxes, Sequence):
        raise InvalidQueryError(f"boxes must be a BoxSet or a sequence of Box, got {type(boxes).__name__}")
    lengths = []
    for i, b in enumerate(boxes):
        if not isinstance(b, Box):
            raise InvalidQueryError(f"box {i} is a {type(b).__name__}, not a Box")
        try:
            if not len(b.dims) == len(b.lo) == len(b.hi):
                raise InvalidQueryError(
                    f"box {i}: {len(b.dims)} dims but {len(b.lo)} lower and {len(b.hi)} upper bounds"
                )
            fields = (*b.dims, *b.lo, *b.hi, b.group)
        except TypeError:
            raise InvalidQueryError(f"box {i}: dims, lo and hi must be sequences of integers") from None
        bad = next((v for v in fields if isinstance(v, bool) or not isinstance(v, (int, np.integer))), None)
        if bad is not None:
            raise InvalidQueryError(f"box {i}: dims, bounds and group must be integers, got {bad!r}")
        lengths.append(len(b.dims))
    offsets = np.zeros(len(boxes) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    values = np.array([v for b in boxes for v in zip(b.dims, b.lo, b.hi, strict=True)], dtype=np.int64).reshape(-1, 3)
    groups = np.array([b.group for b in boxes], dtype=np.int64)
    return BoxSet.from_arrays(offsets, values[:, 0], values[:, 1], values[:, 2], groups, dim)


def boxes_of(box_set: BoxSet) -> list[Box]:
    """The boxes of ``box_set`` as :class:`Box` objects, in its order."""
    offsets, dims, lo, hi, groups = (a.tolist() for a in box_set.arrays())
    return [
        Box(tuple(dims[a:b]), tuple(lo[a:b]), tuple(hi[a:b]), g)
        for a, b, g in zip(offsets[:-1], offsets[1:], groups, strict=True)
    ]
