"""The search screen: query box, catalog name and size, result grid, refine panel, status.

Backend calls (searches, refining) run in a worker thread; the native core releases the GIL,
so the screen stays live. Each call carries a token from :class:`SearchState`: Escape stops
waiting by forgetting the token, and an answer that arrives later is dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Static

from clipbranches import DEFAULT_K, ClipBranchesError, RefineOptions, Results, SearchEngine, Session
from clipbranches_tui.messages import CardClicked, MoreLikeThisClicked, SearchFailed, SearchFinished
from clipbranches_tui.screens.export import ExportScreen
from clipbranches_tui.screens.item import ItemScreen
from clipbranches_tui.screens.rules import RulesScreen
from clipbranches_tui.state import ImageQuery, ItemQuery, SearchState, describe, parse_query
from clipbranches_tui.widgets.grid import ResultsGrid
from clipbranches_tui.widgets.refine import RefinePanel
from clipbranches_tui.widgets.status import StatusBar

__all__ = ["SearchScreen"]


class SearchScreen(Screen[None]):
    """Search, label, refine and page through the results of one catalog."""

    BINDINGS = [
        Binding("slash", "focus_query", "Query"),
        Binding("f", "refine", "Refine"),
        Binding("right_square_bracket,pagedown", "page(1)", "Next page"),
        Binding("left_square_bracket,pageup", "page(-1)", "Prev page"),
        Binding("u,ctrl+z", "undo", "Undo"),
        Binding("U,ctrl+y", "redo", "Redo", show=False),
        Binding("r", "rules", "Rules"),
        Binding("e", "export", "Export"),
        Binding("o", "focus_options", "Options", show=False),
        Binding("escape", "cancel", "Stop waiting", show=False),
    ]

    def __init__(
        self,
        engine: SearchEngine,
        renderer: str,
        *,
        session: Session | None = None,
        session_path: Path | None = None,
    ) -> None:
        """``session``: labels and rounds to go on from (checked against the catalog by the
        caller); ``session_path``: where to save the session after every change."""
        super().__init__()
        self.engine = engine
        if session is None:
            session = Session.for_engine(engine)
        elif not session.catalog:  # a session that names no catalog yet: this one
            session.catalog, session.catalog_checksum = str(engine.catalog.path), engine.catalog.codes_checksum
        self.session_path = session_path
        self.state = SearchState(session)
        catalog = engine.catalog
        index = "indexed" if engine.has_index else "no index: box models scan every item"
        self.title_bar = Static(f"{catalog.path.name}  ·  {len(catalog):,} items  ·  {index}", id="catalog")
        hint = "text query, #ID to search like item ID, or /path/to/image.jpg"
        self.query_input = Input(placeholder=hint, id="query")
        self.grid = ResultsGrid(renderer, id="grid")
        self.panel = RefinePanel(self.state.options, id="refine-panel")
        self.status = StatusBar(id="status")

    def compose(self) -> ComposeResult:
        with Horizontal(id="top"):
            yield self.title_bar
            yield self.query_input
        with Horizontal(id="body"):
            yield self.grid
            yield self.panel
        yield self.status
        yield Footer()

    def on_mount(self) -> None:
        self.status.set_busy(None)
        self.status.set_summary(self.state.summary())
        self.panel.counts.update(self.state.label_summary())
        ids = self.engine.catalog.item_ids
        example = f" (e.g. #{int(ids[0])})" if len(ids) else ""
        hint = f"Type a text query, #ID to search like an item{example}, or an image's path. Press ? for every key."
        if self.session_path is not None:
            s = self.state.session
            resumed = "resumed" if s.labels or s.rounds else "new session, saved to"
            hint = f"{resumed} {self.session_path.name}: {self.state.label_summary()}. {hint}"
        self.status.say(hint)
        self.query_input.focus()

    # -- backend calls -----------------------------------------------------------------------

    def _submit(self, what: str, call: Callable[[], Results]) -> None:
        token = self.state.begin()
        self.status.set_busy(what)
        self._backend(token, call)

    @work(thread=True, exclusive=True, group="backend", exit_on_error=False)
    def _backend(self, token: int, call: Callable[[], Results]) -> None:
        try:
            results = call()
        except ClipBranchesError as err:
            self.post_message(SearchFailed(token, str(err)))
        except ImportError as err:  # an optional dependency of a model (scikit-learn) is missing
            self.post_message(SearchFailed(token, f"missing dependency: {err}"))
        except Exception as err:  # noqa: BLE001 (an internal error: shown, never a traceback)
            self.post_message(SearchFailed(token, f"internal error: {type(err).__name__}: {err}"))
        else:
            self.post_message(SearchFinished(token, results))

    async def on_search_finished(self, message: SearchFinished) -> None:
        if not self.state.finish(message.token):
            return
        self.status.set_busy(None)
        self.state.show(message.results)
        await self._show_page()
        self.panel.counts.update(self.state.label_summary())
        self.status.say(f"{describe(message.results)}: {message.results.total} results")
        self._save_session()
        self.grid.focus()

    def on_search_failed(self, message: SearchFailed) -> None:
        if self.state.finish(message.token):
            self.status.set_busy(None)
            self.status.say(message.error, error=True)

    def action_cancel(self) -> None:
        if self.state.cancel():
            self.status.set_busy(None)
            self.status.say("stopped waiting; the call finishes in the background and its answer is dropped")

    # -- searches ----------------------------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input is self.query_input:
            self.search(event.value)
        else:
            self.action_refine()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button is self.panel.button:
            self.action_refine()

    def search(self, text: str) -> None:
        """Run the query box's query: a text search, ``#ID`` to search like an item, or the path
        of an image file (``/``, ``~``, ``./``) to search like that image."""
        try:
            query = parse_query(text)
        except ClipBranchesError as err:
            self.status.say(str(err), error=True)
            return
        if isinstance(query, ItemQuery):
            self.search_like(query.item_id)
        elif isinstance(query, ImageQuery):
            call = partial(self.engine.search_image, query.path, k=DEFAULT_K)
            self._submit(f"searching like {query.path}", call)
        else:
            self._submit(f"searching {query!r}", partial(self.engine.search_text, query, k=DEFAULT_K))

    def search_like(self, item_id: int) -> None:
        """Search like catalog item ``item_id``; the query box shows the ``#ID`` query that runs."""
        self.query_input.value = f"#{item_id}"
        self._submit(f"searching like #{item_id}", partial(self.engine.search_image, item_id, k=DEFAULT_K))

    def action_more_like_this(self) -> None:
        item_id = self.state.current_id()
        if item_id is not None:
            self.search_like(item_id)

    def action_view(self) -> None:
        """The result under the cursor full size: a larger image and every field of it."""
        page = self.state.visible()
        if page is None or not 0 <= self.state.cursor < len(page):
            self.status.say("no result selected: search first", error=True)
            return
        fields = page.to_polars().row(self.state.cursor, named=True)
        item_id = int(fields["id"])
        uri = fields.get("uri")
        original = Path(uri) if isinstance(uri, str) and "://" not in uri else None
        if original is None or not original.is_file():  # not a local file: the thumbnail
            original = page.thumbnail(int(page.rows[self.state.cursor]))
        image = original
        label = self.state.session.state(item_id)
        self.app.push_screen(ItemScreen(item_id, image, fields, label, self.grid.renderer))

    def on_more_like_this_clicked(self, message: MoreLikeThisClicked) -> None:
        self.search_like(message.item_id)

    def action_refine(self) -> None:
        try:
            options = RefineOptions.parse(*self.panel.raw())
            self.state.check_can_refine()
        except ClipBranchesError as err:
            self.status.say(str(err), error=True)
            return
        self.state.options = options
        pos, neg = self.state.session.positives, self.state.session.negatives
        call = partial(self.engine.refine, pos, neg, options)
        self._submit(f"refining {options.model} on {len(pos)} positive, {len(neg)} negative", call)

    # -- grid, pages, labels -----------------------------------------------------------------

    async def _show_page(self) -> None:
        page = self.state.visible()
        if page is None:
            return
        items = page.to_polars()
        captions = [c or (u or "").rsplit("/", 1)[-1] for c, u in zip(items["caption"], items["uri"], strict=True)]
        ids = page.ids.tolist()
        labels = [self.state.session.state(i) for i in ids]
        await self.grid.show(ids, page.rows.tolist(), captions, page.thumbnail, labels)
        self.grid.set_cursor(self.state.cursor)
        self.status.set_summary(self.state.summary())

    async def action_page(self, delta: int) -> None:
        if self.state.turn(delta):
            await self._show_page()
            # Replaces any earlier message ("no next page" after paging back, say).
            self.status.say(f"page {self.state.page + 1} of {self.state.pages}")
        elif self.state.results is not None:
            self.status.say("no next page" if delta > 0 else "already on the first page")

    def action_move(self, dx: int, dy: int) -> None:
        self.grid.set_cursor(self.state.move(dx, dy, self.grid.columns))

    def on_card_clicked(self, message: CardClicked) -> None:
        self.state.cursor = message.index
        self.grid.set_cursor(message.index)
        self.grid.focus(scroll_visible=False)
        item_id = self.state.current_id()
        if item_id is not None:
            self.state.cycle(item_id)
            self._labels_changed()

    def action_label(self, label: str) -> None:
        item_id = self.state.current_id()
        if item_id is None:
            self.status.say("no result selected: search first", error=True)
            return
        self.state.label([item_id], label)
        self._labels_changed()

    def action_cycle(self) -> None:
        item_id = self.state.current_id()
        if item_id is not None:
            self.state.cycle(item_id)
            self._labels_changed()

    def action_label_page(self, label: str) -> None:
        self.state.label(self.state.visible_ids(), label)
        self._labels_changed()

    def action_undo(self) -> None:
        if self.state.session.undo():
            self._labels_changed()
        else:
            self.status.say("nothing to undo")

    def action_redo(self) -> None:
        if self.state.session.redo():
            self._labels_changed()
        else:
            self.status.say("nothing to redo")

    def _labels_changed(self) -> None:
        self.grid.update_labels(self.state.session.state)
        self.panel.counts.update(self.state.label_summary())
        self._save_session()

    def _save_session(self) -> None:
        """Write the session to ``--session`` (atomically) after every change, if one was given."""
        if self.session_path is None:
            return
        try:
            self.state.session.save(self.session_path)
        except (ClipBranchesError, OSError) as err:
            self.status.say(f"cannot save the session: {err}", error=True)

    # -- focus, rules, export ----------------------------------------------------------------

    def action_focus_query(self) -> None:
        self.query_input.focus()

    def action_focus_options(self) -> None:
        self.panel.model.focus()

    def action_rules(self) -> None:
        if self.state.results is None:
            self.status.say("no results yet: search and refine first", error=True)
            return
        try:
            rules = self.state.results.rules()
        except ClipBranchesError as err:
            self.status.say(str(err), error=True)
            return
        self.app.push_screen(RulesScreen(str(rules), rules.sql()))

    def action_export(self) -> None:
        if self.state.results is None:
            self.status.say("no results to export yet", error=True)
            return
        default = Path.cwd() / f"{self.engine.catalog.path.name}-results.parquet"
        self.app.push_screen(ExportScreen(default), self.export)

    def export(self, target: Path | None) -> None:
        """Write every result (not just this page) and the session (labels, rounds) beside it."""
        if target is None or self.state.results is None:
            return
        try:
            written = self.state.results.export(target)
            labels = self.state.session.save(written.with_name(f"{written.stem}.session.json"))
        except (ClipBranchesError, OSError) as err:
            self.status.say(f"export failed: {err}", error=True)
            return
        self.status.say(f"exported {self.state.results.total} results to {written} and labels to {labels}")
