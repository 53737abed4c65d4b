"""The app driven by Pilot on the fixture catalog: searches, labelling by keys and clicks,
refining with the branch model, paging, rules, export, errors shown in the UI, Escape,
help and the catalog picker."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from textual.pilot import Pilot
from textual.widgets import OptionList

import clipbranches_tui
from clipbranches import CatalogNotFoundError, InvalidArgumentError, Results, SearchEngine, SessionFormatError
from clipbranches_tui.app import ClipBranchesApp
from clipbranches_tui.screens.export import ExportScreen
from clipbranches_tui.screens.help import HelpScreen
from clipbranches_tui.screens.picker import CatalogPickerScreen
from clipbranches_tui.screens.rules import RulesScreen
from clipbranches_tui.screens.search import SearchScreen
from clipbranches_tui.widgets.card import ResultCard
from clipbranches_tui.widgets.grid import ResultsGrid

pytestmark = pytest.mark.anyio
SIZE = (120, 40)
Settle = Callable[[Pilot[None]], Awaitable[SearchScreen]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def cards(screen: SearchScreen) -> list[ResultCard]:
    return list(screen.grid.query(ResultCard))


async def search(pilot: Pilot[None], settle: Settle, query: str) -> SearchScreen:
    screen = pilot.app.screen
    assert isinstance(screen, SearchScreen)
    screen.query_input.value = query
    screen.query_input.focus()
    await pilot.press("enter")
    return await settle(pilot)


async def test_start_screen_names_the_catalog_and_hints(engine: SearchEngine, settle: Settle) -> None:
    async with ClipBranchesApp(engine, renderer="halfcell").run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        assert str(screen.title_bar.content).startswith("fixture  ·  300 items  ·  indexed")
        assert "#ID" in screen.status.text
        assert cards(screen) == []
        assert screen.focused is screen.query_input


async def test_text_search_on_a_catalog_without_encoder_shows_the_error(engine: SearchEngine, settle: Settle) -> None:
    async with ClipBranchesApp(engine, renderer="halfcell").run_test(size=SIZE) as pilot:
        screen = await search(pilot, settle, "a red car")
        assert "cannot take text or image queries" in screen.status.text
        assert screen.status.message.has_class("-error")
        assert screen.state.results is None
        await search(pilot, settle, "#99999")
        assert "not in the catalog" in screen.status.text
        await search(pilot, settle, "#x")
        assert "integer item id" in screen.status.text


async def test_search_by_item_id_fills_the_grid(engine: SearchEngine, settle: Settle) -> None:
    async with ClipBranchesApp(engine, renderer="halfcell").run_test(size=SIZE) as pilot:
        screen = await search(pilot, settle, "#100")
        shown = cards(screen)
        assert len(shown) == 60
        assert shown[0].item_id == 100
        assert shown[0].has_class("-cursor")
        assert str(shown[0].caption.content).endswith("thing 100")
        assert "like #100: 60 nearest" in screen.state.summary()
        assert screen.focused is screen.grid


async def test_labelling_by_keys_with_undo_and_page_actions(engine: SearchEngine, settle: Settle) -> None:
    async with ClipBranchesApp(engine, renderer="halfcell").run_test(size=SIZE) as pilot:
        screen = await search(pilot, settle, "#100")
        ids = [c.item_id for c in cards(screen)]
        await pilot.press("p", "right", "n", "right", "space", "down")
        session = screen.state.session
        assert session.positives == sorted([ids[0], ids[2]])
        assert session.negatives == [ids[1]]
        first, second = cards(screen)[:2]
        assert first.has_class("-positive")
        assert first.border_subtitle == "+ POS"
        assert second.has_class("-negative")
        assert second.border_subtitle == "- NEG"
        cursor = 2 + screen.grid.columns
        assert cards(screen)[cursor].has_class("-cursor")
        await pilot.press("up", "x")
        assert screen.state.session.state(ids[2]) == "unlabeled"
        await pilot.press("u")
        assert screen.state.session.state(ids[2]) == "positive", "undo took back only the last change"
        await pilot.press("N")
        assert session.negatives == sorted(ids)
        await pilot.press("u")
        assert session.negatives == [ids[1]]
        await pilot.press("U", "X")
        assert session.labels == {}
        assert all(c.border_subtitle == "" for c in cards(screen))


async def test_labelling_by_clicks_and_more_like_this(engine: SearchEngine, settle: Settle) -> None:
    async with ClipBranchesApp(engine, renderer="halfcell").run_test(size=SIZE) as pilot:
        screen = await search(pilot, settle, "#100")
        second = cards(screen)[1].item_id  # cards are reused: keep the id, not the card
        await pilot.click("#card-1")
        assert screen.state.session.state(second) == "positive"
        assert screen.state.cursor == 1
        await pilot.click("#card-1")
        assert screen.state.session.state(second) == "negative"
        await pilot.click("#card-1 .more")
        await settle(pilot)
        assert cards(screen)[0].item_id == second, "a search like the clicked card"
        assert screen.query_input.value == f"#{second}", "the query box shows the query that ran"
        assert cards(screen)[0].has_class("-negative"), "labels carry over to the new results"
        reused = cards(screen)[0]
        assert reused.thumbnail is not None
        assert reused.thumbnail.name == f"{second}.jpg"
        assert reused.preview.image == reused.thumbnail, "a reused card draws its new item's preview"  # type: ignore[attr-defined]
        await pilot.press("right", "m")
        await settle(pilot)
        assert screen.query_input.value == f"#{cards(screen)[0].item_id}"


async def test_refine_with_the_branch_model(
    engine: SearchEngine, settle: Settle, clusters: np.ndarray, tmp_path: Path
) -> None:
    async with ClipBranchesApp(engine, renderer="halfcell").run_test(size=SIZE) as pilot:
        await search(pilot, settle, "#100")
        screen = await settle(pilot)
        target = clusters[0]
        rows = cards(screen)
        page_rows = [c.item_id - 100 for c in rows]
        good = [i for i, r in enumerate(page_rows) if clusters[r] == target][:8]
        bad = [i for i, r in enumerate(page_rows) if clusters[r] != target][:4]
        for index, label in [(i, "positive") for i in good] + [(i, "negative") for i in bad]:
            screen.state.cursor = index
            screen.action_label(label)
        screen.panel.model.value = "branch"
        screen.panel.random_negatives.value = "200"
        await pilot.press("f")
        await settle(pilot)
        results = screen.state.results
        assert results is not None
        assert results.params["model"] == "branch"
        assert results.params["random_negatives"] == 200
        assert results.total > 0
        assert (clusters[results.rows] == target).mean() > 0.5
        assert "refined branch on 8+/4-" in screen.state.summary()
        assert "train" in screen.state.summary()
        shown = {c.item_id: c for c in cards(screen)}
        kept = [rows[i].item_id for i in good if rows[i].item_id in shown]
        assert kept, "some positives are among the accepted items"
        assert all(shown[i].has_class("-positive") for i in kept), "labels carried over"
        assert "2 rounds" in str(screen.panel.counts.content)

        await pilot.press("r")
        assert isinstance(pilot.app.screen, RulesScreen)
        assert "SELECT id FROM codes WHERE" in str(pilot.app.screen.sql.content)
        await pilot.press("escape")

        await pilot.press("e")
        assert isinstance(pilot.app.screen, ExportScreen)
        pilot.app.screen.path_input.value = str(tmp_path / "out.csv")
        await pilot.press("enter")
        await pilot.pause()
        assert pl.read_csv(tmp_path / "out.csv")["id"].to_list() == results.ids.tolist()
        assert (tmp_path / "out.session.json").is_file()
        assert "exported" in screen.status.text


async def test_refine_errors_are_shown(engine: SearchEngine, settle: Settle) -> None:
    async with ClipBranchesApp(engine, renderer="halfcell").run_test(size=SIZE) as pilot:
        screen = await search(pilot, settle, "#100")
        await pilot.press("f")
        assert "no positives yet" in screen.status.text
        await pilot.press("p")
        screen.panel.negative_weight.value = "0"
        await pilot.press("f")
        assert "negative_weight must be in 1..100" in screen.status.text
        await pilot.press("r")
        assert "have no rules" in screen.status.text


async def test_paging_through_every_result(engine: SearchEngine, settle: Settle) -> None:
    async with ClipBranchesApp(engine, renderer="none").run_test(size=SIZE) as pilot:
        screen = await search(pilot, settle, "#100")
        screen.state.page_size = 25  # the fixture is small: smaller pages give several of them
        await pilot.press("P")
        screen.panel.model.value = "branch"
        await pilot.press("f")
        await settle(pilot)
        results = screen.state.results
        assert results is not None
        assert results.total > 25
        seen: list[int] = []
        first_card = cards(screen)[0]
        for page in range(screen.state.pages):
            assert f"page {page + 1}/{screen.state.pages}" in screen.state.summary()
            shown = cards(screen)
            assert shown[0] is first_card, "a page change reuses the cards"
            assert [c.index for c in shown] == list(range(len(shown)))
            assert len(shown) == len(screen.state.visible_ids()), "spare cards go on a short last page"
            assert all(str(c.caption.content).endswith(f" thing {c.item_id}") for c in shown), "captions follow"
            seen += [c.item_id for c in shown]
            await pilot.press("right_square_bracket")
        assert seen == results.ids.tolist()
        assert "no next page" in screen.status.text
        await pilot.press("left_square_bracket")
        assert screen.state.page == screen.state.pages - 2
        assert "no next page" not in screen.status.text, "a page change replaces the message"
        assert f"page {screen.state.pages - 1} of {screen.state.pages}" in screen.status.text


class GatedEngine(SearchEngine):
    """An engine whose refine waits until the test releases it."""

    def __init__(self, engine: SearchEngine) -> None:
        super().__init__(engine.catalog)
        self.gate = threading.Event()

    def refine(self, *args: Any, **kwargs: Any) -> Results:
        self.gate.wait(10)
        return super().refine(*args, **kwargs)


async def test_escape_stops_waiting_and_the_ui_stays_live(engine: SearchEngine, settle: Settle) -> None:
    gated = GatedEngine(engine)
    async with ClipBranchesApp(gated, renderer="none").run_test(size=SIZE) as pilot:
        screen = await search(pilot, settle, "#100")
        await pilot.press("p")
        await pilot.press("f")
        assert screen.state.pending
        assert screen.status.busy.display
        await pilot.press("right")
        assert screen.state.cursor == 1, "keys work while the backend runs"
        await pilot.press("escape")
        assert not screen.state.pending
        assert not screen.status.busy.display
        assert "stopped waiting" in screen.status.text
        gated.gate.set()
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        assert screen.state.results is not None
        assert screen.state.results.params["kind"] == "image", "the late answer was dropped"


async def test_help_lists_every_key(engine: SearchEngine, settle: Settle) -> None:
    async with ClipBranchesApp(engine, renderer="none").run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f1")
        assert isinstance(pilot.app.screen, HelpScreen)
        text = str(pilot.app.screen.text.content)
        for binding in [*ClipBranchesApp.BINDINGS, *SearchScreen.BINDINGS, *ResultsGrid.BINDINGS]:
            assert binding.description in text  # type: ignore[union-attr]
        assert "#ID" in text
        assert "click a card" in text
        await pilot.press("escape")
        assert isinstance(pilot.app.screen, SearchScreen)


async def test_catalog_picker(catalog_path: Path, tmp_path: Path, settle: Settle) -> None:
    shutil.copytree(catalog_path, tmp_path / "bad")
    (tmp_path / "bad" / "codes.u8").write_bytes(b"")  # its manifest names the format; opening it fails
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "manifest.json").write_text("{}")  # a web app's manifest: not a catalog, not listed
    (tmp_path / "good").symlink_to(catalog_path)
    catalogs = clipbranches_tui.state.find_catalogs(tmp_path)
    assert [c.name for c in catalogs] == ["bad", "good"]
    app = ClipBranchesApp(root=tmp_path, catalogs=catalogs, renderer="none")
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, CatalogPickerScreen)
        await pilot.press("enter")
        await pilot.pause()
        assert "cannot open bad" in str(app.screen.message.content)
        app.screen.query_one(OptionList).highlighted = 1
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, SearchScreen)
        assert app.screen.engine.catalog.path.name == "good"


def test_run_refuses_bad_arguments_before_taking_the_terminal(tmp_path: Path, catalog_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="renderer"):
        clipbranches_tui.run(tmp_path, renderer="ascii-art")
    with pytest.raises(CatalogNotFoundError):
        clipbranches_tui.run(tmp_path / "missing")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(SessionFormatError, match="not a readable JSON session"):
        clipbranches_tui.run(catalog_path, renderer="none", session=tmp_path / "broken.json")


async def test_picker_checks_the_session_against_the_picked_catalog(
    catalog_path: Path, tmp_path: Path, settle: Settle
) -> None:
    from clipbranches import Session, testing

    other = testing.make_catalog(tmp_path / "other", 50, k=2, seed=3)
    (tmp_path / "good").symlink_to(catalog_path)
    session = tmp_path / "s.json"
    Session.for_engine(SearchEngine(other)).save(session)
    catalogs = clipbranches_tui.state.find_catalogs(tmp_path)
    app = ClipBranchesApp(root=tmp_path, catalogs=catalogs, renderer="none", session=session)
    async with app.run_test(size=SIZE) as pilot:
        app.screen.query_one(OptionList).highlighted = [c.name for c in catalogs].index("good")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, CatalogPickerScreen), "the session's catalog is not this one"
        assert "another catalog" in str(app.screen.message.content)
        app.screen.query_one(OptionList).highlighted = [c.name for c in catalogs].index("other")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, SearchScreen)
        assert app.screen.session_path == session


class ImageRecorder(SearchEngine):
    """An engine that takes image files (the fixture has no encoder): it records the path and
    answers like item 100."""

    def __init__(self, engine: SearchEngine) -> None:
        super().__init__(engine.catalog)
        self.paths: list[Path] = []

    def search_image(self, image: Any, k: int = 60) -> Results:
        if isinstance(image, Path):
            self.paths.append(image)
            image = 100
        return super().search_image(image, k)


async def test_search_by_an_image_file(
    engine: SearchEngine, settle: Settle, catalog_path: Path, tmp_path: Path
) -> None:
    image = tmp_path / "query.jpg"
    shutil.copy(next((catalog_path / "thumbs").iterdir()), image)
    recorder = ImageRecorder(engine)
    async with ClipBranchesApp(recorder, renderer="none").run_test(size=SIZE) as pilot:
        screen = await search(pilot, settle, str(image))
        assert recorder.paths == [image], "a path to an image file is an image query"
        assert len(cards(screen)) == 60
        assert "60 nearest" in screen.state.summary()
        await search(pilot, settle, str(tmp_path / "missing.jpg"))
        assert "no image file at" in screen.status.text
        assert recorder.paths == [image]


async def test_session_is_resumed_and_saved_on_every_change(
    engine: SearchEngine, settle: Settle, tmp_path: Path
) -> None:
    from clipbranches import Session, SessionFormatError, testing

    path = tmp_path / "labels.session.json"
    async with ClipBranchesApp(engine, renderer="none", session=path).run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        assert "new session, saved to labels.session.json" in screen.status.text
        await search(pilot, settle, "#100")
        assert len(Session.load(path).rounds) == 1, "a round is saved when it lands"
        first = cards(screen)[0].item_id
        await pilot.press("p")
        assert Session.load(path).positives == [first], "a label is saved at once"
        await pilot.press("right", "n", "u")
        assert Session.load(path).negatives == [], "so is an undo"
    # A second run goes on from the saved labels and rounds.
    async with ClipBranchesApp(engine, renderer="none", session=path).run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        assert screen.state.session.positives == [first]
        assert len(screen.state.session.rounds) == 1
        assert "resumed labels.session.json: 1 positive, 0 negative, 1 round" in screen.status.text
        assert "1 positive" in str(screen.panel.counts.content)
        await search(pilot, settle, "#100")
        assert cards(screen)[0].has_class("-positive"), "the resumed label shows on its card"
    assert len(Session.load(path).rounds) == 2
    # A session of another catalog, or a folder that does not exist, is refused before the app runs.
    other = testing.make_catalog(tmp_path / "other", 50, k=2, seed=3)
    Session.for_engine(SearchEngine(other)).save(tmp_path / "other.json")
    with pytest.raises(SessionFormatError, match="another catalog"):
        ClipBranchesApp(engine, session=tmp_path / "other.json")
    with pytest.raises(InvalidArgumentError, match="is not a directory"):
        ClipBranchesApp(engine, session=tmp_path / "nowhere" / "s.json")


async def test_full_size_view_of_a_card(engine: SearchEngine, settle: Settle, catalog_path: Path) -> None:
    from clipbranches_tui.screens.item import ItemScreen

    async with ClipBranchesApp(engine, renderer="halfcell").run_test(size=SIZE) as pilot:
        screen = await settle(pilot)
        screen.action_view()
        assert "search first" in screen.status.text
        await search(pilot, settle, "#100")
        second = cards(screen)[1].item_id
        await pilot.press("right", "p", "v")
        view = pilot.app.screen
        assert isinstance(view, ItemScreen)
        assert view.item_id == second
        assert view.image_path == catalog_path / "thumbs" / f"{second}.jpg", "no local original: the thumbnail"
        assert view.image.region.width > 2 * cards(screen)[1].preview.region.width, "larger than on its card"
        text = str(view.fields.content)
        assert f"id: {second}\n" in text
        assert f" thing {second}\n" in text
        assert "rank: 2\n" in text
        assert text.endswith("your label: positive")
        await pilot.press("escape")
        assert pilot.app.screen is screen
        await pilot.press("left", "enter")
        assert isinstance(pilot.app.screen, ItemScreen)
        assert pilot.app.screen.item_id == cards(screen)[0].item_id
        await pilot.press("escape")
        assert pilot.app.screen is screen
