"""clipbranches_tui: the terminal UI of clipbranches (``clipbranches tui CATALOG``).

Importing the package is light (no Textual): :func:`run` imports the app, and with it
textual-image's renderers, which query the terminal for its graphics support; that has to
happen before the app takes over the terminal, and :func:`run` does it in that order.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clipbranches_tui.state import find_catalogs, renderer_name

if TYPE_CHECKING:
    from clipbranches_tui.app import ClipBranchesApp

__all__ = ["ClipBranchesApp", "run"]


def run(path: str | os.PathLike[str], *, renderer: str = "auto", session: str | os.PathLike[str] | None = None) -> None:
    """Run the TUI on the catalog at ``path``, or on the picker of the catalogs in the folder
    ``path``.

    Parameters
    ----------
    path
        A catalog directory, or a folder whose subdirectories are catalogs.
    renderer
        Preview renderer: ``auto`` (detected), ``kitty``, ``sixel``, ``halfcell``, ``unicode`` or
        ``none`` (``tgp`` and ``text`` are aliases of ``kitty`` and ``none``).
    session
        A session file to resume and keep: loaded (a missing file starts a new session there),
        checked against the catalog, and saved atomically after every label change and round.

    Raises
    ------
    clipbranches.ClipBranchesError
        An unknown renderer, ``path`` is neither a catalog nor a folder of catalogs (the
        library's own error, e.g. :class:`~clipbranches.CatalogNotFoundError`), or ``session``
        is unreadable or made on another catalog, raised before the terminal is taken over.
    """
    from clipbranches import SearchEngine
    from clipbranches_tui.app import ClipBranchesApp  # imports textual-image's renderers first

    name = renderer_name(renderer)
    catalogs = find_catalogs(path)
    kept = Path(session) if session is not None else None
    if len(catalogs) > 1:
        app = ClipBranchesApp(root=Path(path), catalogs=catalogs, renderer=name, session=kept)
    else:
        app = ClipBranchesApp(SearchEngine.open(catalogs[0] if catalogs else path), renderer=name, session=kept)
    app.run()


def __getattr__(name: str) -> Any:
    """``clipbranches_tui.ClipBranchesApp``, imported on first use (it imports Textual)."""
    if name == "ClipBranchesApp":
        from clipbranches_tui.app import ClipBranchesApp

        return ClipBranchesApp
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
