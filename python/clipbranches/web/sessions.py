"""The server's search sessions: many at once, each isolated, each saved after every change.

A web session is a :class:`clipbranches.Session` (labels, rounds, undo/redo) on one served
catalog, under a random id. Every change is saved at once, atomically (``<id>.json`` in the
state folder), so a server restart loses nothing: the next server reads the folder back.

Results are not saved, only the rounds that made them (their ``params``, seed included). The
last few answers are kept in memory (:data:`MAX_CACHED_RESULTS`, least recently used first
out, and no more than :data:`MAX_CACHED_ITEMS` items in all); a page of an older round, or of
any round after a restart, is made again with :meth:`SearchEngine.redo`: the same parameters
and seed give the same answer.

Each session has its own lock: two requests on one session take turns (a label change never
interleaves with a refine on the same labels), requests on different sessions run side by side.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from clipbranches import (
    Results,
    SearchEngine,
    Session,
    SessionFormatError,
)

__all__ = ["MAX_CACHED_ITEMS", "MAX_CACHED_RESULTS", "MAX_SESSIONS", "SessionNotFound", "SessionStore", "WebSession"]

#: Answers kept in memory, over all sessions...
MAX_CACHED_RESULTS = 64
#: ... and the items they may hold together (an answer keeps every accepted row, ~18 bytes
#: each: at 10M items one round can hold millions). The newest answer is always kept.
MAX_CACHED_ITEMS = 20_000_000
#: Sessions one server keeps; creating one more is refused (HTTP 429) until some are deleted.
MAX_SESSIONS = 10_000
#: What a session id looks like (what :func:`secrets.token_urlsafe` (16) makes): checked before
#: an id is ever used in a file name.
_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")
_SUFFIX = ".json"


class SessionNotFound(LookupError):
    """No session with this id (or its catalog is not served here)."""


@dataclass
class WebSession:
    """One session of the server: its id, its catalog's name and the session itself."""

    id: str
    catalog: str
    session: Session
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class SessionStore:
    """The sessions of one server, kept in ``folder`` (created if needed).

    Parameters
    ----------
    folder
        Where sessions are saved (one JSON file each).
    engines
        The served catalogs by name. A saved session whose catalog is not among them (by path)
        is kept on disk but not offered.
    """

    def __init__(self, folder: Path, engines: dict[str, SearchEngine]) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.engines = engines
        self._lock = threading.Lock()
        self._sessions: dict[str, WebSession] = {}
        self._results: OrderedDict[tuple[str, int], Results] = OrderedDict()
        self.skipped: list[str] = []  # saved sessions not offered, with why (shown at start)
        self._load()

    # -- the saved sessions -------------------------------------------------------------------

    def _served_as(self, session: Session) -> str | None:
        """The name under which ``session``'s catalog is served: the one at its (resolved)
        path, else the one with its codes (a catalog moved, or named by another relative path)."""
        for name, engine in self.engines.items():
            if session.catalog and _resolved(session.catalog) == _resolved(engine.catalog.path):
                return name
        same = [n for n, e in self.engines.items() if e.catalog.codes_checksum == session.catalog_checksum]
        return same[0] if len(same) == 1 and session.catalog_checksum else None

    def _load(self) -> None:
        for file in sorted(self.folder.glob(f"*{_SUFFIX}")):
            sid = file.name[: -len(_SUFFIX)]
            if not _ID.match(sid):
                continue
            try:
                session = Session.load(file)
            except SessionFormatError as e:
                self.skipped.append(f"{file.name}: {e}")
                continue
            name = self._served_as(session)
            if name is None:
                self.skipped.append(f"{file.name}: its catalog {session.catalog} is not served")
                continue
            try:
                session.check_catalog(self.engines[name])
            except SessionFormatError as e:
                self.skipped.append(f"{file.name}: {e}")
                continue
            self._sessions[sid] = WebSession(sid, name, session)

    def save(self, web: WebSession) -> None:
        """Write ``web``'s session (atomically: a crash leaves the previous file)."""
        web.session.save(self.folder / f"{web.id}{_SUFFIX}")

    # -- sessions -----------------------------------------------------------------------------

    def create(self, catalog: str) -> WebSession:
        engine = self.engines[catalog]
        if len(self) >= MAX_SESSIONS:
            raise OverflowError(f"this server holds {MAX_SESSIONS:,} sessions already: delete some first")
        session = Session.for_engine(engine)
        session.catalog = _resolved(session.catalog)  # found again whatever the next server's cwd
        web = WebSession(secrets.token_urlsafe(16), catalog, session)
        self.save(web)  # outside the store's lock: a disk write (fsync) holds up no other request
        with self._lock:
            self._sessions[web.id] = web
        return web

    def get(self, sid: str) -> WebSession:
        with self._lock:
            web = self._sessions.get(sid) if _ID.match(sid) else None
        if web is None:
            raise SessionNotFound(f"no session {sid!r} on this server")
        return web

    @contextmanager
    def hold(self, sid: str) -> Iterator[WebSession]:
        """Session ``sid``, its lock held: requests on one session take turns. One deleted
        while this request waited for it is not found (never worked on, nor saved again)."""
        web = self.get(sid)
        with web.lock:
            with self._lock:
                if self._sessions.get(sid) is not web:
                    raise SessionNotFound(f"no session {sid!r} on this server")
            yield web

    def delete(self, sid: str) -> None:
        """Forget a session and its file (after any request working on it has finished).

        Locks are always taken in one order, the session's before the store's (a round holds
        its session's lock while it keeps its answer here): the other order deadlocks with it."""
        with self.hold(sid):
            with self._lock:
                del self._sessions[sid]
                for key in [k for k in self._results if k[0] == sid]:
                    del self._results[key]
            (self.folder / f"{sid}{_SUFFIX}").unlink(missing_ok=True)

    def __len__(self) -> int:
        return len(self._sessions)

    def list(self) -> list[WebSession]:
        with self._lock:
            return list(self._sessions.values())

    # -- answers ------------------------------------------------------------------------------

    def remember(self, web: WebSession, round_no: int, results: Results) -> None:
        """Keep the answer of round ``round_no`` (evicting the least recently used)."""
        with self._lock:
            self._results[(web.id, round_no)] = results
            self._results.move_to_end((web.id, round_no))
            held = sum(len(r) for r in self._results.values())
            while len(self._results) > 1 and (len(self._results) > MAX_CACHED_RESULTS or held > MAX_CACHED_ITEMS):
                _, dropped = self._results.popitem(last=False)
                held -= len(dropped)

    def results(self, web: WebSession, round_no: int) -> Results:
        """The answer of round ``round_no`` of ``web`` (call with ``web.lock`` held): from
        memory, or made again from the round's params (same seed, same answer)."""
        key = (web.id, round_no)
        with self._lock:
            cached = self._results.get(key)
            if cached is not None:
                self._results.move_to_end(key)
                return cached
        results = self.engines[web.catalog].redo(web.session.rounds[round_no]["params"])
        self.remember(web, round_no, results)
        return results

    def uploads(self) -> Path:
        """Where uploaded query images are kept (by content hash), so their rounds can be redone."""
        folder = self.folder / "uploads"
        folder.mkdir(exist_ok=True)
        return folder


def _resolved(path: str | os.PathLike[str]) -> str:
    return os.path.realpath(os.fspath(path))
