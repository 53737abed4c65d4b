"""The server's app: :func:`create_app` makes the ASGI application over served catalogs.

Routes (JSON unless said; the OpenAPI schema is at ``/api/openapi.json``):

- ``GET /`` the web page; ``/static/...`` its script and style (nothing is fetched from
  elsewhere: the page's Content-Security-Policy allows this server only);
- ``GET /api`` version and limits; ``GET /api/models`` the refine models and option ranges;
- ``GET /api/catalogs``, ``GET /api/catalogs/{name}``: what is served;
- ``GET /api/catalogs/{name}/items/{id}`` metadata, ``.../thumbnail`` (JPEG), ``.../image``
  (the original file, looked up by the item's id: no client path is ever opened);
- ``POST /api/catalogs/{name}/search``, ``.../search/upload``, ``.../refine``: one-off
  searches and rounds without a session, for programs;
- ``/api/sessions/...``: sessions (:mod:`clipbranches.web.session_routes`).

Engine calls block (the native core runs them on its own threads), so routes are plain
functions, which FastAPI runs on its worker threads: requests on different sessions run side
by side, and the event loop never waits on a refine.
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from clipbranches import DEFAULT_K, InvalidArgumentError, RefineOptions, SearchEngine, __version__
from clipbranches.learn import DEFAULT_MODEL, MODELS, BranchEnsemble, DecisionBranch, make_model
from clipbranches.web import session_routes
from clipbranches.web.answers import answer
from clipbranches.web.calls import engine_of, options_of, run_search, save_upload
from clipbranches.web.errors import ApiError, install_error_handlers
from clipbranches.web.schemas import (
    MAX_K,
    MAX_PAGE_SIZE,
    Answer,
    CatalogInfo,
    ModelsInfo,
    SearchRequest,
    StatelessRefine,
)
from clipbranches.web.security import Guard
from clipbranches.web.sessions import SessionStore

__all__ = ["MAX_BODY_BYTES", "MAX_UPLOAD_BYTES", "create_app"]

#: The largest JSON request body (labels of 100,000 items fit).
MAX_BODY_BYTES = 2 * 1024 * 1024
#: The largest uploaded query image.
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
#: The page may load only this server's own files (and images it made into data: URLs).
_CSP = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"


#: The learners whose fitted boxes read as rules (:meth:`Results.rules`).
_BOXES = (BranchEnsemble, DecisionBranch)


def create_app(
    catalogs: Mapping[str, SearchEngine | str | os.PathLike[str]],
    *,
    state_dir: str | os.PathLike[str],
    token: str | None = None,
    max_body: int = MAX_BODY_BYTES,
    max_upload: int = MAX_UPLOAD_BYTES,
    cluster: str | None = None,
) -> FastAPI:
    """The ASGI app serving ``catalogs``.

    Parameters
    ----------
    catalogs
        Name -> an open engine, or the path of a catalog (or catalog set) to open.
    state_dir
        Where sessions are saved (and read back at start: sessions survive a restart).
    token
        The access token every request must carry (see :mod:`clipbranches.web.security`);
        None: no token (for a server on loopback only).
    max_body, max_upload
        Request body limits in bytes (JSON requests; uploaded images).
    cluster
        Open catalog sets on this Ray cluster (see :meth:`SearchEngine.open`).

    Raises
    ------
    InvalidArgumentError
        No catalog, or a name that cannot be part of a URL.
    """
    if not catalogs:
        raise InvalidArgumentError("serve needs at least one catalog")
    engines: dict[str, SearchEngine] = {}
    for name, given in catalogs.items():
        if not name or not all(c.isalnum() or c in "-_." for c in name) or name.startswith("."):
            raise InvalidArgumentError(f"a served catalog's name is letters, digits, '-', '_' and '.', not {name!r}")
        engines[name] = given if isinstance(given, SearchEngine) else SearchEngine.open(given, cluster=cluster)
    store = SessionStore(Path(state_dir), engines)

    app = FastAPI(
        title="clipbranches",
        version=__version__,
        description="Search an image catalog by text or image, label results, and refine.",
        openapi_url="/api/openapi.json",
        docs_url=None,  # the interactive docs load their script from a CDN: this page fetches nothing
        redoc_url=None,
    )
    app.state.engines = engines
    app.state.store = store
    install_error_handlers(app)
    app.add_middleware(Guard, token=token, max_body=max_body, max_upload=max_upload)
    _add_page(app)
    _add_catalog_routes(app, engines, store)
    app.include_router(session_routes.router(engines, store))
    return app


def _add_page(app: FastAPI) -> None:
    static = resources.files("clipbranches.web") / "static"
    index = (static / "index.html").read_text(encoding="utf-8")

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(index, headers={"content-security-policy": _CSP, "cache-control": "no-store"})

    app.mount("/static", StaticFiles(directory=str(static)), name="static")


def _catalog_info(name: str, engine: SearchEngine) -> CatalogInfo:
    encoder = engine.catalog.encoder
    columns = [c for c in engine.items([]).columns]
    shards = len(getattr(engine.catalog, "shards", ())) or 1
    return CatalogInfo(
        name=name,
        items=len(engine),
        shards=shards,
        has_index=engine.has_index,
        encoder=None if encoder is None else encoder_label(encoder),
        columns=columns,
    )


def encoder_label(identity: Mapping[str, Any]) -> str:
    """An encoder's identity as a person reads it: ``open_clip ViT-B-32 (openai)``, ``offline
    efficientnet-lite0/imagenet + wordllama/l2_supercat-256``, or its name."""
    kind = identity.get("kind")
    if kind == "open_clip":
        return f"open_clip {identity.get('model')} ({identity.get('weights')})"
    if "image" in identity and "text" in identity:
        return f"{kind or 'towers'} {identity['image']} + {identity['text']}"
    return str(identity.get("name") or identity.get("model") or kind or "unknown")


def _add_catalog_routes(app: FastAPI, engines: dict[str, SearchEngine], store: SessionStore) -> None:
    @app.get("/api", tags=["server"])
    def about() -> dict[str, Any]:
        """The server: its version, its catalogs, its limits."""
        return {"name": "clipbranches", "version": __version__, "catalogs": sorted(engines), "max_k": MAX_K}

    @app.get("/api/models", tags=["server"])
    def models() -> ModelsInfo:
        """The refine models and the ranges of a round's options."""
        rn, nw = RefineOptions.RANDOM_NEGATIVES, RefineOptions.NEGATIVE_WEIGHT
        return ModelsInfo(
            models=list(MODELS),
            default=DEFAULT_MODEL,
            rules=[m for m in MODELS if isinstance(getattr(make_model(m), "learner", None), _BOXES)],
            random_negatives={"min": rn[0], "max": rn[1], "default": RefineOptions().random_negatives},
            negative_weight={"min": nw[0], "max": nw[1], "default": RefineOptions().negative_weight},
        )

    @app.get("/api/catalogs", tags=["catalogs"])
    def catalogs() -> list[CatalogInfo]:
        """The served catalogs."""
        return [_catalog_info(name, engine) for name, engine in sorted(engines.items())]

    @app.get("/api/catalogs/{name}", tags=["catalogs"])
    def catalog(name: str) -> CatalogInfo:
        return _catalog_info(name, engine_of(engines, name))

    @app.get("/api/catalogs/{name}/items/{item_id}", tags=["items"])
    def item(name: str, item_id: int) -> dict[str, Any]:
        """An item's metadata (every column of the catalog's items table)."""
        row = engine_of(engines, name).items([item_id]).row(0, named=True)
        if row.get("uri"):
            row["uri"] = os.path.basename(str(row["uri"]))
        return {k: (v if isinstance(v, (int, float, str, bool, type(None))) else str(v)) for k, v in row.items()}

    @app.get(
        "/api/catalogs/{name}/items/{item_id}/thumbnail",
        tags=["items"],
        response_class=FileResponse,
        responses={200: {"content": {"image/jpeg": {}}}},
    )
    def thumbnail(name: str, item_id: int) -> FileResponse:
        """The item's thumbnail (JPEG), made at ingest."""
        path = engine_of(engines, name).thumbnail(item_id)
        if path is None:
            raise ApiError(404, f"item {item_id} has no thumbnail (its catalog was not made by ingest)")
        return FileResponse(path, media_type="image/jpeg", headers={"cache-control": "private, max-age=3600"})

    @app.get("/api/catalogs/{name}/items/{item_id}/image", tags=["items"], response_class=FileResponse)
    def image(name: str, item_id: int) -> Response:
        """The item's original image file (only ever the file its catalog records for it)."""
        uri = engine_of(engines, name).items([item_id])["uri"][0]
        if not uri or "://" in str(uri) or not os.path.isfile(str(uri)):
            raise ApiError(404, f"item {item_id}'s image is not a file on this server")
        media = mimetypes.guess_type(str(uri))[0] or "application/octet-stream"
        return FileResponse(str(uri), media_type=media, headers={"cache-control": "private, max-age=3600"})

    @app.post("/api/catalogs/{name}/search", tags=["search"])
    def search(name: str, request: SearchRequest) -> Answer:
        """The ``k`` items nearest to a text (``query``) or to a catalog item (``item``)."""
        engine = engine_of(engines, name)
        return answer(run_search(engine, request), name, 0, request.size)

    @app.post("/api/catalogs/{name}/search/upload", tags=["search"])
    async def search_upload(
        name: str,
        file: Annotated[UploadFile, File(description="the query image")],
        k: Annotated[int, Form(ge=1, le=MAX_K)] = DEFAULT_K,
        size: Annotated[int, Form(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_K,
    ) -> Answer:
        """The ``k`` items nearest to an uploaded image."""
        engine = engine_of(engines, name)
        data = await file.read()
        path = await run_in_threadpool(save_upload, store, data)
        results = await run_in_threadpool(engine.search_image, path, k)
        return await run_in_threadpool(answer, results, name, 0, size)

    @app.post("/api/catalogs/{name}/refine", tags=["search"])
    def refine(name: str, request: StatelessRefine) -> Answer:
        """A refine round on the given labels: every item the model accepts, first page here."""
        engine = engine_of(engines, name)
        results = engine.refine(request.positives, request.negatives, options_of(request))
        return answer(results, name, 0, request.size)
