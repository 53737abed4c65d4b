"""One result card: preview, id, caption, label state and a "more like this" link."""

from __future__ import annotations

from pathlib import Path

from textual import events
from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Static

from clipbranches_tui.messages import CardClicked, MoreLikeThisClicked
from clipbranches_tui.widgets.preview import make_preview, set_preview

__all__ = ["MARKERS", "ResultCard"]

#: The label as text on the card's frame, so it reads without colour.
MARKERS = {"positive": "+ POS", "negative": "- NEG", "unlabeled": ""}


class MoreLink(Static):
    """The card's "more like this" link (a click on it does not also label the card)."""

    def __init__(self, item_id: int) -> None:
        super().__init__("≈ more like this", classes="more")
        self.item_id = item_id  # the card changes it when it shows another item

    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.post_message(MoreLikeThisClicked(self.item_id))


class ResultCard(Widget):
    """A result in the grid; its frame is green (positive), red (negative) or plain, with the
    label written on it, and heavier when the cursor is on it."""

    def __init__(
        self, index: int, item_id: int, caption: str, thumbnail: Path | None, label: str, renderer: str
    ) -> None:
        super().__init__(id=f"card-{index}", classes="card")
        self.index = index
        self.item_id = item_id
        self.renderer = renderer
        self.thumbnail = thumbnail
        self.preview = make_preview(thumbnail, renderer)
        self.caption = Static(caption, classes="caption", markup=False)
        self.more = MoreLink(item_id)
        self.border_title = f"#{item_id}"
        self.set_label(label)

    def compose(self) -> ComposeResult:
        yield self.preview
        yield self.caption
        yield self.more

    async def show(self, item_id: int, caption: str, thumbnail: Path | None, label: str) -> None:
        """Show another item in this card (cheaper than a new card: no new widgets, unless
        the preview changes kind, an image for a stand-in or back)."""
        self.item_id = self.more.item_id = item_id
        self.caption.update(caption)
        self.set_label(label)
        self.set_cursor(False)
        if thumbnail != self.thumbnail:
            if not set_preview(self.preview, thumbnail, self.renderer):
                old, self.preview = self.preview, make_preview(thumbnail, self.renderer)
                await self.mount(self.preview, before=old)
                await old.remove()
            self.thumbnail = thumbnail

    def set_label(self, label: str) -> None:
        self.set_class(label == "positive", "-positive")
        self.set_class(label == "negative", "-negative")
        self.border_subtitle = MARKERS[label]

    def set_cursor(self, on: bool) -> None:
        self.set_class(on, "-cursor")
        self.border_title = f"▶ #{self.item_id}" if on else f"#{self.item_id}"

    def on_click(self) -> None:
        self.post_message(CardClicked(self.index))
