"""The JSON shapes of the HTTP API: request bodies are validated against them (a wrong type or
a missing field is a 422 naming the field) and the OpenAPI schema is made from them, so the
documentation cannot drift from what the server does.

Ranges that the engine also checks (a model's name, random negatives...) are left to the engine:
one rule in one place (:class:`clipbranches.RefineOptions`), answered as a 400 with its message.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from clipbranches import DEFAULT_K

__all__ = [
    "MAX_K",
    "MAX_PAGE_SIZE",
    "Answer",
    "CatalogInfo",
    "Item",
    "LabelRequest",
    "ModelsInfo",
    "NewSession",
    "Page",
    "RefineRequest",
    "RoundInfo",
    "SearchRequest",
    "SessionInfo",
    "StatelessRefine",
]

#: The most items one nearest-neighbour search returns (a refine round returns every match).
MAX_K = 10_000
#: The most items one page holds.
MAX_PAGE_SIZE = 500

Label = Literal["positive", "negative", "unlabeled"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not ignored


class SearchRequest(_Strict):
    """A nearest-neighbour search: by text (``query``) or by a catalog item (``item``)."""

    query: str | None = Field(None, description="a text query", examples=["a red car"])
    item: int | None = Field(None, description="the id of a catalog item to search like")
    k: int = Field(DEFAULT_K, ge=1, le=MAX_K, description="how many nearest items")
    size: int = Field(DEFAULT_K, ge=1, le=MAX_PAGE_SIZE, description="items in the first page")


class RefineRequest(_Strict):
    """A refine round's options (the labels are the session's); unset fields take the defaults."""

    model: str | None = Field(None, description="a model of GET /api/models (default: its default)")
    random_negatives: int | None = Field(None, description="random catalog items added as negatives")
    negative_weight: int | None = Field(None, description="weight of each labelled negative")
    seed: int | None = Field(None, ge=0, description="the round's seed (default: drawn, and recorded)")
    size: int = Field(DEFAULT_K, ge=1, le=MAX_PAGE_SIZE, description="items in the first page")


class StatelessRefine(RefineRequest):
    """A refine round without a session: the labels are given."""

    positives: list[int] = Field(..., min_length=1, description="ids of items labelled positive")
    negatives: list[int] = Field(default_factory=list, description="ids of items labelled negative")


class NewSession(_Strict):
    catalog: str = Field(..., description="the name of a served catalog (GET /api/catalogs)")


class LabelRequest(_Strict):
    """Set one label on items (one undoable step)."""

    ids: list[int] = Field(..., min_length=1, max_length=100_000)
    label: Label


class Item(BaseModel):
    """One item of an answer, with its metadata and where to fetch its pictures."""

    id: int
    rank: int = Field(..., description="1-based rank in the whole answer")
    score: float
    pinned: bool = Field(..., description="a labelled positive (always first in a refine round)")
    label: Label = Field("unlabeled", description="the session's label of the item")
    name: str | None = Field(None, description="the file name of the item's image")
    caption: str | None = None
    width: int | None = None
    height: int | None = None
    thumbnail: str = Field(..., description="URL of its thumbnail (JPEG)")
    image: str = Field(..., description="URL of its full-size image")
    meta: dict[str, Any] = Field(default_factory=dict, description="the catalog's other columns")


class Answer(BaseModel):
    """One page of a search or refine answer."""

    kind: str
    total: int = Field(..., description="how many items the answer holds in all")
    page: int
    size: int
    pages: int
    params: dict[str, Any] = Field(..., description="what made the answer (enough to redo it)")
    timings_ms: dict[str, float]
    items: list[Item]


class Page(Answer):
    """A page of one round of a session."""

    round: int = Field(..., description="the round's number in its session (0-based)")


class RoundInfo(BaseModel):
    round: int
    kind: str
    total: int
    params: dict[str, Any]
    timings_ms: dict[str, float]


class SessionInfo(BaseModel):
    id: str
    catalog: str
    positives: list[int]
    negatives: list[int]
    rounds: int
    can_undo: bool
    can_redo: bool


class CatalogInfo(BaseModel):
    name: str
    items: int
    shards: int = Field(..., description="1 for a catalog, its shard count for a catalog set")
    has_index: bool
    encoder: str | None = Field(None, description="the encoder of text and image queries (None: item queries only)")
    columns: list[str]


class ModelsInfo(BaseModel):
    models: list[str]
    default: str
    rules: list[str] = Field(..., description="the models whose rounds have rules (box models)")
    random_negatives: dict[str, int]
    negative_weight: dict[str, int]
