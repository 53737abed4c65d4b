"""The block index of a catalog: box queries over every item.

Built by :meth:`clipbranches.Catalog.build_index` into ``<catalog>/index/blocks.cbi``, opened
(memory-mapped, checksummed, tied to the catalog's codes) by :attr:`clipbranches.Catalog.index`.
"""

from __future__ import annotations

from collections.abc import Sequence

from clipbranches import _core
from clipbranches.store.boxes import Box, BoxHits, BoxSet, as_box_set

__all__ = ["INDEX_FILE", "Index"]

#: Where a catalog's index lives, relative to the catalog directory.
INDEX_FILE = "index/blocks.cbi"


class Index:
    """A block index: items in k-d-tree leaf order, column-major blocks with bounds.

    Use :meth:`clipbranches.Catalog.build_index` or :attr:`clipbranches.Catalog.index`.
    """

    def __init__(self, core: _core.BlockIndex) -> None:
        self._core = core

    def __len__(self) -> int:
        return self._core.count

    @property
    def dim(self) -> int:
        """Code width."""
        return self._core.dim

    @property
    def nbytes(self) -> int:
        """Size of the index in bytes."""
        return self._core.nbytes

    @property
    def block_items(self) -> int:
        """Items per block (leaf)."""
        return self._core.block_items

    def estimate(self, boxes: BoxSet | Sequence[Box]) -> tuple[float, float]:
        """Predicted single-thread cost in ms of ``(index, scan)`` for a query.

        From a sample of at most 256 blocks and per-unit costs measured by
        ``benchmarks/index.py``; the index wins except on tiny catalogs.
        """
        index_ns, scan_ns = self._core.estimate(as_box_set(boxes, self.dim))
        return index_ns / 1e6, scan_ns / 1e6

    def query_boxes(self, boxes: BoxSet | Sequence[Box]) -> BoxHits:
        """Every item inside at least one of ``boxes`` (a :class:`BoxSet`, or boxes converted
        to one), with box and group counts.

        Runs in parallel with the interpreter released.

        Raises
        ------
        InvalidQueryError
            An empty list, lo > hi, a dimension out of range or repeated.
        """
        rows, box_counts, group_counts = self._core.query_boxes(as_box_set(boxes, self.dim))
        return BoxHits(rows, box_counts, group_counts)

    def __repr__(self) -> str:
        return f"Index(items={len(self)}, dim={self.dim}, bytes={self.nbytes}, block_items={self.block_items})"
