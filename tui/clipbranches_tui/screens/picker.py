"""The catalog picker, shown when the TUI starts on a folder of catalogs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from clipbranches_tui.messages import CatalogPicked

__all__ = ["CatalogPickerScreen"]


class CatalogPickerScreen(Screen[None]):
    """Lists the catalogs of a folder; Enter (or a click) opens one."""

    def __init__(self, root: Path, catalogs: Sequence[Path]) -> None:
        super().__init__()
        self.catalogs = list(catalogs)
        self.heading = Static(f"Catalogs in {root} ({len(self.catalogs)}): pick one", id="picker-heading")
        self.options = OptionList(*[Option(p.name, id=str(i)) for i, p in enumerate(self.catalogs)], id="catalogs")
        self.message = Static("", id="picker-message", markup=False)

    def compose(self) -> ComposeResult:
        yield self.heading
        yield self.options
        yield self.message
        yield Footer()

    def on_mount(self) -> None:
        self.options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.post_message(CatalogPicked(self.catalogs[event.option_index]))

    def say(self, text: str) -> None:
        """Show why a catalog could not be opened."""
        self.message.update(text)
