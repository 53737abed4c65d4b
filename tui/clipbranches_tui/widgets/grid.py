"""The grid of result cards: one page of results, a cursor, and the labelling keys."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from textual import events
from textual.binding import Binding
from textual.containers import VerticalScroll

from clipbranches_tui.widgets.card import ResultCard

__all__ = ["CARD_WIDTH", "ResultsGrid"]

#: Fewest columns a card takes, gutter included (the grid stretches cards to fill its width).
CARD_WIDTH = 26

Thumbnail = Callable[[int], Path | None]


class ResultsGrid(VerticalScroll, can_focus=True):
    """Cards in as many columns as fit; the keys act on the search screen's state."""

    BINDINGS = [
        Binding("left,h", "screen.move(-1, 0)", "Left", show=False),
        Binding("right,l", "screen.move(1, 0)", "Right", show=False),
        Binding("up,k", "screen.move(0, -1)", "Up", show=False),
        Binding("down,j", "screen.move(0, 1)", "Down", show=False),
        Binding("p", "screen.label('positive')", "Positive"),
        Binding("n", "screen.label('negative')", "Negative"),
        Binding("x", "screen.label('unlabeled')", "Clear"),
        Binding("space", "screen.cycle", "Cycle label", show=False),
        Binding("P", "screen.label_page('positive')", "All positive"),
        Binding("N", "screen.label_page('negative')", "All negative"),
        Binding("X", "screen.label_page('unlabeled')", "Clear page"),
        Binding("m", "screen.more_like_this", "More like this"),
        Binding("v,enter", "screen.view", "View"),
    ]

    def __init__(self, renderer: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.renderer = renderer
        self.cards: list[ResultCard] = []
        self.columns = 1

    def on_resize(self, event: events.Resize) -> None:
        self.columns = max(1, event.size.width // CARD_WIDTH)
        self.styles.grid_size_columns = self.columns

    async def show(
        self,
        ids: Sequence[int],
        rows: Sequence[int],
        captions: Sequence[str],
        thumbnail: Thumbnail,
        labels: Sequence[str],
    ) -> None:
        """Show one page of results (``rows`` are catalog rows, for thumbnails).

        The cards already in the grid show the new items (building 60 cards anew, with their
        previews, captions and links, costs far more than changing what they show); only
        missing cards are made, and spare ones removed.
        """
        entries = list(zip(ids, rows, captions, labels, strict=True))
        kept = self.cards[: len(entries)]
        for card, (item_id, row, caption, label) in zip(kept, entries, strict=False):
            await card.show(item_id, caption, thumbnail(row), label)
        spare = self.cards[len(entries) :]
        if spare:
            await self.remove_children(spare)
        new = [
            ResultCard(i, item_id, caption, thumbnail(row), label, self.renderer)
            for i, (item_id, row, caption, label) in enumerate(entries[len(kept) :], start=len(kept))
        ]
        if new:
            await self.mount_all(new)
        self.cards = kept + new
        self.scroll_home(animate=False)

    def update_labels(self, state_of: Callable[[int], str]) -> None:
        for card in self.cards:
            card.set_label(state_of(card.item_id))

    def set_cursor(self, index: int) -> None:
        for card in self.cards:
            card.set_cursor(card.index == index)
        if 0 <= index < len(self.cards):
            self.scroll_to_widget(self.cards[index], animate=False)
