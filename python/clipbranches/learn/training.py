"""The training set of a refine round: the user's labels plus random negatives.

Positives get label 1; the user's negatives label 0 with weight ``negative_weight`` (the
original repeats them; a weight is the same for every learner here and costs no rows); then
``random_negatives`` items drawn from a fixed random pool of the catalog, without the items the
user labelled. The pool is the same in every round (it depends only on the catalog's size), so
rounds differ only by the labels and the seed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from clipbranches.exceptions import DimensionMismatchError, InvalidArgumentError
from clipbranches.options import MAX_RANDOM_NEGATIVES, RefineOptions, check_integer

__all__ = ["POOL_SEED", "TrainingSet", "build_training_set", "random_pool"]

#: Seed of the pool (fixed: the pool must not change between rounds).
POOL_SEED = 0xC11B


@dataclass(frozen=True)
class TrainingSet:
    """Rows to fit a learner on.

    Attributes
    ----------
    rows : int64 (m,)
        The catalog row of each training row.
    codes : uint8 (m, dim)
    labels : bool (m,)
    weights : float64 (m,)
    labelled : bool (m,)
        True for the user's labels (positives and negatives), False for the random negatives
        (a uniform sample of the catalog: some of them belong to the class).
    """

    rows: NDArray[np.int64]
    codes: NDArray[np.uint8]
    labels: NDArray[np.bool_]
    weights: NDArray[np.float64]
    labelled: NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def positives(self) -> int:
        """Number of positive rows."""
        return int(self.labels.sum())


def random_pool(n_items: int, size: int = MAX_RANDOM_NEGATIVES) -> NDArray[np.int64]:
    """The fixed random pool of a catalog of ``n_items``: ``min(size, n_items)`` distinct rows."""
    rng = np.random.default_rng(POOL_SEED)
    if n_items <= size:
        return rng.permutation(n_items).astype(np.int64)
    # Floyd-style rejection: draw a few more than needed, keep the first `size` distinct ones
    # (O(size) memory, whatever the catalog's size).
    chosen: dict[int, None] = {}
    while len(chosen) < size:
        for v in rng.integers(n_items, size=size).tolist():
            chosen.setdefault(v)
            if len(chosen) == size:
                break
    return np.fromiter(chosen, dtype=np.int64, count=size)


def build_training_set(
    codes: NDArray[np.uint8],
    positives: Iterable[int],
    negatives: Iterable[int] = (),
    *,
    random_negatives: int = RefineOptions.random_negatives,
    negative_weight: int = RefineOptions.negative_weight,
    seed: int = 0,
) -> TrainingSet:
    """The training set for labels over ``codes`` (a catalog's ``codes``, ``(n, dim)`` uint8).

    Raises
    ------
    InvalidArgumentError
        No positive; an id that is not an integer, out of range or both positive and
        negative; ``random_negatives`` or ``negative_weight``
        outside :class:`~clipbranches.RefineOptions`' ranges.
    """
    if not isinstance(codes, np.ndarray) or codes.dtype != np.uint8 or codes.ndim != 2:
        raise DimensionMismatchError("codes must be a (n, dim) uint8 array (a catalog's codes)")
    n = len(codes)
    pos = _rows("positive", positives, n)
    neg = _rows("negative", negatives, n)
    if len(pos) == 0:
        raise InvalidArgumentError("at least one positive is required to train a model")
    both = np.intersect1d(pos, neg)
    if len(both):
        raise InvalidArgumentError(f"items labelled both positive and negative: {both[:10].tolist()}")
    check_integer("random_negatives", random_negatives, *RefineOptions.RANDOM_NEGATIVES)
    check_integer("negative_weight", negative_weight, *RefineOptions.NEGATIVE_WEIGHT)
    pool = random_pool(n)
    pool = pool[~np.isin(pool, pos) & ~np.isin(pool, neg)]
    rng = np.random.default_rng(seed)
    drawn = np.sort(rng.choice(pool, size=min(random_negatives, len(pool)), replace=False))
    rows = np.concatenate([pos, neg, drawn])
    labels = np.zeros(len(rows), dtype=bool)
    labels[: len(pos)] = True
    weights = np.ones(len(rows))
    weights[len(pos) : len(pos) + len(neg)] = float(negative_weight)
    labelled = np.zeros(len(rows), dtype=bool)
    labelled[: len(pos) + len(neg)] = True
    return TrainingSet(
        rows=rows, codes=np.ascontiguousarray(codes[rows]), labels=labels, weights=weights, labelled=labelled
    )


def _rows(kind: str, values: Iterable[int], n: int) -> NDArray[np.int64]:
    raw = np.asarray(list(values) if not isinstance(values, np.ndarray) else values)
    if raw.size == 0:
        return np.zeros(0, np.int64)
    if raw.dtype == np.bool_ or not np.issubdtype(raw.dtype, np.integer):
        raise InvalidArgumentError(f"{kind} rows must be integers, got {raw.dtype}")
    rows = np.unique(raw.astype(np.int64).ravel())
    bad = rows[(rows < 0) | (rows >= n)]
    if len(bad):
        raise InvalidArgumentError(f"{kind} rows out of range 0..{n - 1}: {bad[:10].tolist()}")
    return rows
