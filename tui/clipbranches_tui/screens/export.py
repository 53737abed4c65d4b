"""Export dialog: where to write the results (.parquet or .csv); the session's labels go
beside them as ``<name>.session.json``."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

__all__ = ["ExportScreen"]


class ExportScreen(ModalScreen[Path | None]):
    """Asks for the export path; Enter confirms, Escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, default: Path) -> None:
        super().__init__()
        self.box = Vertical(id="export-box")
        self.box.border_title = "Export results and labels"
        self.path_input = Input(str(default), id="export-path")

    def compose(self) -> ComposeResult:
        with self.box:
            yield Label("Results file (.parquet or .csv); labels are saved beside it as .session.json")
            yield self.path_input
            yield Label("Enter: export    Escape: cancel")

    def on_mount(self) -> None:
        self.path_input.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(Path(event.value).expanduser() if event.value.strip() else None)

    def action_cancel(self) -> None:
        self.dismiss(None)
