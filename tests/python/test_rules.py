"""Rules: a box model as readable conditions and as SQL, checked by running the SQL (sqlite)
against the brute-force acceptance of random boxes and votes."""

from __future__ import annotations

import sqlite3

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from clipbranches import Rules
from clipbranches.store import Box

DIM = 6


@st.composite
def boxes(draw: st.DrawFn, members: int) -> list[Box]:
    out = []
    for _ in range(draw(st.integers(0, 6))):
        dims = draw(st.lists(st.integers(0, DIM - 1), min_size=1, max_size=3, unique=True))
        lo, hi = [], []
        for _ in dims:
            a, b = sorted(draw(st.lists(st.integers(0, 255), min_size=2, max_size=2)))
            lo.append(a)
            hi.append(b)
        out.append(Box(tuple(dims), tuple(lo), tuple(hi), draw(st.integers(0, members - 1))))
    return out


def accepted(rules: Rules, codes: np.ndarray) -> np.ndarray:
    """The brute force: per member, does any of its boxes contain the row; then the vote."""
    votes = np.zeros((len(codes), max(rules.members, 1)), bool)
    for box in rules.boxes:
        inside = np.ones(len(codes), bool)
        for d, lo, hi in zip(box.dims, box.lo, box.hi, strict=True):
            inside &= (codes[:, d] >= lo) & (codes[:, d] <= hi)
        votes[:, box.group] |= inside
    if rules.members <= 1:
        return votes.any(axis=1)
    return votes.sum(axis=1) > rules.threshold * rules.members


def run_sql(rules: Rules, codes: np.ndarray) -> list[int]:
    db = sqlite3.connect(":memory:")
    db.execute(f"CREATE TABLE codes (id INTEGER, {', '.join(f'c{d} INTEGER' for d in range(DIM))})")
    rows = np.column_stack([np.arange(len(codes)), codes.astype(np.int64)]).tolist()
    db.executemany(f"INSERT INTO codes VALUES ({', '.join('?' * (DIM + 1))})", rows)
    return sorted(r[0] for r in db.execute(rules.sql()))


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 5), st.data())
def test_the_sql_accepts_exactly_what_the_boxes_and_votes_accept(members: int, data: st.DataObject) -> None:
    codes = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1))).integers(0, 256, (300, DIM), np.uint8)
    codes[:5] = [0, 255, 0, 255, 0, 255]  # the extremes, where open sides matter
    threshold = data.draw(st.sampled_from([0.0, 0.2, 0.5, 0.8])) if members > 1 else 0.0
    rules = Rules(data.draw(boxes(members)), members, threshold)
    assert run_sql(rules, codes) == np.flatnonzero(accepted(rules, codes)).tolist()


@settings(max_examples=50, deadline=None)
@given(st.data())
def test_labels_override_the_boxes(data: st.DataObject) -> None:
    codes = np.random.default_rng(0).integers(0, 256, (200, DIM), np.uint8)
    positives = data.draw(st.lists(st.integers(0, 199), max_size=5, unique=True))
    negatives = data.draw(st.lists(st.integers(0, 199).filter(lambda i: i not in positives), max_size=5, unique=True))
    rules = Rules(data.draw(boxes(1)), positives=positives, negatives=negatives)
    expected = accepted(rules, codes)
    expected[negatives] = False
    expected[positives] = True
    assert run_sql(rules, codes) == np.flatnonzero(expected).tolist()


def test_conditions_read_as_a_person_writes_them() -> None:
    rules = Rules([Box((3, 7, 1, 2), (12, 40, 0, 9), (200, 255, 90, 9)), Box((4,), (0,), (255,))])
    assert rules.conditions() == ["c3 BETWEEN 12 AND 200 AND c7 >= 40 AND c1 <= 90 AND c2 = 9", "TRUE"]
    assert rules.votes_needed == 1
    assert str(rules).splitlines()[0] == "accepted when any box contains it:"
    assert rules.sql(table="t", id_column="key") == (
        "SELECT key FROM t WHERE (c3 BETWEEN 12 AND 200 AND c7 >= 40 AND c1 <= 90 AND c2 = 9) OR (TRUE)"
    )


def test_an_ensemble_reads_as_votes() -> None:
    rules = Rules([Box((0,), (10,), (20,), 0), Box((1,), (5,), (255,), 1), Box((2,), (0,), (7,), 1)], 3, 0.5)
    assert rules.votes_needed == 2
    assert rules.where() == (
        "((CASE WHEN (c0 BETWEEN 10 AND 20) THEN 1 ELSE 0 END) + "
        "(CASE WHEN (c1 >= 5) OR (c2 <= 7) THEN 1 ELSE 0 END)) >= 2"
    )
    assert "member 1: c2 <= 7" in str(rules)
    assert "at least 2 of 3 members" in str(rules)


def test_no_boxes_accepts_only_the_labelled_positives() -> None:
    rules = Rules([], positives=[4], negatives=[5])
    assert rules.where() == "FALSE"
    assert rules.sql() == "SELECT id FROM codes WHERE ((FALSE) AND id NOT IN (5)) OR id IN (4)"
    assert "plus the 1 labelled positives, minus the 1 labelled negatives" in str(rules)
