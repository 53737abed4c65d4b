"""What the routes share: finding a served catalog, running a search request, a round's
options, keeping an uploaded query image."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from clipbranches import InvalidArgumentError, RefineOptions, Results, SearchEngine
from clipbranches.web.errors import ApiError
from clipbranches.web.schemas import SearchRequest
from clipbranches.web.sessions import SessionStore

__all__ = ["engine_of", "options_of", "run_search", "save_upload"]


def engine_of(engines: Mapping[str, SearchEngine], name: str) -> SearchEngine:
    engine = engines.get(name)
    if engine is None:
        raise ApiError(404, f"no catalog {name!r} is served here (GET /api/catalogs lists them)")
    return engine


def save_upload(store: SessionStore, data: bytes) -> Path:
    """Keep an uploaded image under its content's hash (a round that searched by it can be
    redone later, after a restart too); the engine decodes it and says if it is no image."""
    if not data:
        raise InvalidArgumentError("the uploaded file is empty")
    path = store.uploads() / f"{hashlib.sha256(data).hexdigest()[:32]}.upload"
    if not path.exists():
        partial = path.with_suffix(".partial")
        partial.write_bytes(data)
        os.replace(partial, path)
    return path


def run_search(engine: SearchEngine, request: SearchRequest) -> Results:
    """Run a :class:`SearchRequest`: exactly one of ``query`` and ``item``."""
    if (request.query is None) == (request.item is None):
        raise InvalidArgumentError("a search takes exactly one of 'query' (a text) and 'item' (an item id)")
    if request.query is not None:
        return engine.search_text(request.query, request.k)
    return engine.search_image(request.item, request.k)  # type: ignore[arg-type]


def options_of(request: Any) -> RefineOptions:
    """The :class:`RefineOptions` of a request's fields (unset: the defaults; the engine's
    validation names what is out of range)."""
    return RefineOptions().replace(
        model=request.model,
        random_negatives=request.random_negatives,
        negative_weight=request.negative_weight,
        seed=request.seed,
    )
