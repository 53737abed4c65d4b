"""Commands that search: ``search``, ``refine``, ``export``, ``tui``.

A session file (``--session``) carries labels and rounds between calls, so a search can go on
over several commands and be reproduced (every round records its seed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from clipbranches.engine import SearchEngine
from clipbranches.exceptions import InvalidArgumentError, MissingDependencyError, SessionFormatError
from clipbranches.results import Results
from clipbranches.session import Session

__all__ = ["demo", "export", "refine", "search", "tui"]

#: The models applied through the index, which have rules.
BOX_MODELS = ("branch", "ensemble")


def _open(catalog: Path | None, session: Session | None, build_index: bool, cluster: str | None = None) -> SearchEngine:
    path = catalog if catalog is not None else Path(session.catalog) if session and session.catalog else None
    if path is None:
        raise InvalidArgumentError("name the catalog (CATALOG or --catalog) or a --session that records one")
    engine = SearchEngine.open(path, build_index=build_index, cluster=cluster)
    if session is not None:
        session.check_catalog(engine)
    return engine


def _session(path: Path | None, must_exist: bool = False) -> Session | None:
    """The session at ``path`` (a new one if missing), checked before any work: a session that
    cannot be saved where asked is an error now, not after the search has run."""
    if path is None:
        return None
    if path.exists():
        return Session.load(path)
    if must_exist:
        raise SessionFormatError(f"{path}: no session file here")
    if not path.parent.is_dir():
        raise InvalidArgumentError(f"cannot keep the session in {path}: {path.parent} is not a directory")
    return Session()


def _check_export_target(path: Path) -> None:
    if path.suffix.lower() not in (".parquet", ".csv"):
        raise InvalidArgumentError(f"export to .parquet or .csv, not {path.name!r}")
    if not path.parent.is_dir():
        raise InvalidArgumentError(f"cannot export to {path}: {path.parent} is not a directory")
    if path.is_dir():
        raise InvalidArgumentError(f"cannot export to {path}: it is a directory")


def _warn_without_index(engine: SearchEngine, model: str | None) -> None:
    if model is not None and not engine.has_index and model in BOX_MODELS:
        print(
            f"note: {engine.catalog.path} has no index, so the {model} model scans every item (slower); "
            f"build it with `clipbranches index {engine.catalog.path}` or pass --build-index",
            file=sys.stderr,
        )


#: Widest uri shown in the table; longer ones keep their end (the file name).
URI_WIDTH = 60


def _short_uri(uri: str, width: int = URI_WIDTH) -> str:
    """``uri`` shortened from the left to ``width`` characters, keeping the file name and as
    many of its folders as fit: ``…/folder/name.jpg`` (a name longer than ``width`` keeps its end)."""
    if len(uri) <= width:
        return uri
    parts = uri.split("/")
    kept = parts[-1]
    for part in reversed(parts[:-1]):
        if len(part) + len(kept) + 3 > width:  # "…/" plus the joining "/"
            break
        kept = f"{part}/{kept}"
    return "…" + (f"/{kept}" if len(kept) + 2 <= width else kept[-(width - 1) :])


def _report(results: Results, show: int, as_json: bool, extra: dict[str, Any] | None = None) -> None:
    """The results as a table with a header line, or one JSON object (``--json``).

    A nearest-neighbour search (text or image query) ranks by squared distance to the query;
    its table shows that distance (smaller is nearer) in a ``distance`` column, where the raw
    score is the negated distance. A refine round's table shows the model's score. Under
    ``--json`` every item keeps its raw ``score``, and a nearest-neighbour search's items carry
    ``distance`` too.
    """
    table = results.page(0, show).to_polars() if show else None
    nearest = results.params.get("kind") in ("text", "image")
    if as_json:
        items: list[dict[str, Any]] = [] if table is None else table.to_dicts()
        if nearest:
            items = [item | {"distance": -item["score"]} for item in items]
        out = {"total": results.total, "timings_ms": results.timings, "params": results.params, "items": items}
        print(json.dumps(out | (extra or {}), default=str))
        return
    stages = ", ".join(f"{k} {v:.1f}" for k, v in results.timings.items())
    print(f"{results.total:,} items ({stages} ms)")
    if table is not None and len(table):
        texts = [c for c in ("caption", "uri") if c in table.columns]
        value = "distance" if nearest else "score"
        captions = [str(c or "")[:URI_WIDTH] for c in table["caption"]] if "caption" in texts else []
        wide = max((len(c) for c in captions), default=0) if "uri" in texts else 0
        header = [f"{'rank':>5}", f"{'id':>10}", f"{value:>10}"]
        print("  ".join(header + [t.ljust(wide) if t == "caption" else t for t in texts]).rstrip())
        for n, row in enumerate(table.iter_rows(named=True)):
            # "+": a positive the user labelled (a round always returns those first).
            mark = "+" if row.get("labelled") else " "
            shown = -row["score"] if nearest else row["score"]
            cells = [f"{row['rank']:>5}", f"{mark}{row['id']:>9}", f"{shown:>10.3f}"]
            if captions:
                cells.append(captions[n].ljust(wide))
            if "uri" in texts:
                cells.append(_short_uri(str(row["uri"] or "")))
            print("  ".join(cells).rstrip())


def search(args: argparse.Namespace) -> int:
    session = _session(args.session)
    engine = _open(args.catalog, session, args.build_index, args.cluster)
    given = [q for q in (args.query, args.image, args.item) if q is not None]
    if len(given) != 1:
        raise InvalidArgumentError("give exactly one query: TEXT, --image PATH or --item ID")
    if args.item is not None:
        results = engine.search_image(args.item, k=args.k)
    elif args.image is not None:
        results = engine.search_image(args.image, k=args.k)
    else:
        results = engine.search_text(args.query, k=args.k)
    if session is not None:
        if not session.catalog:
            session = Session.for_engine(engine)
        session.record(results)
        session.save(args.session)
    _report(results, min(args.show, args.k), args.json)
    return 0


def refine(args: argparse.Namespace) -> int:
    session = _session(args.session)
    engine = _open(args.catalog, session, args.build_index, args.cluster)
    if session is not None and not session.catalog:
        session = Session.for_engine(engine)
    options: dict[str, Any] = {
        "model": args.model,
        "random_negatives": args.random_negatives,
        "negative_weight": args.negative_weight,
        "seed": args.seed,
    }
    if args.rules and args.model not in BOX_MODELS:
        raise InvalidArgumentError(f"the {args.model} model has no rules: only {' and '.join(BOX_MODELS)} do")
    if args.export is not None:  # checked before the round runs, not after
        _check_export_target(args.export)
    _warn_without_index(engine, args.model)
    if session is None:
        results = engine.refine(args.positive, args.negative, **options)
    else:
        # New labels join the session's; ids are checked before the session changes.
        engine.catalog.find(args.positive + args.negative)
        session.label(args.positive, "positive")
        session.label(args.negative, "negative")
        results = session.refine(engine, **options)
        session.save(args.session)
    rules = results.rules() if args.rules else None
    if args.export is not None:
        results.export(args.export)
    # With --json, one JSON object on stdout: the rules go inside it, never beside it.
    extra = {"rules": {"text": str(rules), "sql": rules.sql()}} if rules is not None else None
    _report(results, args.show, args.json, extra)
    if rules is not None and not args.json:
        print(f"{rules}\n\nSQL:\n{rules.sql()}")
    return 0


def export(args: argparse.Namespace) -> int:
    session = _session(args.session, must_exist=True)
    assert session is not None
    engine = _open(args.catalog, session, False, args.cluster)
    if args.labels:
        import polars as pl

        from clipbranches._io import atomic_write, check_path

        ids = sorted(session.labels)
        rows = engine.catalog.find(ids)
        table = engine.catalog.items[rows.tolist()].with_columns(
            pl.Series("label", [session.labels[i] for i in ids], dtype=pl.String)
        )
        target = check_path(args.out, "export")
        if target.suffix.lower() not in (".parquet", ".csv"):
            raise InvalidArgumentError(f"export to .parquet or .csv, not {target.name!r}")
        atomic_write(target, table.write_parquet if target.suffix.lower() == ".parquet" else table.write_csv, "export")
        print(f"{len(ids)} labels -> {target}")
        return 0
    if not session.rounds:
        raise InvalidArgumentError(f"{args.session} has no rounds to export yet: search or refine first")
    try:
        params = session.rounds[args.round]["params"]
    except IndexError:
        raise InvalidArgumentError(
            f"round {args.round} does not exist: the session has {len(session.rounds)}"
        ) from None
    results = engine.redo(params)  # same parameters and seed: the same results
    results.export(args.out)
    print(f"{results.total:,} items -> {args.out}")
    return 0


def tui(args: argparse.Namespace) -> int:
    # The UI is another distribution (clipbranches-tui); it registers itself under the
    # ``clipbranches.ui`` entry point, so the library never imports it by name.
    from importlib.metadata import entry_points

    install = "pip install ./tui from the repository (`make setup` does)"
    found = entry_points(group="clipbranches.ui", name="tui")
    if not found:
        raise MissingDependencyError(f"the terminal UI is not installed: {install}")
    try:
        run = next(iter(found)).load()
    except ImportError as e:  # registered, but it (or one of its dependencies) cannot be imported
        raise MissingDependencyError(f"the terminal UI is installed but cannot be imported ({e}): {install}") from e
    # ``demo`` starts the UI without a session (its namespace has none).
    run(args.catalog, renderer=args.renderer, session=getattr(args, "session", None))
    return 0


def serve(args: argparse.Namespace) -> int:
    from clipbranches._optional import require

    require("the web server (clipbranches serve)", "serve")
    from clipbranches.web.server import serve as run

    token = args.token if args.token is not None else os.environ.get("CLIPBRANCHES_TOKEN") or None
    run(
        args.catalogs,
        host=args.host,
        port=args.port,
        public=args.public,
        token=token,
        state_dir=args.state_dir,
        cluster=args.cluster,
        log_level=args.log_level,
    )
    return 0


def demo(args: argparse.Namespace) -> int:
    from clipbranches.demo import DATASETS, build_demo, demo_round
    from clipbranches.embed.encoders import make_encoder

    encoder = None if args.encoder == "offline" else make_encoder(args.encoder)
    path = build_demo(
        args.dir, args.dataset, limit=args.limit, epochs=args.epochs, encoder=encoder, progress=not args.quiet
    )
    no_tui = args.no_tui or not sys.stdout.isatty()
    if no_tui:
        if not args.no_tui:
            print("no terminal here: running the demo without the UI (--no-tui)", file=sys.stderr)
        query, wanted = DATASETS[args.dataset]
        demo_round(SearchEngine.open(path), args.query or query, wanted, model=args.model)
        return 0
    print(f"opening the terminal UI on {path} (press ? for the keys, ctrl+q to quit)")
    return tui(argparse.Namespace(catalog=path, renderer=args.renderer))
