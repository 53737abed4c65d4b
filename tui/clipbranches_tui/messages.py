"""Messages between the TUI's widgets, screens and worker threads, named after what happened.

Workers post :class:`SearchFinished` / :class:`SearchFailed` from their thread
(``post_message`` is thread-safe), so no widget is touched off the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual.message import Message

from clipbranches import Results

__all__ = ["CardClicked", "CatalogPicked", "MoreLikeThisClicked", "SearchFailed", "SearchFinished"]


@dataclass
class CardClicked(Message):
    """A result card was clicked: move the cursor there and cycle its label."""

    index: int


@dataclass
class MoreLikeThisClicked(Message):
    """A card's "more like this" link was clicked."""

    item_id: int


@dataclass
class SearchFinished(Message):
    """A backend call (search or refine) returned; ``token`` says which request it answers."""

    token: int
    results: Results


@dataclass
class SearchFailed(Message):
    """A backend call raised a clipbranches error; its message is shown in the UI."""

    token: int
    error: str


@dataclass
class CatalogPicked(Message):
    """A catalog was chosen in the picker."""

    path: Path
