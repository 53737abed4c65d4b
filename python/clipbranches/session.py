"""A search session: the labels so far, every round, undo/redo, saved as JSON.

A session belongs to one catalog (its path and codes checksum are recorded, so a session is not
replayed against another catalog by mistake). Labels are per item id: positive, negative or
unlabelled (absent). Every label change is one undoable step; rounds (searches and refine
rounds) are history, recorded with everything needed to redo them (``Results.params``, seed
included) and a summary of what they returned.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from clipbranches._io import atomic_write, check_path, read_text
from clipbranches.exceptions import InvalidArgumentError, SessionFormatError

if TYPE_CHECKING:
    from clipbranches.engine import SearchEngine
    from clipbranches.results import Results

__all__ = ["Label", "Session"]

Label = Literal["positive", "negative", "unlabeled"]
_LABELS = ("positive", "negative", "unlabeled")
_FORMAT = "clipbranches-session"
_VERSION = 1
#: Ids of the best items kept per round in the summary.
SUMMARY_ITEMS = 100


@dataclass
class _Step:
    """One undoable label change: per id, the label before and after."""

    before: dict[int, str]
    after: dict[int, str]


@dataclass
class Session:
    """Labels and rounds of one search over a catalog."""

    catalog: str = ""
    catalog_checksum: str = ""
    labels: dict[int, str] = field(default_factory=dict)
    rounds: list[dict[str, Any]] = field(default_factory=list)
    _undo: list[_Step] = field(default_factory=list, repr=False)
    _redo: list[_Step] = field(default_factory=list, repr=False)

    @classmethod
    def for_engine(cls, engine: SearchEngine) -> Session:
        """A new, empty session on the engine's catalog."""
        return cls(str(engine.catalog.path), engine.catalog.codes_checksum)

    # -- labels ----------------------------------------------------------------------------

    def label(self, ids: Iterable[int], state: Label) -> None:
        """Set ``state`` on every id (one undoable step; clears the redo history)."""
        if state not in _LABELS:
            raise InvalidArgumentError(f"a label is one of {', '.join(_LABELS)}, not {state!r}")
        before: dict[int, str] = {}
        after: dict[int, str] = {}
        for raw in ids:
            if isinstance(raw, bool) or not isinstance(raw, int) and not hasattr(raw, "__index__"):
                raise InvalidArgumentError(f"item ids are integers, not {raw!r}")
            i = int(raw)
            old = self.labels.get(i, "unlabeled")
            if old != state:
                before[i], after[i] = old, state
        if after:
            self._apply(after)
            self._undo.append(_Step(before, after))
            self._redo.clear()

    def state(self, item_id: int) -> Label:
        """The label of one item."""
        value = self.labels.get(int(item_id), "unlabeled")
        return value  # type: ignore[return-value]

    @property
    def positives(self) -> list[int]:
        return sorted(i for i, s in self.labels.items() if s == "positive")

    @property
    def negatives(self) -> list[int]:
        return sorted(i for i, s in self.labels.items() if s == "negative")

    def _apply(self, states: dict[int, str]) -> None:
        for i, s in states.items():
            if s == "unlabeled":
                self.labels.pop(i, None)
            else:
                self.labels[i] = s

    def undo(self) -> bool:
        """Take back the last label change; False when there is none."""
        if not self._undo:
            return False
        step = self._undo.pop()
        self._apply(step.before)
        self._redo.append(step)
        return True

    def redo(self) -> bool:
        """Make again the last undone change; False when there is none."""
        if not self._redo:
            return False
        step = self._redo.pop()
        self._apply(step.after)
        self._undo.append(step)
        return True

    @property
    def can_undo(self) -> bool:
        """Whether there is a label change to take back."""
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        """Whether there is an undone change to make again."""
        return bool(self._redo)

    # -- rounds ----------------------------------------------------------------------------

    def record(self, results: Results) -> None:
        """Append a round: its parameters and a summary of its results."""
        self.rounds.append(
            {
                "params": results.params,
                "total": int(results.total),
                "top": results.page(0, SUMMARY_ITEMS).ids.tolist(),
                "timings_ms": {k: round(v, 3) for k, v in results.timings.items()},
            }
        )

    def refine(self, engine: SearchEngine, **options: Any) -> Results:
        """Refine on this session's labels (``options`` as :meth:`SearchEngine.refine`) and
        record the round."""
        results = engine.refine(self.positives, self.negatives, **options)
        self.record(results)
        return results

    # -- persistence -----------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "catalog": self.catalog,
            "catalog_checksum": self.catalog_checksum,
            "labels": {str(i): s for i, s in sorted(self.labels.items())},
            "rounds": self.rounds,
            "undo": [{"before": _keys(s.before), "after": _keys(s.after)} for s in self._undo],
            "redo": [{"before": _keys(s.before), "after": _keys(s.after)} for s in self._redo],
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the session as JSON, atomically (a crash leaves the previous file intact)."""
        return atomic_write(path, json.dumps(self.to_json(), indent=1).encode(), "session file")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Session:
        """Read a session written by :meth:`save`.

        Raises
        ------
        SessionFormatError
            Missing file, not JSON, another format or version, or malformed contents.
        """
        source = check_path(path, "session file")
        if not source.exists() and not source.is_symlink():
            raise SessionFormatError(f"{source}: no session file here")
        text = read_text(source, "session file", error=SessionFormatError)
        try:
            data = json.loads(text)
        except (RecursionError, json.JSONDecodeError) as e:
            raise SessionFormatError(f"{source}: not a readable JSON session ({e})") from e
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            raise SessionFormatError(f"{source}: not a clipbranches session file")
        if data.get("version") != _VERSION:
            raise SessionFormatError(f"{source}: session version {data.get('version')!r} is not supported")
        try:
            labels = {int(i): str(s) for i, s in data["labels"].items()}
            if any(s not in ("positive", "negative") for s in labels.values()):
                raise ValueError("labels must be positive or negative")
            session = cls(str(data["catalog"]), str(data["catalog_checksum"]), labels, _rounds(data["rounds"]))
            session._undo = [_Step(_ints(s["before"]), _ints(s["after"])) for s in data["undo"]]
            session._redo = [_Step(_ints(s["before"]), _ints(s["after"])) for s in data["redo"]]
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise SessionFormatError(f"{source}: malformed session ({e})") from e
        return session

    def check_catalog(self, engine: SearchEngine) -> None:
        """Refuse a session made on another catalog (by its codes checksum)."""
        checksum = engine.catalog.codes_checksum
        if self.catalog_checksum and self.catalog_checksum != checksum:
            raise SessionFormatError(
                f"this session was made on another catalog ({self.catalog}); "
                f"its codes differ from {engine.catalog.path}'s"
            )


#: The kinds of search a round's ``params`` may record (what :meth:`SearchEngine.redo` runs).
_KINDS = ("text", "image", "refine")


def _rounds(value: Any) -> list[dict[str, Any]]:
    """The saved rounds, checked for the shape :meth:`Session.record` writes; anything else is a
    ``ValueError`` (reported as a malformed session)."""
    if not isinstance(value, list):
        raise ValueError(f"rounds must be a list, not {type(value).__name__}")
    for n, entry in enumerate(value):
        where = f"round {n}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where} must be an object, not {type(entry).__name__}")
        params = entry.get("params")
        if not isinstance(params, dict):
            raise ValueError(f"{where}: params must be an object, not {type(params).__name__}")
        kind = params.get("kind")
        if kind not in _KINDS:
            raise ValueError(f"{where}: params kind {kind!r} is not one of {', '.join(_KINDS)}")
        if kind == "text" and not isinstance(params.get("query"), str):
            raise ValueError(f"{where}: a text search needs its query")
        if kind == "image" and not (_is_int(params.get("item")) or isinstance(params.get("path"), str)):
            raise ValueError(f"{where}: an image search needs its item id or path")
        if kind == "refine" and not _int_list(params.get("positives")):
            raise ValueError(f"{where}: a refine round needs its positives (a list of item ids)")
        if kind == "refine" and not _int_list(params.get("negatives", [])):
            raise ValueError(f"{where}: negatives must be a list of item ids")
        total = entry.get("total")
        if not isinstance(total, int) or isinstance(total, bool) or total < 0:
            raise ValueError(f"{where}: total must be a non-negative integer, not {total!r}")
        if not _int_list(entry.get("top")):
            raise ValueError(f"{where}: top must be a list of item ids")
        timings = entry.get("timings_ms", {})
        if not isinstance(timings, dict):
            raise ValueError(f"{where}: timings_ms must be an object")
    return list(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_list(value: Any) -> bool:
    return isinstance(value, list) and all(_is_int(i) for i in value)


def _keys(states: dict[int, str]) -> dict[str, str]:
    return {str(i): s for i, s in states.items()}


def _ints(states: dict[str, str]) -> dict[int, str]:
    return {int(i): str(s) for i, s in states.items()}
