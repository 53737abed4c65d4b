"""The model's rules: readable conditions on the code bytes and the equivalent SQL."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

__all__ = ["RulesScreen"]


class RulesScreen(ModalScreen[None]):
    """Shows the rules of the current box model (branch, ensemble); Escape closes."""

    BINDINGS = [Binding("escape,q,r", "dismiss", "Close")]

    def __init__(self, rules: str, sql: str) -> None:
        super().__init__()
        self.body = VerticalScroll(id="rules-body")
        self.body.border_title = "Model rules (Escape closes)"
        self.rules = Static(rules, id="rules-text", markup=False)
        self.sql = Static(f"SQL:\n{sql}", id="rules-sql", markup=False)

    def compose(self) -> ComposeResult:
        with self.body:
            yield self.rules
            yield self.sql
