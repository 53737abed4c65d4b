"""``clipbranches serve``: an HTTP API and a web page over catalogs (the ``serve`` extra).

:func:`create_app` makes the ASGI app (FastAPI); :func:`serve` runs it with uvicorn. The web
layer uses only the public API of :mod:`clipbranches` (as the terminal UI does): the engine,
sessions, results, options and errors. Its modules:

- :mod:`~clipbranches.web.app`: the app and its catalog, item and one-off search routes;
- :mod:`~clipbranches.web.session_routes`: sessions (labels, undo/redo, rounds, pages, export);
- :mod:`~clipbranches.web.sessions`: the sessions kept (saved after every change);
- :mod:`~clipbranches.web.security`: token, loopback, origin and body-size guards;
- :mod:`~clipbranches.web.errors`: typed errors as 4xx, anything else as a bare 500;
- ``static/``: the page (plain HTML, CSS and JavaScript; no build step, nothing fetched from
  elsewhere).

Importing this package needs the ``serve`` extra: ``pip install 'clipbranches[serve]'``.
"""

from __future__ import annotations

from clipbranches import MissingDependencyError

try:
    import fastapi  # noqa: F401
    import python_multipart  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as e:  # pragma: no cover (the serve extra is installed wherever tests run)
    raise MissingDependencyError(
        f"the web server (clipbranches serve) needs {e.name}, which is not installed: pip install 'clipbranches[serve]'"
    ) from e

from clipbranches.web.app import MAX_BODY_BYTES, MAX_UPLOAD_BYTES, create_app  # noqa: E402
from clipbranches.web.server import serve  # noqa: E402

__all__ = ["MAX_BODY_BYTES", "MAX_UPLOAD_BYTES", "create_app", "serve"]
