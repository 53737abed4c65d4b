"""One result full size: its image larger, and every field the catalog has on it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import ModalScreen
from textual.widgets import Static

from clipbranches_tui.widgets.preview import make_preview

__all__ = ["ItemScreen", "describe_item"]


def describe_item(fields: Mapping[str, Any], label: str) -> str:
    """The item's fields, one ``name: value`` a line (empty ones left out), and its label."""
    lines = [f"{name}: {value}" for name, value in fields.items() if value is not None and value != ""]
    return "\n".join([*lines, f"your label: {label}"])


class ItemScreen(ModalScreen[None]):
    """A result full size (``v`` or Enter on a card); Escape closes.

    ``image``: the picture to draw, the original file when it is a local one, else the
    catalog's thumbnail (None: no picture)."""

    BINDINGS = [Binding("escape,q,v", "dismiss", "Close")]

    def __init__(self, item_id: int, image: Path | None, fields: Mapping[str, Any], label: str, renderer: str) -> None:
        super().__init__()
        self.item_id = item_id
        self.image_path = image
        self.body = Horizontal(id="item-body")
        self.body.border_title = f"#{item_id} (Escape closes)"
        self.image = make_preview(image, renderer)
        self.image.id = "item-image"
        self.fields = Static(describe_item(fields, label), id="item-fields", markup=False)

    def compose(self) -> ComposeResult:
        with self.body:
            yield self.image
            yield self.fields
