"""Running the app: names for the served catalogs, the loopback rule and the token, uvicorn.

A server binds to loopback (127.0.0.1) unless told otherwise. Any other address makes the
catalogs reachable from the network, so it takes an explicit ``public=True`` (``--public``) and
a token on every request: the one given, or a fresh random one, printed in the URL to open.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from clipbranches import ClipBranchesError, InvalidArgumentError, SearchEngine
from clipbranches.web.security import is_loopback

__all__ = ["DEFAULT_PORT", "catalog_names", "default_state_dir", "serve"]

DEFAULT_PORT = 8000


def default_state_dir() -> Path:
    """Where sessions are kept unless told: ``$CLIPBRANCHES_STATE_DIR``, else
    ``$XDG_STATE_HOME/clipbranches/serve`` (``~/.local/state/clipbranches/serve``)."""
    if os.environ.get("CLIPBRANCHES_STATE_DIR"):
        return Path(os.environ["CLIPBRANCHES_STATE_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "clipbranches" / "serve"


def catalog_names(specs: Sequence[str]) -> dict[str, str]:
    """``NAME=PATH`` or ``PATH`` (named after its folder) -> {name: path}.

    Raises :class:`InvalidArgumentError` when two catalogs get one name."""
    named: dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or "/" in name or not name:
            name, path = Path(spec.rstrip("/")).name or spec, spec
        if name in named:
            raise InvalidArgumentError(
                f"two catalogs would be named {name!r} ({named[name]} and {path}): name them, e.g. {name}2={path}"
            )
        named[name] = path
    return named


def serve(
    catalogs: Sequence[str],
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    public: bool = False,
    token: str | None = None,
    state_dir: str | os.PathLike[str] | None = None,
    cluster: str | None = None,
    log_level: str = "warning",
) -> None:
    """Serve ``catalogs`` (paths, or ``NAME=PATH``) until interrupted.

    Raises
    ------
    InvalidArgumentError
        A non-loopback ``host`` without ``public``; a port out of range; clashing names.
    """
    import uvicorn

    from clipbranches.web.app import create_app

    if not is_loopback(host) and not public:
        raise InvalidArgumentError(
            f"serving on {host} makes the catalogs reachable from the network: pass --public "
            "(every request then needs the access token)"
        )
    if isinstance(port, bool) or not 0 <= int(port) <= 65535:
        raise InvalidArgumentError(f"a port is in 0..65535, not {port!r}")
    if public and token is None:
        token = secrets.token_urlsafe(24)
    if token is not None and len(token) < 16:
        raise InvalidArgumentError("an access token needs at least 16 characters")
    folder = Path(state_dir) if state_dir is not None else default_state_dir()
    app = create_app(catalog_names(catalogs), state_dir=folder, token=token, cluster=cluster)
    store = app.state.store
    for line in store.skipped:
        print(f"clipbranches serve: not offering saved session {line}", file=sys.stderr)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    names = ", ".join(f"{n} ({len(e):,} items)" for n, e in app.state.engines.items())
    print(f"clipbranches serve: {names}; {len(store)} saved sessions in {folder}", file=sys.stderr)
    print(f"clipbranches serve: open {url}", file=sys.stderr, flush=True)
    threading.Thread(target=_warm, args=(list(app.state.engines.values()),), daemon=True).start()
    uvicorn.run(app, host=host, port=port, log_level=log_level)


def _warm(engines: list[SearchEngine]) -> None:
    """Load each catalog's towers now, beside the server, so the first text query does not wait
    for them (seconds: torch and the weights). A catalog without towers is left as it is."""
    for engine in engines:
        if engine.catalog.encoder is not None:
            # no head, or the extra is missing: the first query will say so
            with contextlib.suppress(ClipBranchesError):
                engine.encode_text("a photo")
