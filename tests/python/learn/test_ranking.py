"""Ranking: the fast paths of ``Ranked.ranked`` and ``Ranked.top`` against the full sort."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 200), st.booleans(), st.data())
def test_ranking_fast_path_matches_the_three_key_sort(n: int, linear: bool, data: st.DataObject) -> None:
    from clipbranches.learn.ranking import Ranked

    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    rows = np.sort(rng.choice(10 * n + 1, size=n, replace=False)) if linear else rng.permutation(n)
    scores = rng.integers(0, data.draw(st.integers(1, 4)), n).astype(np.float64)  # many ties, or all
    counts = np.zeros(n, np.uint16) if linear else rng.integers(0, 3, n).astype(np.uint16)
    ranked = Ranked(rows.astype(np.int64), scores, counts).ranked()
    order = np.lexsort((rows, -counts.astype(np.int64), -scores))
    np.testing.assert_array_equal(ranked.rows, rows[order])
    np.testing.assert_array_equal(ranked.scores, scores[order])


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 200), st.integers(0, 220), st.data())
def test_top_k_is_the_head_of_the_full_ranking(n: int, k: int, data: st.DataObject) -> None:
    from clipbranches.learn.ranking import Ranked

    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    rows = rng.permutation(n).astype(np.int64)
    levels = data.draw(st.sampled_from([1, 3, 1000]))  # all tied, many ties, few ties
    scores = rng.integers(0, levels, n).astype(np.float64)
    counts = rng.integers(0, data.draw(st.sampled_from([1, 3])), n).astype(np.uint16)  # all tied, or not
    hits = Ranked(rows, scores, counts)
    full, head = hits.ranked(), hits.top(k)
    np.testing.assert_array_equal(head.rows, full.rows[:k])
    np.testing.assert_array_equal(head.scores, full.scores[:k])
    np.testing.assert_array_equal(head.box_counts, full.box_counts[:k])
