"""Box models as data: axis-aligned boxes on subsets of the code dimensions.

A box model (one decision-branch model, or each member of an ensemble) is a union of boxes; a
query is the list of boxes of every member, each tagged with its member's ``group``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from clipbranches.exceptions import InvalidQueryError

__all__ = ["Box", "BoxHits", "to_csr"]


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


def to_csr(
    boxes: Sequence[Box],
) -> tuple[NDArray[np.int64], NDArray[np.uint16], NDArray[np.uint8], NDArray[np.uint8], NDArray[np.uint32]]:
    """The compressed arrays the native core takes: offsets, dims, lo, hi, groups."""
    if isinstance(boxes, Box) or not isinstance(boxes, Sequence):
        raise InvalidQueryError(f"boxes must be a sequence of Box, got {type(boxes).__name__}")
    lengths = []
    for i, b in enumerate(boxes):
        if not isinstance(b, Box):
            raise InvalidQueryError(f"box {i} is a {type(b).__name__}, not a Box")
        lengths.append(len(b.dims))
    offsets = np.zeros(len(boxes) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = [v for b in boxes for v in zip(b.dims, b.lo, b.hi, strict=False)]
    values = np.array(flat, dtype=np.int64).reshape(-1, 3)
    for name, column, top in (("dims", values[:, 0], 65535), ("lo", values[:, 1], 255), ("hi", values[:, 2], 255)):
        if column.size and (column.min() < 0 or column.max() > top):
            raise InvalidQueryError(f"box {name} must lie in 0..{top}")
    groups = np.array([b.group for b in boxes], dtype=np.int64)
    if groups.size and (groups.min() < 0 or groups.max() >= 2**32 - 1):
        raise InvalidQueryError("box groups must lie in 0..2**32-2")
    for i, b in enumerate(boxes):
        if not len(b.dims) == len(b.lo) == len(b.hi):
            raise InvalidQueryError(f"box {i}: {len(b.dims)} dims but {len(b.lo)} lower and {len(b.hi)} upper bounds")
    return (
        offsets,
        values[:, 0].astype(np.uint16),
        values[:, 1].astype(np.uint8),
        values[:, 2].astype(np.uint8),
        groups.astype(np.uint32),
    )
