"""Results as JSON: a page of an answer, each item with its metadata and picture URLs.

Item URIs are files on the server: a page names an item's image by its file name only (its
folders are the server's business), and links to the server's own thumbnail and image routes,
which look the file up by item id (a client never sends a path).
"""

from __future__ import annotations

import math
import os
from typing import Any

from clipbranches import Results, Session
from clipbranches.web.schemas import Answer, Item, Page

__all__ = ["answer", "page_of", "public_params"]

_STANDARD = ("rank", "score", "labelled", "id", "uri", "caption", "width", "height")


def public_params(params: dict[str, Any]) -> dict[str, Any]:
    """A round's params as a client sees them: an uploaded image's server path becomes its name."""
    if "path" in params:
        return {**params, "path": os.path.basename(str(params["path"]))}
    return dict(params)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)  # dates, decimals, binary: as text


def _items(results: Results, catalog: str, session: Session | None) -> list[Item]:
    table = results.to_polars()
    extra = [c for c in table.columns if c not in _STANDARD]
    base = f"/api/catalogs/{catalog}/items"
    items = []
    for row in table.iter_rows(named=True):
        item_id = int(row["id"])
        uri = row.get("uri")
        items.append(
            Item(
                id=item_id,
                rank=int(row["rank"]),
                score=float(row["score"]) if math.isfinite(row["score"]) else 0.0,
                pinned=bool(row["labelled"]),
                label=session.state(item_id) if session is not None else "unlabeled",
                name=os.path.basename(uri) if uri else None,
                caption=row.get("caption"),
                width=row.get("width"),
                height=row.get("height"),
                thumbnail=f"{base}/{item_id}/thumbnail",
                image=f"{base}/{item_id}/image",
                meta={c: _json_safe(row[c]) for c in extra},
            )
        )
    return items


def answer(results: Results, catalog: str, page: int, size: int, session: Session | None = None) -> Answer:
    """Page ``page`` (of ``size`` items) of ``results``."""
    part = results.page(page, size)
    return Answer(
        kind=str(results.params.get("kind", "")),
        total=int(results.total),
        page=page,
        size=size,
        pages=max(1, math.ceil(results.total / size)),
        params=public_params(results.params),
        timings_ms={k: round(float(v), 3) for k, v in results.timings.items()},
        items=_items(part, catalog, session),
    )


def page_of(results: Results, catalog: str, round_no: int, page: int, size: int, session: Session) -> Page:
    """Page ``page`` of round ``round_no`` of a session."""
    return Page(round=round_no, **answer(results, catalog, page, size, session).model_dump())
