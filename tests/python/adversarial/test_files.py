"""Exports and sessions under adversity (issue 15): every write goes through the one atomic
writer (a full disk, a directory or a NUL in the path is a typed error and leaves no temporary
file); a session file that is a FIFO never hangs a read; tampered rounds are refused at load.

Every case is bounded in time: a call that could block on a FIFO runs in a helper thread that
is unblocked (and the test failed) after a deadline; subprocesses are waited on with a timeout
and killed by their PID.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from _faults import DEADLINE, PROCESS_DEADLINE, bounded, full_disk_writer, leftovers  # noqa: F401  (the sibling helper module)

from clipbranches import (
    InvalidArgumentError,
    OutputError,
    SearchEngine,
    Session,
    SessionFormatError,
    testing,
)
from clipbranches.cli import main


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> SearchEngine:
    return SearchEngine(testing.make_catalog(tmp_path_factory.mktemp("files") / "cat", 2000, k=10))


# -- 1. every file we write goes through the one atomic writer ----------------------------


def test_export_onto_a_full_disk(engine: SearchEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = engine.search_image(0, k=5)
    target = results.export(tmp_path / "out.parquet")
    before = target.read_bytes()
    monkeypatch.setattr(pl.DataFrame, "write_parquet", full_disk_writer(pl.DataFrame.write_parquet))
    with pytest.raises(OutputError, match=r"cannot write the export .*out\.parquet: the disk is full; nothing was"):
        results.export(target)
    assert target.read_bytes() == before, "the previous export is intact"
    assert leftovers(tmp_path) == []


def test_export_csv_onto_a_full_disk(engine: SearchEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pl.DataFrame, "write_csv", full_disk_writer(pl.DataFrame.write_csv))
    with pytest.raises(OutputError, match="the disk is full"):
        engine.search_image(0, k=5).export(tmp_path / "out.csv")
    assert list(tmp_path.iterdir()) == []


def test_export_onto_a_directory(engine: SearchEngine, tmp_path: Path) -> None:
    (tmp_path / "out.csv").mkdir()
    with pytest.raises(InvalidArgumentError, match=r"out\.csv: it is a directory"):
        engine.search_image(0, k=5).export(tmp_path / "out.csv")
    assert leftovers(tmp_path) == []


def test_export_to_a_path_with_nul(engine: SearchEngine, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="contains a NUL byte"):
        engine.search_image(0, k=5).export(str(tmp_path / "o\x00ut.csv"))
    assert list(tmp_path.iterdir()) == []


def test_session_save_onto_a_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = Session("a", "0" * 64, {1: "positive"}).save(tmp_path / "s.json")
    before = target.read_text()

    def no_space(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OutputError, match=r"cannot write the session file .*s\.json: the disk is full"):
        Session("a", "0" * 64, {2: "negative"}).save(target)
    assert target.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]


def test_session_save_onto_a_directory(tmp_path: Path) -> None:
    (tmp_path / "s.json").mkdir()
    with pytest.raises(InvalidArgumentError, match=r"s\.json: it is a directory"):
        Session().save(tmp_path / "s.json")


def test_session_save_to_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="is not a directory"):
        Session().save(tmp_path / "nowhere" / "s.json")


def test_cli_export_labels_onto_a_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = testing.make_catalog(tmp_path / "cat", 300, k=10)
    session = tmp_path / "s.json"
    Session(str(catalog.path), catalog.codes_checksum, {0: "positive", 5: "negative"}).save(session)
    out = tmp_path / "labels.parquet"
    assert main(["export", str(out), "--session", str(session), "--labels"]) == 0
    before = out.read_bytes()
    monkeypatch.setattr(pl.DataFrame, "write_parquet", full_disk_writer(pl.DataFrame.write_parquet))
    capsys.readouterr()
    assert main(["export", str(out), "--session", str(session), "--labels"]) != 0
    assert "the disk is full" in capsys.readouterr().err
    assert out.read_bytes() == before, "the previous labels file is intact (no write in place)"
    assert leftovers(tmp_path) == []


def test_cli_export_labels_onto_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    catalog = testing.make_catalog(tmp_path / "cat", 300, k=10)
    session = tmp_path / "s.json"
    Session(str(catalog.path), catalog.codes_checksum, {0: "positive"}).save(session)
    (tmp_path / "labels.csv").mkdir()
    assert main(["export", str(tmp_path / "labels.csv"), "--session", str(session), "--labels"]) != 0
    assert "it is a directory" in capsys.readouterr().err


# -- 2. session files ----------------------------------------------------------------------


def test_session_load_from_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "s.json"
    os.mkfifo(fifo)
    with pytest.raises(SessionFormatError, match=r"s\.json: a FIFO, not a regular session file"):
        bounded(lambda: Session.load(fifo), [fifo])


def _saved_session(tmp_path: Path, engine: SearchEngine) -> dict[str, Any]:
    session = Session.for_engine(engine)
    session.label([1, 2], "positive")
    session.record(engine.search_image(0, k=5))
    session.refine(engine, seed=1)
    return session.to_json()


TAMPERED_ROUNDS: dict[str, Callable[[list[Any]], Any]] = {
    "rounds_not_a_list": lambda rounds: {"0": rounds[0]},
    "round_not_an_object": lambda rounds: [*rounds, 7],
    "params_not_an_object": lambda rounds: [{**rounds[0], "params": ["kind", "image"]}],
    "params_without_kind": lambda rounds: [{**rounds[0], "params": {"item": 0}}],
    "params_of_an_unknown_kind": lambda rounds: [{**rounds[0], "params": {"kind": "telepathy"}}],
    "image_round_without_its_query": lambda rounds: [{**rounds[0], "params": {"kind": "image", "k": 5}}],
    "refine_round_without_positives": lambda rounds: [{**rounds[1], "params": {"kind": "refine"}}],
    "refine_positives_not_ids": lambda rounds: [{**rounds[1], "params": {**rounds[1]["params"], "positives": "1,2"}}],
    "total_not_an_int": lambda rounds: [{**rounds[0], "total": "many"}],
    "total_a_bool": lambda rounds: [{**rounds[0], "total": True}],
    "top_not_a_list_of_ints": lambda rounds: [{**rounds[0], "top": [1, "two"]}],
    "no_top": lambda rounds: [{k: v for k, v in rounds[0].items() if k != "top"}],
}


@pytest.mark.parametrize("case", sorted(TAMPERED_ROUNDS))
def test_session_with_tampered_rounds(case: str, tmp_path: Path, engine: SearchEngine) -> None:
    data = _saved_session(tmp_path, engine)
    data["rounds"] = TAMPERED_ROUNDS[case](data["rounds"])
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SessionFormatError, match="malformed session"):
        Session.load(path)


def test_session_with_intact_rounds_loads_and_redoes(tmp_path: Path, engine: SearchEngine) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps(_saved_session(tmp_path, engine)))
    loaded = Session.load(path)
    assert [r["params"]["kind"] for r in loaded.rounds] == ["image", "refine"]
    assert engine.redo(loaded.rounds[-1]["params"]).total >= 0


# -- ingest fixtures -----------------------------------------------------------------------

torch = pytest.importorskip("torch")
