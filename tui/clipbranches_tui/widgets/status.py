"""The lines under the grid: results summary, progress while the backend works, and the last
message (errors in red, never a traceback)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import ProgressBar, Static

__all__ = ["StatusBar"]


class StatusBar(Vertical):
    """Summary, busy indicator and message lines."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.summary = Static("", id="summary", markup=False)
        self.busy = Horizontal(id="busy")
        self.progress = ProgressBar(total=None, show_eta=False, show_percentage=False)
        self.busy_label = Static("", id="busy-label", markup=False)
        self.message = Static("", id="message", markup=False)
        self.text = ""

    def compose(self) -> ComposeResult:
        yield self.summary
        with self.busy:
            yield self.progress
            yield self.busy_label
        yield self.message

    def set_summary(self, text: str) -> None:
        self.summary.update(text)

    def set_busy(self, what: str | None) -> None:
        """Show the progress indicator with ``what`` is running, or hide it (None)."""
        self.busy.display = what is not None
        self.busy_label.update(f" {what} … Esc stops waiting" if what else "")

    def say(self, text: str, *, error: bool = False) -> None:
        """Show a message (kept in :attr:`text` too, for tests and the help screen)."""
        self.text = text
        self.message.update(text)
        self.message.set_class(error, "-error")
