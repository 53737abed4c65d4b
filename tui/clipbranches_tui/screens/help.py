"""The help screen: every key of the app, listed from the bindings themselves so it cannot
fall behind them, plus the mouse actions."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

__all__ = ["HelpScreen"]

MOUSE = [
    ("click a card", "select it and cycle its label: none -> positive -> negative -> none"),
    ("click 'more like this'", "search for items like that card"),
    ("click 'Refine search'", "refine on the labels with the panel's settings"),
]
QUERY = [
    ("text", "search by text (catalogs made by `clipbranches ingest`)"),
    ("#ID", "search like catalog item ID (works on every catalog)"),
]


_SYMBOLS = {"slash": "/", "question_mark": "?", "left_square_bracket": "[", "right_square_bracket": "]"}


def _key_names(binding: Binding) -> str:
    return ", ".join(_SYMBOLS.get(k, k) for k in binding.key.split(","))


def _lines(bindings: Sequence[BindingType]) -> list[tuple[str, str]]:
    out = []
    for raw in bindings:
        binding = raw if isinstance(raw, Binding) else Binding(*raw)
        out.append((_key_names(binding), binding.description or binding.action))
    return out


class HelpScreen(ModalScreen[None]):
    """Every key, by where it works; Escape closes."""

    BINDINGS = [Binding("escape,q,question_mark,f1", "dismiss", "Close")]

    def __init__(self, sections: Sequence[tuple[str, Sequence[BindingType]]]) -> None:
        super().__init__()
        self.body = VerticalScroll(id="help-body")
        self.body.border_title = "Keys (Escape closes)"
        blocks = [(title, _lines(bindings)) for title, bindings in sections]
        blocks += [("Query box", QUERY), ("Mouse", MOUSE)]
        width = max(len(k) for _, lines in blocks for k, _ in lines) + 2
        text = Text()
        for title, lines in blocks:
            text.append(f"{title}\n", style="bold underline")
            for key, description in lines:
                text.append(f"  {key:<{width}}", style="bold")
                text.append(f"{description}\n")
            text.append("\n")
        self.text = Static(text, id="help-text")

    def compose(self) -> ComposeResult:
        with self.body:
            yield self.text
