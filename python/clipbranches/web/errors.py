"""HTTP answers for errors: every typed clipbranches error is a 4xx with its message; anything
else is a 500 that says only that the server failed (and an id to find it in the log), never a
path or a traceback.

Every error body has one shape, ``{"error": {"type": ..., "message": ..., "status": ...}}``, the
same as the CLI's ``--json`` errors, so a client reads one field whatever went wrong.
"""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from clipbranches import (
    CatalogChangedError,
    CatalogNotFoundError,
    ClipBranchesError,
    EncoderError,
    InvalidArgumentError,
    MissingDependencyError,
    SessionFormatError,
    UnknownItemError,
)
from clipbranches.web.sessions import SessionNotFound

__all__ = ["ApiError", "error_body", "install_error_handlers", "status_of"]

log = logging.getLogger("clipbranches.web")

#: The HTTP status of each typed error (the first class in this list that the error is wins).
_STATUS: list[tuple[type[BaseException], int]] = [
    (UnknownItemError, 404),  # an item id the catalog does not have
    (CatalogNotFoundError, 404),
    (CatalogChangedError, 409),  # the catalog was replaced on disk: the server must reopen it
    (SessionFormatError, 409),
    (MissingDependencyError, 501),  # a feature whose package is not installed on the server
    (EncoderError, 422),  # e.g. a catalog without towers asked a text query
    (InvalidArgumentError, 400),
    (ClipBranchesError, 400),
]


class ApiError(Exception):
    """An error of the API itself (unknown catalog, round, page...), with its status."""

    def __init__(self, status: int, message: str, kind: str = "NotFound") -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


def status_of(error: BaseException) -> int:
    return next(status for cls, status in _STATUS if isinstance(error, cls))


def error_body(kind: str, message: str, status: int) -> dict[str, Any]:
    return {"error": {"type": kind, "message": " ".join(message.split()), "status": status}}


def _answer(kind: str, message: str, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(kind, message, status), status_code=status, headers=headers)


#: A file-system path inside a message: a served catalog's errors name their files, which a
#: remote client has no business knowing. Kept to the file's name.
_PATH = re.compile(r"(?<![\w.])/(?:[^\s/:'\"]+/)+([^\s/:'\"]*)")


def _without_paths(message: str) -> str:
    return _PATH.sub(lambda m: m.group(1) or "/", message)


def install_error_handlers(app: FastAPI) -> None:
    """Map every error a route can raise to its JSON answer."""

    @app.exception_handler(ClipBranchesError)
    async def typed(request: Request, error: ClipBranchesError) -> JSONResponse:
        return _answer(type(error).__name__, _without_paths(str(error)), status_of(error))

    @app.exception_handler(ApiError)
    async def api(request: Request, error: ApiError) -> JSONResponse:
        return _answer(error.kind, str(error), error.status)

    @app.exception_handler(SessionNotFound)
    async def no_session(request: Request, error: SessionNotFound) -> JSONResponse:
        return _answer("SessionNotFound", str(error), 404)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = []
        for item in error.errors():
            where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
            problems.append(f"{where}: {item.get('msg', 'invalid')}" if where else str(item.get("msg", "invalid")))
        return _answer("InvalidArgumentError", "; ".join(problems) or "invalid request", 422)

    @app.exception_handler(StarletteHTTPException)
    async def http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        kinds = {404: "NotFound", 405: "MethodNotAllowed", 401: "Unauthorized", 413: "TooLarge"}
        return _answer(kinds.get(error.status_code, "HTTPError"), str(error.detail), error.status_code)

    @app.exception_handler(Exception)
    async def internal(request: Request, error: Exception) -> JSONResponse:
        incident = secrets.token_hex(4)
        log.error("internal error %s on %s %s", incident, request.method, request.url.path, exc_info=error)
        return _answer("InternalError", f"the server failed on this request (incident {incident}, in its log)", 500)
