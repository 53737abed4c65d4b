"""The session routes: create a session on a catalog, label, undo/redo, search and refine as
rounds, page through any round, export it, read its rules.

Every route that changes a session saves it before answering (atomically), and holds the
session's own lock while it works: two requests on one session take turns, other sessions are
not held up.
"""

from __future__ import annotations

import os
import tempfile
from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, File, Form, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, PlainTextResponse, Response

from clipbranches import DEFAULT_K, InvalidArgumentError, Results, SearchEngine
from clipbranches.web.answers import page_of, public_params
from clipbranches.web.calls import engine_of, options_of, run_search, save_upload
from clipbranches.web.errors import ApiError
from clipbranches.web.schemas import (
    MAX_K,
    MAX_PAGE_SIZE,
    LabelRequest,
    NewSession,
    Page,
    RefineRequest,
    RoundInfo,
    SearchRequest,
    SessionInfo,
)
from clipbranches.web.sessions import SessionStore, WebSession

__all__ = ["router"]

_EXPORT_TYPES = {"parquet": "application/vnd.apache.parquet", "csv": "text/csv"}


def _info(web: WebSession) -> SessionInfo:
    s = web.session
    return SessionInfo(
        id=web.id,
        catalog=web.catalog,
        positives=s.positives,
        negatives=s.negatives,
        rounds=len(s.rounds),
        can_undo=s.can_undo,
        can_redo=s.can_redo,
    )


def router(engines: dict[str, SearchEngine], store: SessionStore) -> APIRouter:
    """The session routes over ``engines``, keeping sessions in ``store``."""
    api = APIRouter(prefix="/api/sessions", tags=["sessions"])

    def new_round(web: WebSession, results: Results, size: int) -> Page:
        """Record ``results`` as the session's next round, save, and answer its first page."""
        web.session.record(results)
        store.save(web)
        round_no = len(web.session.rounds) - 1
        store.remember(web, round_no, results)
        return page_of(results, web.catalog, round_no, 0, size, web.session)

    def round_of(web: WebSession, round_no: int) -> int:
        rounds = len(web.session.rounds)
        if not 0 <= round_no < rounds:
            raise ApiError(404, f"session {web.id} has no round {round_no} (it has {rounds})")
        return round_no

    @api.post("", status_code=201)
    def create(request: NewSession) -> SessionInfo:
        """A new, empty session on a served catalog."""
        engine_of(engines, request.catalog)
        try:
            return _info(store.create(request.catalog))
        except OverflowError as e:
            raise ApiError(429, str(e), "TooManySessions") from None

    @api.get("/{sid}")
    def get(sid: str) -> SessionInfo:
        """A session's labels and how many rounds it has."""
        with store.hold(sid) as web:
            return _info(web)

    @api.delete("/{sid}", status_code=204)
    def delete(sid: str) -> Response:
        """Forget a session (and its saved file)."""
        store.delete(sid)
        return Response(status_code=204)

    @api.post("/{sid}/labels")
    def label(sid: str, request: LabelRequest) -> SessionInfo:
        """Set a label on items: one undoable step. Unknown ids are refused (404)."""
        with store.hold(sid) as web:
            engines[web.catalog].catalog.find(request.ids)  # every id must be the catalog's
            web.session.label(request.ids, request.label)
            store.save(web)
            return _info(web)

    @api.post("/{sid}/undo")
    def undo(sid: str) -> SessionInfo:
        """Take back the last label change (nothing to undo: unchanged, ``can_undo`` false)."""
        with store.hold(sid) as web:
            if web.session.undo():
                store.save(web)
            return _info(web)

    @api.post("/{sid}/redo")
    def redo(sid: str) -> SessionInfo:
        with store.hold(sid) as web:
            if web.session.redo():
                store.save(web)
            return _info(web)

    @api.post("/{sid}/search")
    def search(sid: str, request: SearchRequest) -> Page:
        """A nearest-neighbour search (text or item) as the session's next round."""
        with store.hold(sid) as web:
            return new_round(web, run_search(engines[web.catalog], request), request.size)

    @api.post("/{sid}/search/upload")
    async def search_upload(
        sid: str,
        file: Annotated[UploadFile, File(description="the query image")],
        k: Annotated[int, Form(ge=1, le=MAX_K)] = DEFAULT_K,
        size: Annotated[int, Form(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_K,
    ) -> Page:
        """A search by an uploaded image as the session's next round."""
        data = await file.read()

        def work() -> Page:
            with store.hold(sid) as web:
                path = save_upload(store, data)
                return new_round(web, engines[web.catalog].search_image(path, k), size)

        return await run_in_threadpool(work)

    @api.post("/{sid}/refine")
    def refine(sid: str, request: RefineRequest) -> Page:
        """A refine round on the session's labels: every item the model accepts, ranked."""
        with store.hold(sid) as web:
            if not web.session.positives:
                raise InvalidArgumentError("label at least one item positive before refining")
            results = engines[web.catalog].refine(web.session.positives, web.session.negatives, options_of(request))
            return new_round(web, results, request.size)

    @api.get("/{sid}/rounds")
    def rounds(sid: str) -> list[RoundInfo]:
        """Every round of the session, oldest first."""
        with store.hold(sid) as web:
            return [
                RoundInfo(
                    round=i,
                    kind=str(r["params"].get("kind", "")),
                    total=int(r["total"]),
                    params=public_params(r["params"]),
                    timings_ms=r.get("timings_ms", {}),
                )
                for i, r in enumerate(web.session.rounds)
            ]

    @api.get("/{sid}/rounds/{round_no}")
    def page(
        sid: str,
        round_no: int,
        page: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
        size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_K,
    ) -> Page:
        """Page ``page`` of a round (past the end: no items)."""
        with store.hold(sid) as web:
            results = store.results(web, round_of(web, round_no))
            return page_of(results, web.catalog, round_no, page, size, web.session)

    @api.get("/{sid}/rounds/{round_no}/export", response_class=FileResponse)
    def export(
        sid: str, round_no: int, background: BackgroundTasks, format: Literal["parquet", "csv"] = "parquet"
    ) -> FileResponse:
        """Every item of a round with its rank, score and metadata, as parquet or CSV."""
        with store.hold(sid) as web:
            results = store.results(web, round_of(web, round_no))
            handle, name = tempfile.mkstemp(prefix="clipbranches-export-", suffix=f".{format}")
            os.close(handle)
            try:
                results.export(name)
            except BaseException:
                os.unlink(name)
                raise
        background.add_task(os.unlink, name)
        return FileResponse(
            name, media_type=_EXPORT_TYPES[format], filename=f"round-{round_no}.{format}", background=background
        )

    @api.get("/{sid}/rounds/{round_no}/rules", response_class=PlainTextResponse)
    def rules(sid: str, round_no: int, format: Literal["text", "sql"] = "text") -> PlainTextResponse:
        """A box model's round as readable rules or as SQL (other models: 400)."""
        with store.hold(sid) as web:
            found = store.results(web, round_of(web, round_no)).rules()
        return PlainTextResponse(found.sql() if format == "sql" else str(found))

    return api
