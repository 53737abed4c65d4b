"""Commands that build catalogs: ``train-head``, ``ingest``, ``index``, ``info``, ``verify``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from clipbranches.exceptions import ClipBranchesError, InvalidArgumentError
from clipbranches.store.catalog import HEAD_FILE, THUMBS_DIR, Catalog
from clipbranches.store.catalog_set import CatalogSet, is_catalog_set

if TYPE_CHECKING:
    from clipbranches.embed.encoders import Encoder

__all__ = ["emit", "index", "info", "ingest", "reproject", "train_head", "verify"]


def train_head(args: argparse.Namespace) -> int:
    from clipbranches.embed.head import HeadConfig, TrainConfig, save_heads, train_heads
    from clipbranches.embed.head.store import check_heads_path

    check_heads_path(args.out)  # before any encoding: a bad output path fails at once
    start = time.perf_counter()
    encoder, image_features, texts = (_catalog_pairs if Catalog.is_catalog(args.pairs) else _file_pairs)(args)
    pseudo = 0
    if args.pseudo_captions:
        from clipbranches.embed.encoders.imagenet import pseudo_captions

        missing = [i for i, text in enumerate(texts) if not text]
        for i, made in zip(missing, pseudo_captions(image_features[missing]), strict=True):
            texts[i] = made
        pseudo = len(missing)
    keep = [i for i, text in enumerate(texts) if text]
    _enough_pairs(args, len(keep))  # checked before encoding too; images may fail to decode
    text_features = encoder.encode_texts([str(texts[i]) for i in keep])
    encoded = time.perf_counter() - start
    head = HeadConfig(encoder.image_dim, encoder.text_dim, out_dim=args.out_dim, hidden=tuple(args.hidden))
    config = TrainConfig(epochs=args.epochs, koleo_weight=args.koleo, seed=args.seed, device=args.device)
    on_epoch = None if args.quiet else _epoch_line
    result = train_heads(image_features[keep], text_features, head, config, on_epoch=on_epoch)
    save_heads(result.heads, args.out)
    summary = {
        "pairs": len(keep),
        "pseudo_captions": pseudo,
        "encode_seconds": round(encoded, 2),
        "epochs": len(result.history),
        "best_epoch": result.best_epoch,
        "val_recall_at_1": round(result.val_recall_at_1, 4),
        "stopped": result.stop_reason,
        "out": str(args.out),
    }
    emit(summary, args.json)
    return 0


def _file_pairs(args: argparse.Namespace) -> tuple[Encoder, NDArray[np.float32], list[str | None]]:
    """The encoder, image features and captions (None: none) of a folder or table of images;
    without --pseudo-captions only the captioned images are encoded."""
    from clipbranches.embed.encoders import encode_files, make_encoder
    from clipbranches.embed.ingest import list_source

    listing = list_source(args.pairs)
    captions = listing["caption"].to_list()
    keep = list(range(len(captions))) if args.pseudo_captions else [i for i, c in enumerate(captions) if c]
    _enough_pairs(args, len(keep))
    encoder = _pseudo_checked(args, make_encoder(args.encoder, device=args.device))
    uris = [listing["uri"][i] for i in keep]
    parts = list(encode_files(encoder, uris, batch_size=args.batch_size, progress=not args.quiet))
    positions = np.concatenate([p for p, _ in parts])
    return encoder, np.concatenate([f for _, f in parts]), [captions[keep[i]] for i in positions.tolist()]


def _catalog_pairs(args: argparse.Namespace) -> tuple[Encoder, NDArray[np.float32], list[str | None]]:
    """The same from a catalog's kept features and its items' captions: nothing is encoded but
    the captions, by the catalog's own encoder (``--encoder`` does not apply)."""
    from clipbranches.embed.codes import load_features
    from clipbranches.embed.encoders import make_encoder

    catalog = Catalog.open(args.pairs)
    features = np.asarray(load_features(catalog), np.float32)
    encoder = _pseudo_checked(args, make_encoder(catalog.encoder or {}, device=args.device))
    return encoder, features, catalog.items["caption"].to_list()


def _enough_pairs(args: argparse.Namespace, pairs: int) -> None:
    if pairs < 10:
        what = "images" if args.pseudo_captions else "images with captions (or pass --pseudo-captions)"
        raise InvalidArgumentError(f"{args.pairs}: {pairs} {what}; at least 10 are needed")


def _pseudo_checked(args: argparse.Namespace, encoder: Encoder) -> Encoder:
    """``encoder``, if it can make pseudo-captions when they are asked for (before any encoding)."""
    if args.pseudo_captions and encoder.identity.get("kind") != "offline":
        raise InvalidArgumentError(
            "--pseudo-captions needs the offline towers (their image classifier names each image); "
            "open_clip's towers share a space already: ingest without --head"
        )
    return encoder


def reproject(args: argparse.Namespace) -> int:
    from clipbranches.embed.codes import load_features
    from clipbranches.embed.codes import reproject as run
    from clipbranches.embed.encoders import make_encoder
    from clipbranches.embed.head import AnyHeads, load_heads
    from clipbranches.embed.head.defaults import default_heads, describe

    source = Catalog.open(args.catalog)
    start = time.perf_counter()
    features = load_features(source)  # no features, no work: checked before any model loads
    heads: AnyHeads
    if args.head is not None:
        heads = load_heads(args.head, device=args.device or "cpu")
    else:  # fitted on the kept features, as ingest fits them on the encoded images
        projection = default_heads(make_encoder(source.encoder or {}, device=args.device), features)
        heads, described = projection, describe(projection, len(features))
    catalog = run(source, args.out, heads, overwrite=args.overwrite)
    summary = {
        "catalog": str(catalog.path),
        "items": len(catalog),
        "heads": str(args.head) if args.head else described,
        "seconds": round(time.perf_counter() - start, 2),
    }
    emit(summary, args.json)
    return 0


def _epoch_line(record: dict[str, float]) -> None:
    """One progress line per training epoch, on stderr (stdout stays the summary, or JSON)."""
    print(
        f"epoch {int(record['epoch']):3d}  loss {record['loss']:.4f}  validation R@1 {record['val_r1']:.3f}"
        f"  validation loss {record['val_loss']:.4f}  {record['seconds']:.1f} s",
        file=sys.stderr,
        flush=True,
    )


def ingest(args: argparse.Namespace) -> int:
    from clipbranches.embed.encoders import make_encoder
    from clipbranches.embed.head import load_heads
    from clipbranches.embed.ingest import ingest as run

    if args.shard_size is None and args.cluster is not None:
        raise InvalidArgumentError("--cluster ingests the shards of a catalog set: give --shard-size too")
    encoder = make_encoder(args.encoder, device=args.device)
    heads = None if args.head is None else load_heads(args.head, device=getattr(encoder, "device", "cpu"))
    if args.shard_size is not None:
        return _ingest_set(args, encoder, heads)
    catalog, report = run(args.source, args.catalog, **_ingest_options(args, encoder, heads))
    summary = {
        "catalog": str(catalog.path),
        "heads": str(args.head) if args.head else report.default_heads,
        "items": report.items,
        "skipped": len(report.skipped),
        "near_duplicates": len(report.near_duplicates),
        "resumed_chunks": report.resumed_chunks,
    }
    _emit_ingest(summary, report, args)
    return 0


def _ingest_options(args: argparse.Namespace, encoder: Any, heads: Any) -> dict[str, Any]:
    """What a single ingest and a set's ingest both take from the command line."""
    return {
        "encoder": encoder,
        "heads": heads,
        "chunk_size": args.chunk_size,
        "batch_size": args.batch_size,
        "overwrite": args.overwrite,
        "drop_near_duplicates": args.drop_near_duplicates,
        "keep_features": args.keep_features,
        "progress": not args.quiet,
    }


def _emit_ingest(summary: dict[str, Any], report: Any, args: argparse.Namespace) -> None:
    """An ingest's summary, then its skipped files and near-duplicates (one catalog or a set)."""
    fate = "dropped" if args.drop_near_duplicates else "kept; --drop-near-duplicates leaves them out"
    if args.json:
        near = [{"path": path, "same_codes_as": first} for path, first in report.near_duplicates]
        files = {"skipped_files": report.skipped, "near_duplicate_files": near}
        print(json.dumps({**summary, **files, "near_duplicates_dropped": args.drop_near_duplicates}))
        return
    print("\n".join(f"{k}: {v}" for k, v in summary.items()))
    for path, reason in report.skipped:
        print(f"  skipped {path}: {reason}")
    for path, first in report.near_duplicates:
        print(f"  near-duplicate {path}: the same codes as {first} ({fate})")


def _ingest_set(args: argparse.Namespace, encoder: Any, heads: Any) -> int:
    """``ingest --shard-size N``: a catalog set at the target, one shard per N images."""
    from clipbranches.embed.ingest_set import ingest_set

    catalog_set, report = ingest_set(
        args.source,
        args.catalog,
        shard_size=args.shard_size,
        cluster=args.cluster,
        **_ingest_options(args, encoder, heads),
    )
    summary = {
        "catalog_set": str(catalog_set.path),
        "heads": str(args.head) if args.head else report.default_heads,
        "items": report.items,
        "shards": report.shards,
        "shard_items": report.shard_items,
        "skipped": len(report.skipped),
        "near_duplicates": len(report.near_duplicates),
        "resumed_shards": report.resumed_shards,
        "resumed_chunks": report.resumed_chunks,
    }
    _emit_ingest(summary, report, args)
    return 0


def index(args: argparse.Namespace) -> int:
    if is_catalog_set(args.catalog):
        return _index_set(args)
    catalog = Catalog.open(args.catalog)
    start = time.perf_counter()
    built = catalog.build_index(block_items=args.block_items)
    summary = {
        "catalog": str(catalog.path),
        "items": len(catalog),
        "seconds": round(time.perf_counter() - start, 2),
        "bytes": built.nbytes,
    }
    emit(summary, args.json)
    return 0


def info(args: argparse.Namespace) -> int:
    if is_catalog_set(args.catalog):
        return _info_set(args)
    catalog = Catalog.open(args.catalog)
    thumbs = catalog.path / THUMBS_DIR
    summary = {
        "catalog": str(catalog.path),
        "items": len(catalog),
        "dim": catalog.dim,
        "encoder": catalog.encoder,
        "head": catalog.manifest.get("head"),
        "head_file": (catalog.path / HEAD_FILE).is_file(),
        "quantizer": catalog.manifest["quantizer"],
        "index": _index_state(catalog),
        "thumbnails": sum(1 for _ in thumbs.iterdir()) if thumbs.is_dir() else 0,
        "columns": catalog.items.columns,
    }
    emit(summary, args.json)
    return 0


def verify(args: argparse.Namespace) -> int:
    if is_catalog_set(args.catalog):
        catalog_set = CatalogSet.open(args.catalog)  # every shard checked against the set manifest
        catalog_set.verify()  # checksums of every data file of every shard
        states = [_verified_index(shard) for shard in catalog_set.shards]
        summary = {"catalog_set": str(catalog_set.path), "shards": len(states), "items": len(catalog_set)}
        emit({**summary, "data": "ok", "index": _count_states(states, lambda state: state == "ok", "ok")}, args.json)
        return 0
    catalog = Catalog.open(args.catalog)
    catalog.verify()  # checksums of every data file
    emit(
        {"catalog": str(catalog.path), "items": len(catalog), "data": "ok", "index": _verified_index(catalog)},
        args.json,
    )
    return 0


def _verified_index(catalog: Catalog) -> str:
    if not catalog.has_index:
        return "none (build it with `clipbranches index CATALOG`)"
    _ = catalog.index  # opening checks the header, the catalog's checksum and the payload's
    return "ok"


def _index_state(catalog: Catalog) -> str:
    if not catalog.has_index:
        return "none (build it with `clipbranches index CATALOG`)"
    try:
        return f"{catalog.index.nbytes:,} bytes"
    except ClipBranchesError as e:  # stale or corrupt: report it, do not fail
        return f"unusable ({type(e).__name__}: {e})"


def _count_states(states: list[str], good: Callable[[str], bool], all_good: str) -> str:
    """``all_good`` when every shard's state is good, else how many are and the first other one."""
    others = [state for state in states if not good(state)]
    if not others:
        return all_good
    return f"{len(states) - len(others)} of {len(states)} shards; the others: {others[0]}"


def _index_set(args: argparse.Namespace) -> int:
    """``index`` on a catalog set: (re)build every shard's index."""
    catalog_set = CatalogSet.open(args.catalog)
    start = time.perf_counter()
    nbytes = sum(shard.build_index(block_items=args.block_items).nbytes for shard in catalog_set.shards)
    summary = {
        "catalog_set": str(catalog_set.path),
        "shards": len(catalog_set.shards),
        "items": len(catalog_set),
        "seconds": round(time.perf_counter() - start, 2),
        "bytes": nbytes,
    }
    emit(summary, args.json)
    return 0


def _info_set(args: argparse.Namespace) -> int:
    """``info`` on a catalog set: what they share, then one line per shard."""
    catalog_set = CatalogSet.open(args.catalog)
    states = [_index_state(shard) for shard in catalog_set.shards]
    shards = [
        {"shard": info.name, "items": info.count, "first_row": info.offset, "ids": info.ids, "index": state}
        for info, state in zip(catalog_set.infos, states, strict=True)
    ]
    summary = {
        "catalog_set": str(catalog_set.path),
        "items": len(catalog_set),
        "dim": catalog_set.dim,
        "encoder": catalog_set.encoder,
        "head": catalog_set.identity.get("head"),
        "index": _count_states(states, lambda state: state.endswith(" bytes"), "every shard"),
        "shards": shards if args.json else len(shards),
    }
    emit(summary, args.json)
    if not args.json:
        for shard in shards:
            print("  " + "  ".join(f"{k} {v}" for k, v in shard.items()))
    return 0


def emit(summary: dict[str, Any], as_json: bool) -> None:
    """A summary as one JSON object or as ``key: value`` lines."""
    print(json.dumps(summary, default=str) if as_json else "\n".join(f"{k}: {v}" for k, v in summary.items()))
