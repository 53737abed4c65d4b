"""state.py without Textual: query parsing, option ranges, renderers, catalogs of a folder,
and the search state's paging, cursor, labels and request tokens."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from clipbranches import InvalidArgumentError, RefineOptions, SearchEngine, Session
from clipbranches.learn import DEFAULT_MODEL, MODELS
from clipbranches_tui.state import (
    PAGE_SIZE,
    ImageQuery,
    ItemQuery,
    SearchState,
    find_catalogs,
    model_names,
    parse_query,
    renderer_name,
)


def test_package_and_state_do_not_import_textual() -> None:
    code = (
        "import sys, clipbranches_tui, clipbranches_tui.state; "
        "assert not [m for m in sys.modules if m.startswith('textual')]"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_importing_clipbranches_does_not_import_the_tui() -> None:
    code = "import sys, clipbranches; assert not {'textual', 'clipbranches_tui'} & set(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_parse_query() -> None:
    assert parse_query("  a red car ") == "a red car"
    assert parse_query("#123") == ItemQuery(123)
    assert parse_query("# 7") == ItemQuery(7)
    with pytest.raises(InvalidArgumentError, match="#ID"):
        parse_query("   ")
    with pytest.raises(InvalidArgumentError, match="integer item id"):
        parse_query("#abc")


def test_parse_query_image_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = tmp_path / "cat.jpg"
    image.write_bytes(b"not really a jpeg: the engine reads it, not the parser")
    assert parse_query(f"  {image} ") == ImageQuery(image)
    monkeypatch.chdir(tmp_path)
    assert parse_query("./cat.jpg") == ImageQuery(Path("cat.jpg"))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert parse_query("~/cat.jpg") == ImageQuery(image)
    with pytest.raises(InvalidArgumentError, match="no image file at"):
        parse_query(str(tmp_path / "missing.jpg"))
    with pytest.raises(InvalidArgumentError, match="no image file at"):
        parse_query(str(tmp_path))  # a folder is no image
    assert parse_query("cat.jpg") == "cat.jpg", "without / ~ ./ it is text"


def test_renderer_names_and_aliases() -> None:
    assert renderer_name("halfcell") == "halfcell"
    assert renderer_name("tgp") == "kitty"
    assert renderer_name("text") == "none"
    with pytest.raises(InvalidArgumentError, match="renderer is one of"):
        renderer_name("ascii-art")


def test_models_offer_the_original_four_first_then_every_other() -> None:
    names = model_names()
    assert names[:4] == ["branch", "ensemble", "tree", "forest"]
    assert sorted(names) == sorted(MODELS)


def test_refine_options_validate_ranges() -> None:
    assert RefineOptions() == RefineOptions(DEFAULT_MODEL, 500, 1)
    assert RefineOptions.parse("branch", "0", "100") == RefineOptions("branch", 0, 100)
    assert RefineOptions.parse("forest", 10_000, 1).random_negatives == 10_000
    for bad, match in [
        (("nope", "500", "1"), "unknown model 'nope'; choose one of"),
        (("branch", "10001", "1"), "random_negatives must be in 0..10,000"),
        (("branch", "-1", "1"), "random_negatives"),
        (("branch", "500", "0"), "negative_weight must be in 1..100"),
        (("branch", "500", "101"), "negative_weight"),
        (("branch", "", "1"), "must be a whole number"),
    ]:
        with pytest.raises(InvalidArgumentError, match=match):
            RefineOptions.parse(*bad)


def test_find_catalogs(catalog_path: Path, tmp_path: Path) -> None:
    assert find_catalogs(catalog_path) == [catalog_path]
    (tmp_path / "b").symlink_to(catalog_path)
    (tmp_path / "a").symlink_to(catalog_path)
    (tmp_path / "not-a-catalog").mkdir()
    assert find_catalogs(tmp_path) == [tmp_path / "a", tmp_path / "b"]
    assert find_catalogs(tmp_path / "not-a-catalog") == []
    assert find_catalogs(tmp_path / "missing") == [tmp_path / "missing"]


def test_paging_cursor_and_labels(engine: SearchEngine) -> None:
    state = SearchState(Session.for_engine(engine), page_size=25)
    assert state.visible() is None
    assert state.current_id() is None
    assert state.summary() == "no results yet"
    results = engine.search_image(100, k=60)
    state.show(results)
    assert len(state.session.rounds) == 1
    assert state.pages == 3
    assert state.visible_ids() == results.ids[:25].tolist()
    assert state.move(1, 2, columns=4) == 9
    assert state.move(-50, 0, columns=4) == 0
    assert state.move(0, 50, columns=4) == 24
    assert state.turn(1)
    assert (state.page, state.cursor) == (1, 0)
    assert state.turn(5)
    assert state.visible_ids() == results.ids[50:].tolist()
    assert "showing 51-60" in state.summary()
    assert "page 3/3" in state.summary()
    assert "60 nearest" in state.summary(), "a nearest-neighbour search accepts nothing"
    assert not state.turn(1)
    first = state.current_id()
    assert first == results.ids[50]
    assert [state.cycle(first) for _ in range(3)] == ["positive", "negative", "unlabeled"]
    state.label(state.visible_ids(), "negative")
    assert state.session.negatives == sorted(results.ids[50:].tolist())
    with pytest.raises(InvalidArgumentError, match="a label is"):
        state.label([first], "maybe")
    with pytest.raises(InvalidArgumentError, match="no positives yet"):
        state.check_can_refine()
    state.label([first], "positive")
    state.show(engine.refine(state.session.positives, state.session.negatives))
    assert " accepted · " in state.summary(), "a refine round's model accepts items"
    assert PAGE_SIZE == 60


def test_tokens_drop_stale_answers(engine: SearchEngine) -> None:
    state = SearchState(Session.for_engine(engine))
    assert not state.cancel()
    first = state.begin()
    second = state.begin()
    assert not state.finish(first), "an answer to a superseded request is dropped"
    assert state.finish(second)
    third = state.begin()
    assert state.cancel()
    assert not state.finish(third), "an answer after Escape is dropped"
