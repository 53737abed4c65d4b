"""The Textual app: its bindings and screens (the search screen, or the catalog picker first
when started on a folder of catalogs)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from textual.app import App
from textual.binding import Binding

from clipbranches import ClipBranchesError, InvalidArgumentError, SearchEngine, Session
from clipbranches_tui.messages import CatalogPicked
from clipbranches_tui.screens.help import HelpScreen
from clipbranches_tui.screens.picker import CatalogPickerScreen
from clipbranches_tui.screens.search import SearchScreen
from clipbranches_tui.state import renderer_name
from clipbranches_tui.widgets.grid import ResultsGrid

__all__ = ["ClipBranchesApp", "load_session"]


class ClipBranchesApp(App[None]):
    """Interactive search over a clipbranches catalog.

    Parameters
    ----------
    engine
        The engine of the catalog to search; None to start on the catalog picker.
    catalogs
        The catalogs the picker offers (when ``engine`` is None), found in ``root``.
    renderer
        How previews are drawn: ``auto``, ``kitty``, ``sixel``, ``halfcell``, ``unicode``,
        ``none`` (see :data:`clipbranches_tui.state.RENDERERS`).
    session
        A session file to resume (its labels, rounds and undo history) and to keep: the app
        saves it, atomically, after every change (a label, an undo or redo, a round), so
        quitting at any moment loses nothing. A missing file is a new session, saved there.

    Raises
    ------
    clipbranches.SessionFormatError
        ``session`` is no readable session, or was made on another catalog than ``engine``'s
        (checked here, before the app runs; a catalog picked later is checked when picked).
    """

    CSS_PATH = "styles/app.tcss"
    TITLE = "clipbranches"
    BINDINGS = [
        Binding("question_mark,f1", "help", "Help"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("q", "quit", "Quit", show=False),
    ]

    def __init__(
        self,
        engine: SearchEngine | None = None,
        *,
        root: Path | None = None,
        catalogs: Sequence[Path] = (),
        renderer: str = "auto",
        session: Path | None = None,
    ) -> None:
        super().__init__()
        self.engine = engine
        self.root = root
        self.catalogs = list(catalogs)
        self.renderer = renderer_name(renderer)
        self.session_path = session
        self.session = load_session(session) if session is not None else None
        if self.session is not None and engine is not None:
            self.session.check_catalog(engine)

    def _search_screen(self, engine: SearchEngine) -> SearchScreen:
        return SearchScreen(engine, self.renderer, session=self.session, session_path=self.session_path)

    def on_mount(self) -> None:
        if self.engine is not None:
            self.push_screen(self._search_screen(self.engine))
        else:
            self.push_screen(CatalogPickerScreen(self.root or Path.cwd(), self.catalogs))

    def on_catalog_picked(self, message: CatalogPicked) -> None:
        try:
            engine = SearchEngine.open(message.path)
            if self.session is not None:
                self.session.check_catalog(engine)
        except ClipBranchesError as err:
            if isinstance(self.screen, CatalogPickerScreen):
                self.screen.say(f"cannot open {message.path.name}: {err}")
            return
        self.engine = engine
        self.switch_screen(self._search_screen(engine))

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        sections = [
            ("Anywhere", self.BINDINGS),
            ("Search screen", SearchScreen.BINDINGS),
            ("Result grid", ResultsGrid.BINDINGS),
        ]
        self.push_screen(HelpScreen(sections))


def load_session(path: Path) -> Session | None:
    """The session saved at ``path``; None when there is none yet (a new one is saved there).

    Raises
    ------
    clipbranches.ClipBranchesError
        Not a readable session (:class:`~clipbranches.SessionFormatError`), or its folder
        does not exist (:class:`~clipbranches.InvalidArgumentError`).
    """
    if path.exists() or path.is_symlink():
        return Session.load(path)
    if not path.parent.is_dir():
        raise InvalidArgumentError(f"cannot keep the session in {path}: {path.parent} is not a directory")
    return None
