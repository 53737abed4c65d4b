"""The search commands on a synthetic catalog: index, info, verify, search, refine with a
session, export of results and labels, and the messages and exit codes of bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from clipbranches import Catalog, testing
from clipbranches.cli import main
from clipbranches.session import Session


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    testing.make_catalog(tmp_path / "cat", 5000, k=20, seed=1)
    return tmp_path / "cat"


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_index_info_verify(catalog: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "info", catalog, "--json")
    assert code == 0
    assert json.loads(out)["index"].startswith("none")
    code, out, _ = run(capsys, "index", catalog, "--block-items", "512", "--json")
    assert code == 0
    assert json.loads(out)["items"] == 5000
    code, out, _ = run(capsys, "verify", catalog, "--json")
    assert code == 0
    assert json.loads(out) == {"catalog": str(catalog), "items": 5000, "data": "ok", "index": "ok"}
    code, out, _ = run(capsys, "info", catalog)
    assert "items: 5000" in out
    # A flipped byte in the codes fails verification with exit 2 and names the file.
    codes = catalog / "codes.u8"
    data = bytearray(codes.read_bytes())
    data[-1] ^= 0xFF
    codes.write_bytes(bytes(data))
    code, _, err = run(capsys, "verify", catalog)
    assert code == 2
    assert "codes.u8" in err


def test_search_refine_export_with_a_session(catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    session = tmp_path / "s.json"
    labels = Catalog.open(catalog).items["label"].to_numpy()
    code, out, err = run(capsys, "search", catalog, "--item", 0, "-k", 10, "--session", session, "--json")
    assert code == 0, err
    found = json.loads(out)
    assert found["items"][0]["id"] == 0
    same = np.flatnonzero(labels == labels[0])[1:6].tolist()
    other = np.flatnonzero(labels != labels[0])[:3].tolist()
    code, out, err = run(
        capsys, "refine", "--session", session, "--positive", *same, "--negative", *other, "--model", "ensemble",
        "--seed", 4, "--show", 5, "--rules",
    )  # fmt: skip
    assert code == 0, err
    assert "no index" in err, "offers to build the missing index"
    assert "--build-index" in err
    assert "accepted when boxes of at least 13 of 25 members" in out
    assert "SELECT id FROM codes WHERE" in out
    saved = Session.load(session)
    assert saved.positives == sorted(same)
    assert [r["params"]["kind"] for r in saved.rounds] == ["image", "refine"]
    total = saved.rounds[-1]["total"]

    results_csv = tmp_path / "results.csv"
    code, out, err = run(capsys, "export", results_csv, "--session", session)
    assert code == 0, err
    table = pl.read_csv(results_csv)
    assert len(table) == total
    assert table["id"].to_list()[:100] == saved.rounds[-1]["top"]
    code, out, err = run(capsys, "export", tmp_path / "labels.parquet", "--session", session, "--labels")
    assert code == 0, err
    exported = pl.read_parquet(tmp_path / "labels.parquet")
    assert sorted(exported.filter(pl.col("label") == "positive")["id"].to_list()) == sorted(same)


def test_bad_input_is_named_and_exits_2(catalog: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        (["refine", "--catalog", catalog, "--positive", 99999], "ids not in the catalog: [99999]"),
        (["refine", "--catalog", catalog, "--positive", 1, "--model", "svm"], "unknown model 'svm'"),
        (["refine", "--catalog", catalog, "--negative", 1], "at least one positive"),
        (["refine", "--positive", 1], "name the catalog"),
        (["search", catalog, "a red dress"], "cannot take text or image queries"),
        (["search", catalog], "give exactly one query"),
        (["search", tmp_path / "nope", "--item", 1], "nope"),
        (["export", tmp_path / "x.csv", "--session", tmp_path / "missing.json"], "no session file"),
        (["refine", "--catalog", catalog, "--positive", 1, "--model", "linear", "--rules"], "has no rules"),
    ]
    for args, message in cases:
        code, _, err = run(capsys, *args)
        assert code == 2, (args, err)
        assert message in err, (args, err)


def test_tui_not_installed_says_how_to_install(
    catalog: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.metadata

    # Registered but broken: its import fails.
    monkeypatch.setitem(sys.modules, "clipbranches_tui", None)
    code, _, err = run(capsys, "tui", catalog)
    assert code == 2
    assert "terminal UI is installed but cannot be imported" in err
    # Not installed at all: no entry point in the clipbranches.ui group.
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **_: ())
    code, _, err = run(capsys, "tui", catalog)
    assert code == 2
    assert "terminal UI is not installed: pip install ./tui" in err


def test_search_table_has_a_header_distances_and_short_uris(catalog: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from clipbranches.cli.search import URI_WIDTH, _short_uri

    code, out, err = run(capsys, "search", catalog, "--item", 3, "-k", 10, "--show", 4)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[1].split()[:3] == ["rank", "id", "distance"]
    rows = [line.split() for line in lines[2:]]
    assert len(rows) == 4
    distances = [float(r[2]) for r in rows]
    assert distances[0] == 0.0  # the item itself
    assert distances == sorted(distances)
    assert all(d >= 0 for d in distances)
    # --json keeps the raw score (the negated squared distance) and adds the distance.
    code, out, _ = run(capsys, "search", catalog, "--item", 3, "-k", 10, "--show", 4, "--json")
    items = json.loads(out)["items"]
    assert [i["distance"] for i in items] == distances
    assert all(i["score"] == -i["distance"] for i in items)
    # A refine round shows the model's score under "score".
    code, out, _ = run(capsys, "refine", "--catalog", catalog, "--positive", 3, "--show", 3)
    assert code == 0
    assert out.splitlines()[1].split()[:3] == ["rank", "id", "score"]
    # Long uris lose their start, never the file name.
    long = "/data/" + "/".join(f"folder{i:02d}" for i in range(12)) + "/a_rather_long_file_name.jpg"
    short = _short_uri(long)
    assert short.startswith("…/")
    assert short.endswith("/folder11/a_rather_long_file_name.jpg")
    assert len(short) <= URI_WIDTH
    assert _short_uri("/a/b.jpg") == "/a/b.jpg"
    assert _short_uri("x" * 100) == "…" + "x" * (URI_WIDTH - 1)


def test_tui_passes_the_session_file(
    catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.metadata

    calls: list[tuple[Path, dict[str, object]]] = []

    class Entry:
        def load(self) -> object:
            return lambda path, **kwargs: calls.append((path, kwargs))

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **_: (Entry(),))
    code, _, err = run(capsys, "tui", catalog, "--session", tmp_path / "s.json", "--renderer", "none")
    assert code == 0, err
    assert calls == [(catalog, {"renderer": "none", "session": tmp_path / "s.json"})]
    code, _, err = run(capsys, "tui", catalog)
    assert code == 0, err
    assert calls[-1] == (catalog, {"renderer": "auto", "session": None})
