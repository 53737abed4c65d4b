"""The Textual app: its bindings and screens (the search screen, or the catalog picker first
when started on a folder of catalogs)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from textual.app import App
from textual.binding import Binding

from clipbranches import ClipBranchesError, SearchEngine
from clipbranches_tui.messages import CatalogPicked
from clipbranches_tui.screens.help import HelpScreen
from clipbranches_tui.screens.picker import CatalogPickerScreen
from clipbranches_tui.screens.search import SearchScreen
from clipbranches_tui.state import renderer_name
from clipbranches_tui.widgets.grid import ResultsGrid

__all__ = ["ClipBranchesApp"]


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
    ) -> None:
        super().__init__()
        self.engine = engine
        self.root = root
        self.catalogs = list(catalogs)
        self.renderer = renderer_name(renderer)

    def on_mount(self) -> None:
        if self.engine is not None:
            self.push_screen(SearchScreen(self.engine, self.renderer))
        else:
            self.push_screen(CatalogPickerScreen(self.root or Path.cwd(), self.catalogs))

    def on_catalog_picked(self, message: CatalogPicked) -> None:
        try:
            self.engine = SearchEngine.open(message.path)
        except ClipBranchesError as err:
            if isinstance(self.screen, CatalogPickerScreen):
                self.screen.say(f"cannot open {message.path.name}: {err}")
            return
        self.switch_screen(SearchScreen(self.engine, self.renderer))

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        sections = [
            ("Anywhere", self.BINDINGS),
            ("Search screen", SearchScreen.BINDINGS),
            ("Result grid", ResultsGrid.BINDINGS),
        ]
        self.push_screen(HelpScreen(sections))
