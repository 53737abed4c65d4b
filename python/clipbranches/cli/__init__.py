"""The ``clipbranches`` command.

Exit codes: 0 success, 2 bad input (a typed clipbranches error or a bad argument), 1 internal
error, 130 interrupted. A failure prints one line on stderr (``clipbranches CMD: message``),
never a traceback; with ``--json`` it also prints one JSON object on stdout,
``{"error": {"type": ..., "message": ..., "exit": ...}}``. Heavy packages (torch, the towers,
textual) load only inside the subcommands that need them.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from clipbranches._core import DEFAULT_BLOCK_ITEMS
from clipbranches.cli import build, search
from clipbranches.embed.encoders.factory import SPEC_HELP
from clipbranches.exceptions import ClipBranchesError
from clipbranches.learn.registry import DEFAULT_MODEL, MODELS
from clipbranches.options import DEFAULT_K, RefineOptions

__all__ = ["main", "parser"]

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 1


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line (and a JSON object under ``--json``), exit 2."""

    def error(self, message: str) -> NoReturn:
        _fail(self.prog, "InvalidArgumentError", f"{message} (see {self.prog} --help)", EXIT_BAD_INPUT, _wants_json())


def _wants_json() -> bool:
    return "--json" in _ARGV


#: The argv of the running ``main`` (argparse errors happen before any namespace exists).
_ARGV: list[str] = []


def _fail(prog: str, kind: str, message: str, code: int, as_json: bool) -> NoReturn:
    line = " ".join(message.split())  # one line, whatever the message holds
    print(f"{prog}: {line}", file=sys.stderr)
    if as_json:
        print(json.dumps({"error": {"type": kind, "message": line, "exit": code}}))
    raise SystemExit(code)


def _at_least(low: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be {'at least 1' if low == 1 else f'{low} or more'}, got {value}")
        return value

    return parse


#: A positive count (items, epochs, sizes) and a non-negative amount (seeds, items to show).
_count = _at_least(1)
_amount = _at_least(0)


def _weight(text: str) -> float:
    """A finite, non-negative number."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _output(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")


def _encoding(p: argparse.ArgumentParser) -> None:
    p.add_argument("--encoder", default="offline", help=SPEC_HELP)
    p.add_argument("--device", default=None, help="cuda, cpu, ... (default: cuda when available)")
    p.add_argument("--batch-size", type=_count, default=64)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _output(p)


def _cluster(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cluster",
        default=None,
        help="serve a catalog set from a Ray cluster: auto, local or an address (needs clipbranches[cluster])",
    )


def _searching(p: argparse.ArgumentParser, catalog_optional: bool) -> None:
    if catalog_optional:
        p.add_argument("--catalog", type=Path, default=None, help="default: the session's catalog")
    else:
        p.add_argument("catalog", type=Path)
    p.add_argument("--session", type=Path, default=None, help="a session file (created if missing)")
    p.add_argument("--build-index", action="store_true", help="build the catalog's index first if it has none")
    _cluster(p)
    p.add_argument("--show", type=_amount, default=20, help="items to print (0: none)")
    _output(p)


def _building_commands(sub: argparse._SubParsersAction[_Parser]) -> None:
    t = sub.add_parser("train-head", help="train the image and text heads on (image, caption) pairs")
    t.add_argument(
        "pairs",
        type=Path,
        help="a folder of images with .txt captions, a CSV/parquet, or a catalog ingested with --keep-features",
    )
    t.add_argument(
        "--pseudo-captions",
        action="store_true",
        help="caption images that have none by the image tower's own ImageNet classifier (offline towers)",
    )
    t.add_argument("out", type=Path, help="where to write the heads (.safetensors)")
    t.add_argument("--hidden", type=_count, nargs="+", default=[1024])
    t.add_argument("--out-dim", type=_count, default=32)
    t.add_argument("--epochs", type=_count, default=50)
    t.add_argument("--koleo", type=_weight, default=0.5, help="KoLeo weight (0: plain CLIP loss)")
    t.add_argument("--seed", type=_amount, default=0)
    _encoding(t)
    t.set_defaults(run=build.train_head)

    i = sub.add_parser("ingest", help="encode an image collection into a catalog (resumable)")
    i.add_argument("source", type=Path, help="a folder of images, or a CSV/parquet with a path or url column")
    i.add_argument("catalog", type=Path)
    i.add_argument(
        "--head",
        type=Path,
        default=None,
        help="heads from train-head (.safetensors); default: heads that need no captions "
        "(open_clip: PCA-32 of its shared space; offline: ConSE + PCA-32)",
    )
    i.add_argument("--chunk-size", type=_count, default=1024)
    i.add_argument(
        "--shard-size",
        type=_count,
        default=None,
        help="make a catalog set at CATALOG, one shard per this many images (default: one catalog)",
    )
    i.add_argument(
        "--cluster",
        default=None,
        help="with --shard-size: ingest the shards through a Ray Data pipeline on a cluster (decode on CPU "
        "tasks, encode on GPU actors where there are GPUs): auto, local or an address (needs clipbranches[cluster])",
    )
    i.add_argument("--overwrite", action="store_true")
    i.add_argument(
        "--drop-near-duplicates",
        action="store_true",
        help="leave out images whose codes equal an earlier image's (always listed; exact copies are always skipped)",
    )
    i.add_argument(
        "--keep-features",
        action="store_true",
        help="keep the image tower's features (float16) so `reproject` can apply other heads without encoding again",
    )
    _encoding(i)
    i.set_defaults(run=build.ingest)

    p = sub.add_parser("reproject", help="new codes from other heads, using the features a catalog kept")
    p.add_argument("catalog", type=Path, help="a catalog ingested with --keep-features")
    p.add_argument("out", type=Path, help="the new catalog (may be CATALOG itself, with --overwrite)")
    p.add_argument("--head", type=Path, default=None, help="heads from train-head (default: the default heads)")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--device", default=None, help="cuda, cpu, ... (default: cuda when available)")
    _output(p)
    p.set_defaults(run=build.reproject)

    x = sub.add_parser("index", help="build (or rebuild) a catalog's index")
    x.add_argument("catalog", type=Path)
    x.add_argument("--block-items", type=_count, default=DEFAULT_BLOCK_ITEMS)
    _output(x)
    x.set_defaults(run=build.index)

    n = sub.add_parser("info", help="what a catalog holds")
    n.add_argument("catalog", type=Path)
    _output(n)
    n.set_defaults(run=build.info)

    v = sub.add_parser("verify", help="check every file of a catalog (and its index) against its checksums")
    v.add_argument("catalog", type=Path)
    _output(v)
    v.set_defaults(run=build.verify)


def _search_commands(sub: argparse._SubParsersAction[_Parser]) -> None:
    s = sub.add_parser("search", help="the items nearest to a text, an image file or an item")
    _searching(s, catalog_optional=False)
    s.add_argument("query", nargs="?", default=None, help="a text query")
    s.add_argument("--image", type=str, default=None, help="an image file or an http(s) URL as the query")
    s.add_argument("--item", type=int, default=None, help="a catalog item id as the query")
    s.add_argument("-k", "--k", type=_count, default=DEFAULT_K, help="how many neighbours")
    s.set_defaults(run=search.search)

    r = sub.add_parser("refine", help="train a model on labels and apply it to the whole catalog")
    _searching(r, catalog_optional=True)
    r.add_argument("--positive", type=int, nargs="+", default=[], metavar="ID")
    r.add_argument("--negative", type=int, nargs="+", default=[], metavar="ID")
    r.add_argument("--model", default=DEFAULT_MODEL, help=f"one of {', '.join(MODELS)} (default {DEFAULT_MODEL})")
    low, high = RefineOptions.RANDOM_NEGATIVES
    r.add_argument("--random-negatives", type=int, default=RefineOptions.random_negatives, help=f"{low}..{high}")
    low, high = RefineOptions.NEGATIVE_WEIGHT
    r.add_argument("--negative-weight", type=int, default=RefineOptions.negative_weight, help=f"{low}..{high}")
    r.add_argument("--seed", type=_amount, default=None, help="default: a fresh one (recorded in the session)")
    r.add_argument("--rules", action="store_true", help="print the model's rules and SQL (branch, ensemble)")
    r.add_argument("--export", type=Path, default=None, help="also write every result (.parquet or .csv)")
    r.set_defaults(run=search.refine)

    e = sub.add_parser("export", help="write a session round's results (or its labels) to parquet or CSV")
    e.add_argument("out", type=Path, help="target .parquet or .csv")
    e.add_argument("--session", type=Path, required=True)
    e.add_argument("--catalog", type=Path, default=None, help="default: the session's catalog")
    e.add_argument("--round", type=int, default=-1, help="which round (default: the last)")
    e.add_argument("--labels", action="store_true", help="write the labels instead of the results")
    _cluster(e)
    e.set_defaults(run=search.export)

    u = sub.add_parser("tui", help="the terminal UI (search, label, refine)")
    u.add_argument("catalog", type=Path, help="a catalog, or a folder of catalogs")
    u.add_argument("--renderer", default="auto", help="image previews: auto, kitty, sixel, halfcell, none")
    u.add_argument(
        "--session", type=Path, default=None, help="resume this session file and save labels and rounds to it"
    )
    u.set_defaults(run=search.tui)

    w = sub.add_parser("serve", help="an HTTP API and a web page for searching and labelling (the serve extra)")
    w.add_argument("catalogs", nargs="+", metavar="CATALOG", help="a catalog or catalog set, or NAME=PATH")
    w.add_argument("--host", default="127.0.0.1", help="the address to bind (default: loopback only)")
    w.add_argument("--port", type=_amount, default=8000, help="the port (default 8000; 0: any free one)")
    w.add_argument(
        "--public", action="store_true", help="allow a non-loopback --host; every request then needs the token"
    )
    w.add_argument(
        "--token", default=None, help="the access token (default: none on loopback, a random one with --public)"
    )
    w.add_argument("--state-dir", type=Path, default=None, help="where sessions are kept (default: the XDG state dir)")
    w.add_argument("--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug"))
    _cluster(w)
    w.set_defaults(run=search.serve)

    d = sub.add_parser("demo", help="build a catalog of real images (offline), then the UI or a text round")
    d.add_argument("--dir", type=Path, default=Path("demo-data"), help="where the demo's catalog lives")
    d.add_argument("--dataset", choices=("openclipart", "fashion-mnist"), default="openclipart")
    d.add_argument("--limit", type=_count, default=None, help="use only this many images (spread over classes)")
    d.add_argument("--epochs", type=_count, default=30, help="head training epochs")
    d.add_argument("--encoder", default="offline", help=f"{SPEC_HELP} (real CLIP weights)")
    d.add_argument("--no-tui", action="store_true", help="print a text search and one refine round instead")
    d.add_argument("--query", default=None, help="the text round's query (default: the dataset's)")
    d.add_argument("--model", default=None, help=f"the text round's model (default {DEFAULT_MODEL})")
    d.add_argument("--renderer", default="auto", help="image previews: auto, kitty, sixel, halfcell, none")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.set_defaults(run=search.demo)


def parser() -> argparse.ArgumentParser:
    top = _Parser(prog="clipbranches", description="Interactive text-to-image search.")
    sub = top.add_subparsers(dest="command", required=True, parser_class=_Parser)
    _building_commands(sub)
    _search_commands(sub)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    _ARGV[:] = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser().parse_args(_ARGV)
    except SystemExit as e:  # --help, or an argparse error already reported in one line
        return int(e.code or 0)
    prog = f"clipbranches {args.command}"
    as_json = bool(getattr(args, "json", False))
    try:
        code: int = args.run(args)
    except ClipBranchesError as e:
        return _exit(prog, type(e).__name__, str(e), EXIT_BAD_INPUT, as_json)
    except KeyboardInterrupt:
        return _exit(prog, "Interrupted", "interrupted (an ingest resumes where it stopped)", 130, as_json)
    except (SystemExit, GeneratorExit):
        raise
    except BaseException as e:  # noqa: BLE001 (an internal error, even a native panic: one line, a distinct code)
        return _exit(prog, "InternalError", f"internal error: {type(e).__name__}: {e}", EXIT_INTERNAL, as_json)
    return code


def _exit(prog: str, kind: str, message: str, code: int, as_json: bool) -> int:
    try:
        _fail(prog, kind, message, code, as_json)
    except SystemExit as e:
        return int(e.code or 0)
