"""Sessions: labels with undo/redo, rounds with everything to redo them, the JSON file (atomic,
versioned, tied to its catalog), and every malformed input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from clipbranches import InvalidArgumentError, OutputError, SearchEngine, Session, SessionFormatError, testing


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> SearchEngine:
    catalog = testing.make_catalog(tmp_path_factory.mktemp("session") / "cat", 3000, k=10)
    return SearchEngine(catalog)


def test_a_new_session_belongs_to_its_catalog(engine: SearchEngine) -> None:
    session = Session.for_engine(engine)
    assert session.catalog == str(engine.catalog.path)
    assert session.catalog_checksum == engine.catalog.codes_checksum
    session.check_catalog(engine)
    assert (session.labels, session.rounds) == ({}, [])
    assert not session.undo()
    assert not session.redo()


def test_labels_and_their_history() -> None:
    session = Session()
    assert not session.can_undo
    session.label([3, 1, 2], "positive")
    assert session.can_undo
    assert not session.can_redo
    session.label([np.int64(9)], "negative")
    assert (session.positives, session.negatives) == ([1, 2, 3], [9])
    session.label([1, 2, 3], "positive")  # no change: no undo step
    session.label([2], "negative")
    assert session.state(2) == "negative"
    assert session.undo()
    assert session.state(2) == "positive"
    assert session.undo()
    assert session.undo()
    assert session.labels == {}
    assert not session.can_undo
    assert session.can_redo
    assert not session.undo()
    assert session.redo()
    assert session.positives == [1, 2, 3]
    session.label([4], "unlabeled")  # already unlabeled: nothing to undo, the redo history stays
    assert session.redo()
    session.label([1], "unlabeled")
    assert not session.redo(), "a change clears the redo history"
    assert session.state(1) == "unlabeled"


@pytest.mark.parametrize("bad", [["a"], [1.5], [True], [None]])
def test_label_rejects_what_is_not_an_item_id(bad: list[object]) -> None:
    session = Session()
    with pytest.raises(InvalidArgumentError, match="item ids are integers"):
        session.label(bad, "positive")  # type: ignore[arg-type]
    assert session.labels == {}, "nothing half-applied"
    with pytest.raises(InvalidArgumentError, match="a label is one of"):
        session.label([1], "maybe")  # type: ignore[arg-type]


def test_rounds_record_what_redoes_them(engine: SearchEngine, tmp_path: Path) -> None:
    session = Session.for_engine(engine)
    labels = engine.catalog.items["label"].to_numpy()
    members = np.flatnonzero(labels == labels[0])[:8]
    session.label(engine.catalog.item_ids[members].tolist(), "positive")
    session.label(engine.catalog.item_ids[np.flatnonzero(labels != labels[0])[:4]].tolist(), "negative")
    first = engine.search_image(int(engine.catalog.item_ids[members[0]]), k=20)
    session.record(first)
    refined = session.refine(engine, model="linear", seed=11)
    assert [r["params"]["kind"] for r in session.rounds] == ["image", "refine"]
    last = session.rounds[-1]
    assert last["params"]["seed"] == 11
    assert last["total"] == refined.total
    assert last["top"] == refined.page(0, 100).ids.tolist()
    assert set(last["timings_ms"]) == set(refined.timings)

    back = Session.load(session.save(tmp_path / "s.json"))
    assert (back.labels, back.rounds) == (session.labels, session.rounds)
    np.testing.assert_array_equal(engine.redo(back.rounds[-1]["params"]).ids, refined.ids)
    np.testing.assert_array_equal(engine.redo(back.rounds[0]["params"]).ids, first.ids)


def test_undo_and_redo_survive_a_save(tmp_path: Path) -> None:
    session = Session("somewhere", "f" * 64)
    session.label([1, 2], "positive")
    session.label([3], "negative")
    session.undo()
    back = Session.load(session.save(tmp_path / "s.json"))
    assert back.redo()
    assert back.negatives == [3]
    assert back.undo()
    assert back.undo()
    assert back.labels == {}


def test_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "s.json"
    Session("a", "0" * 64, {1: "positive"}).save(target)
    before = target.read_text()

    def crash(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OutputError, match="cannot write the session file .*disk full; nothing was changed"):
        Session("a", "0" * 64, {2: "negative"}).save(target)
    assert target.read_text() == before, "a failed save leaves the previous file intact"
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"], "no temporary file left"


def test_a_session_of_another_catalog_is_refused(engine: SearchEngine) -> None:
    with pytest.raises(SessionFormatError, match="made on another catalog"):
        Session("elsewhere", "0" * 64).check_catalog(engine)
    Session("elsewhere", "").check_catalog(engine)  # no checksum recorded (a new session): accepted


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "no session file here"),
        ("{not json", "not a readable JSON"),
        ("[1, 2]", "not a clipbranches session"),
        ('{"format": "something-else"}', "not a clipbranches session"),
        ('{"format": "clipbranches-session", "version": 2}', "version 2 is not supported"),
        ('{"format": "clipbranches-session", "version": 1, "labels": {"x": "positive"}}', "malformed"),
        (
            '{"format": "clipbranches-session", "version": 1, "catalog": "c", "catalog_checksum": "", '
            '"labels": {"1": "maybe"}, "rounds": [], "undo": [], "redo": []}',
            "malformed",
        ),
        (
            '{"format": "clipbranches-session", "version": 1, "catalog": "c", "catalog_checksum": "", '
            '"labels": {}, "rounds": [], "undo": [{"before": {}}], "redo": []}',
            "malformed",
        ),
    ],
)
def test_bad_session_files(tmp_path: Path, content: str | None, match: str) -> None:
    path = tmp_path / "s.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SessionFormatError, match=match):
        Session.load(path)


def test_the_file_is_plain_versioned_json(tmp_path: Path) -> None:
    session = Session("c", "ab" * 32)
    session.label([5], "positive")
    data = json.loads(session.save(tmp_path / "s.json").read_text())
    assert data["format"] == "clipbranches-session"
    assert data["version"] == 1
    assert data["labels"] == {"5": "positive"}
    assert data["undo"] == [{"before": {"5": "unlabeled"}, "after": {"5": "positive"}}]
