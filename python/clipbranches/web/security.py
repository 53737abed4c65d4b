"""What guards the server, as one ASGI middleware: request body limits, the access token, and
the checks that keep other web sites out of a server on loopback.

- **Body limits.** A request body over its limit is refused with 413 before the app reads it:
  at once when ``Content-Length`` says so, and while it streams otherwise (a chunked body is
  counted; the app sees a disconnect and whatever it would answer is dropped). Uploads (paths
  ending in ``/upload``) have their own, larger limit.
- **Token.** When the server has one (it must, on any interface but loopback), every request
  carries it: ``Authorization: Bearer <token>``, an ``X-Clipbranches-Token`` header, or the
  ``clipbranches_token`` cookie. Opening ``/?token=<token>`` in a browser sets that cookie
  (HttpOnly, SameSite=Strict) and redirects to ``/``, so the token leaves the address bar.
- **Host.** Without a token (loopback), a request must name a loopback host: a page on another
  site cannot reach the server by pointing a DNS name of its own at 127.0.0.1 (DNS rebinding).
- **Origin.** A request that changes something (anything but GET, HEAD, OPTIONS) from a browser
  must come from the server's own origin: another site's page cannot label, refine or delete
  through a visitor's browser (cross-site request forgery).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

from clipbranches.web.errors import error_body

__all__ = ["COOKIE", "LOOPBACK_HOSTS", "Guard", "is_loopback"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "clipbranches_token"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a bind address or a Host header's name) is this machine only."""
    name = host.strip("[]").lower()
    return name in LOOPBACK_HOSTS or name.startswith("127.")


def _host_name(value: str) -> str:
    """The name part of a Host header (``[::1]:8000`` -> ``::1``, ``a.b:80`` -> ``a.b``)."""
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Guard:
    """The middleware (see the module docstring)."""

    def __init__(self, app: App, *, token: str | None, max_body: int, max_upload: int) -> None:
        self.app = app
        self.token = token
        self.max_body = max_body
        self.max_upload = max_upload

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}
        method = scope.get("method", "GET")
        refusal = self._refusal(scope, headers, method)
        if refusal is not None:
            await refusal(send)
            return
        limit = self.max_upload if scope.get("path", "").endswith("/upload") else self.max_body
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await _json(send, 413, "TooLarge", f"the request body is over this endpoint's limit of {limit:,} bytes")
            return
        await self.app(scope, *_counted(receive, send, limit))

    def _refusal(self, scope: Scope, headers: dict[str, str], method: str) -> Callable[[Send], Awaitable[None]] | None:
        host = _host_name(headers.get("host", ""))
        if self.token is None and not is_loopback(host):
            message = f"this server answers on loopback only, not to host {host!r}"
            return lambda send: _json(send, 403, "Forbidden", message)
        origin = headers.get("origin")
        if method not in _SAFE_METHODS and origin is not None and urlsplit(origin).netloc != headers.get("host"):
            message = "a request from another site's page is refused (its Origin is not this server)"
            return lambda send: _json(send, 403, "Forbidden", message)
        if self.token is None:
            return None
        given = _token_of(headers)
        if given is not None and secrets.compare_digest(given.encode(), self.token.encode()):
            return None
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        in_url = query.get("token", [""])[0]
        if (
            scope.get("path") == "/"
            and method == "GET"
            and secrets.compare_digest(in_url.encode(), self.token.encode())
        ):
            return self._set_cookie
        message = "this server needs its access token (Authorization: Bearer, or open the URL it printed)"
        return lambda send: _json(send, 401, "Unauthorized", message)

    async def _set_cookie(self, send: Send) -> None:
        assert self.token is not None
        cookie = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
        headers = [(b"location", b"/"), (b"set-cookie", cookie.encode()), (b"content-length", b"0")]
        await send({"type": "http.response.start", "status": 303, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def _token_of(headers: dict[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    if "x-clipbranches-token" in headers:
        return headers["x-clipbranches-token"]
    cookie = SimpleCookie()
    try:
        cookie.load(headers.get("cookie", ""))
    except Exception:  # a malformed cookie header is no token, not a crash
        return None
    morsel = cookie.get(COOKIE)
    return morsel.value if morsel is not None else None


def _counted(receive: Receive, send: Send, limit: int) -> tuple[Receive, Send]:
    """``receive`` that counts the body and, past ``limit``, answers 413 itself and tells the
    app the client left; ``send`` that drops what the app answers after that."""
    state = {"seen": 0, "refused": False}

    async def counted_receive() -> Message:
        message = await receive()
        if message["type"] == "http.request" and not state["refused"]:
            state["seen"] += len(message.get("body", b""))
            if state["seen"] > limit:
                state["refused"] = True
                await _json(send, 413, "TooLarge", f"the request body is over this endpoint's limit of {limit:,} bytes")
                return {"type": "http.disconnect"}
        return message

    async def guarded_send(message: Message) -> None:
        if not state["refused"]:
            await send(message)

    return counted_receive, guarded_send


async def _json(send: Send, status: int, kind: str, message: str) -> None:
    body = json.dumps(error_body(kind, message, status)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
