"""The refine panel: model, random negatives, negative weight and the "Refine search"
button. It only holds raw values; :meth:`RefineOptions.parse` validates them."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.validation import Integer
from textual.widgets import Button, Input, Label, Select, Static

from clipbranches import RefineOptions
from clipbranches_tui.state import model_names

__all__ = ["RefinePanel"]


class RefinePanel(Vertical):
    """Settings of the next refine round and the label counts."""

    def __init__(self, options: RefineOptions, *, id: str | None = None) -> None:
        super().__init__(id=id)
        low_neg, high_neg = RefineOptions.RANDOM_NEGATIVES
        low_w, high_w = RefineOptions.NEGATIVE_WEIGHT
        self.border_title = "Refine"
        self.model: Select[str] = Select(
            [(m, m) for m in model_names()], value=options.model, allow_blank=False, id="model"
        )
        self.random_negatives = Input(
            str(options.random_negatives),
            type="integer",
            validators=[Integer(minimum=low_neg, maximum=high_neg)],
            id="random-negatives",
        )
        self.negative_weight = Input(
            str(options.negative_weight),
            type="integer",
            validators=[Integer(minimum=low_w, maximum=high_w)],
            id="negative-weight",
        )
        self.ranges = (f"Random negatives ({low_neg}-{high_neg})", f"Negative weight ({low_w}-{high_w})")
        self.button = Button("Refine search", id="refine", variant="primary")
        self.counts = Static("", id="label-counts")

    def compose(self) -> ComposeResult:
        yield Label("Model")
        yield self.model
        yield Label(self.ranges[0])
        yield self.random_negatives
        yield Label(self.ranges[1])
        yield self.negative_weight
        yield self.button
        yield self.counts

    def raw(self) -> tuple[object, str, str]:
        """The panel's values as typed (for :meth:`RefineOptions.parse`)."""
        return self.model.value, self.random_negatives.value, self.negative_weight.value
