"""What the TUI knows, without Textual: the current results and page, the grid cursor, the
labelling session, the refine options and the request in flight.

Kept free of Textual so that every rule of the interface (paging, cursor moves, what a key
labels, option ranges, which answer is stale) is unit-tested without a terminal.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from clipbranches import DEFAULT_K, Catalog, InvalidArgumentError, RefineOptions, Results, Session
from clipbranches.engine import STAGES
from clipbranches.learn import MODELS
from clipbranches.session import Label

__all__ = [
    "PAGE_SIZE",
    "RENDERERS",
    "ImageQuery",
    "ItemQuery",
    "SearchState",
    "describe",
    "find_catalogs",
    "model_names",
    "parse_query",
    "renderer_name",
]

#: Cards per page of the grid.
PAGE_SIZE = DEFAULT_K
#: Preview renderers: textual-image's protocols, ``auto`` (detected) and ``none`` (text only).
RENDERERS = ("auto", "kitty", "sixel", "halfcell", "unicode", "none")
_RENDERER_ALIASES = {"tgp": "kitty", "text": "none"}
#: The models the original's UI offers, first in the picker; the engine's others follow.
_FIRST_MODELS = ("branch", "ensemble", "tree", "forest")
_LABEL_CYCLE: dict[str, Label] = {"unlabeled": "positive", "positive": "negative", "negative": "unlabeled"}


def renderer_name(name: str) -> str:
    """The canonical renderer name (``tgp`` is ``kitty``, ``text`` is ``none``)."""
    canonical = _RENDERER_ALIASES.get(name, name)
    if canonical not in RENDERERS:
        raise InvalidArgumentError(f"renderer is one of {', '.join(RENDERERS)} (or tgp, text), not {name!r}")
    return canonical


def model_names() -> list[str]:
    """Every model of the engine's registry, the original UI's four first."""
    first = [m for m in _FIRST_MODELS if m in MODELS]
    return first + sorted(m for m in MODELS if m not in first)


def find_catalogs(path: str | os.PathLike[str]) -> list[Path]:
    """``[path]`` when it is a catalog, else the catalogs directly inside it (sorted by name).

    An empty list means neither: the caller opens ``path`` as a catalog to get the library's
    own error about it.
    """
    root = Path(path)
    if Catalog.is_catalog(root) or not root.is_dir():
        return [root]
    return sorted(p for p in root.iterdir() if Catalog.is_catalog(p))


@dataclass(frozen=True)
class ItemQuery:
    """A query box entry ``#123``: search like catalog item 123 (no encoder needed)."""

    item_id: int


@dataclass(frozen=True)
class ImageQuery:
    """A query box entry naming an image file (``/…``, ``~/…``, ``./…``, ``../…``): search like
    that image (the catalog's encoder embeds it)."""

    path: Path


#: How a query box entry that names a file starts (anything else is a text query).
_PATH_STARTS = ("/", "~", "./", "../")


def parse_query(text: str) -> str | ItemQuery | ImageQuery:
    """A text query, an :class:`ItemQuery` for ``#<id>``, or an :class:`ImageQuery` for a path
    to an existing file (starting with ``/``, ``~``, ``./`` or ``../``).

    A path-like entry that names no file is an error (not a text query): a mistyped path
    should say so rather than search for the path's words.
    """
    query = text.strip()
    if not query:
        raise InvalidArgumentError("type a text query, #ID to search like item ID, or the path of an image")
    if query.startswith(_PATH_STARTS):
        path = Path(query).expanduser()
        if not path.is_file():
            raise InvalidArgumentError(f"no image file at {path}")
        return ImageQuery(path)
    if query.startswith("#"):
        digits = query[1:].strip()
        if not digits.lstrip("-").isdigit():
            raise InvalidArgumentError(f"#ID needs an integer item id, not {digits!r}")
        return ItemQuery(int(digits))
    return query


def describe(results: Results) -> str:
    """What produced ``results``, in a few words."""
    params = results.params
    kind = params.get("kind")
    if kind == "text":
        return f"text {params.get('query')!r}"
    if kind == "image":
        return f"like #{params['item']}" if "item" in params else f"like {params.get('path')}"
    if kind == "refine":
        pos, neg = len(params.get("positives", [])), len(params.get("negatives", []))
        return f"refined {params.get('model')} on {pos}+/{neg}-"
    return str(kind)


@dataclass
class SearchState:
    """The search screen's state: results, page, cursor, labels and the request in flight."""

    session: Session
    results: Results | None = None
    page: int = 0
    cursor: int = 0
    page_size: int = PAGE_SIZE
    options: RefineOptions = field(default_factory=RefineOptions)
    #: Token of the backend call whose answer is awaited (0: none).
    pending: int = 0
    _issued: int = 0

    # -- requests in flight ------------------------------------------------------------------

    def begin(self) -> int:
        """A token for a new backend call; any earlier answer becomes stale."""
        self._issued += 1
        self.pending = self._issued
        return self.pending

    def finish(self, token: int) -> bool:
        """Whether an answer with ``token`` is the awaited one (then nothing is awaited)."""
        if token != self.pending:
            return False
        self.pending = 0
        return True

    def cancel(self) -> bool:
        """Stop waiting; the call runs on but its answer will be dropped. False if idle."""
        waiting = self.pending != 0
        self.pending = 0
        return waiting

    # -- results and paging ------------------------------------------------------------------

    def show(self, results: Results) -> None:
        """New results, from their first page, and recorded as a round of the session."""
        self.results = results
        self.page = 0
        self.cursor = 0
        self.session.record(results)

    @property
    def pages(self) -> int:
        return -(-len(self.results) // self.page_size) if self.results is not None else 0

    def visible(self) -> Results | None:
        """The current page of results."""
        return self.results.page(self.page, self.page_size) if self.results is not None else None

    def visible_ids(self) -> list[int]:
        page = self.visible()
        return page.ids.tolist() if page is not None else []

    def turn(self, delta: int) -> bool:
        """Go ``delta`` pages on (clamped); whether the page changed."""
        target = min(max(self.page + delta, 0), max(self.pages - 1, 0))
        changed = target != self.page
        if changed:
            self.page, self.cursor = target, 0
        return changed

    def move(self, dx: int, dy: int, columns: int) -> int:
        """Move the cursor on a grid of ``columns`` (clamped to the page); the new cursor."""
        count = len(self.visible_ids())
        if count:
            self.cursor = min(max(self.cursor + dx + dy * max(columns, 1), 0), count - 1)
        return self.cursor

    def current_id(self) -> int | None:
        ids = self.visible_ids()
        return ids[self.cursor] if 0 <= self.cursor < len(ids) else None

    # -- labels ------------------------------------------------------------------------------

    def label(self, ids: Iterable[int], state: str) -> None:
        """Label ``ids`` (one undoable step); ``state`` as a key binding spells it."""
        if state not in _LABEL_CYCLE:
            raise InvalidArgumentError(f"a label is positive, negative or unlabeled, not {state!r}")
        self.session.label(list(ids), cast(Label, state))

    def cycle(self, item_id: int) -> Label:
        """Unlabelled -> positive -> negative -> unlabelled (a click); the new label."""
        new = _LABEL_CYCLE[self.session.state(item_id)]
        self.session.label([item_id], new)
        return new

    def check_can_refine(self) -> None:
        if not self.session.positives:
            raise InvalidArgumentError("no positives yet: mark at least one result positive (p) first")

    # -- summaries ---------------------------------------------------------------------------

    def summary(self) -> str:
        """One line on the results: what, how many, which page, per-stage timings."""
        if self.results is None:
            return "no results yet"
        first = self.page * self.page_size
        shown = len(self.visible_ids())
        timings = " ".join(f"{s} {self.results.timings.get(s, 0.0):.1f}" for s in STAGES)
        span = f"{first + 1}-{first + shown}" if shown else "none"
        # A refine round's model accepts items; a text or image search finds the k nearest.
        found = "accepted" if self.results.params.get("kind") == "refine" else "nearest"
        return (
            f"{describe(self.results)}: {self.results.total} {found} · showing {span} · "
            f"page {self.page + 1}/{max(self.pages, 1)} · ms: {timings}"
        )

    def label_summary(self) -> str:
        s = self.session
        rounds = len(s.rounds)
        return f"{len(s.positives)} positive, {len(s.negatives)} negative, {rounds} round{'s' * (rounds != 1)}"
