"""Commands that build catalogs: ``train-head``, ``ingest``, ``index``, ``info``, ``verify``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np

from clipbranches.exceptions import ClipBranchesError, InvalidArgumentError
from clipbranches.store.catalog import HEAD_FILE, THUMBS_DIR, Catalog

__all__ = ["emit", "index", "info", "ingest", "train_head", "verify"]


def train_head(args: argparse.Namespace) -> int:
    from clipbranches.embed.encoders import encode_files, make_encoder
    from clipbranches.embed.head import HeadConfig, TrainConfig, save_heads, train_heads
    from clipbranches.embed.head.store import check_heads_path
    from clipbranches.embed.ingest import list_source

    check_heads_path(args.out)  # before any encoding: a bad output path fails at once
    listing = list_source(args.pairs)
    captions = listing["caption"].to_list()
    keep = list(range(len(captions))) if args.pseudo_captions else [i for i, c in enumerate(captions) if c]
    if len(keep) < 10:
        what = "images" if args.pseudo_captions else "images with captions (or pass --pseudo-captions)"
        raise InvalidArgumentError(f"{args.pairs}: {len(keep)} {what}; at least 10 are needed")
    encoder = make_encoder(args.encoder, device=args.device)
    if args.pseudo_captions and encoder.identity.get("kind") != "offline":
        raise InvalidArgumentError(
            "--pseudo-captions needs the offline towers (their image classifier names each image); "
            "open_clip's towers share a space already: ingest without --head"
        )
    uris = [listing["uri"][i] for i in keep]
    start = time.perf_counter()
    parts = list(encode_files(encoder, uris, batch_size=args.batch_size, progress=not args.quiet))
    positions = np.concatenate([p for p, _ in parts])
    image_features = np.concatenate([f for _, f in parts])
    texts = [captions[keep[i]] for i in positions.tolist()]
    pseudo = 0
    if args.pseudo_captions:
        from clipbranches.embed.encoders.imagenet import pseudo_captions

        missing = [i for i, text in enumerate(texts) if not text]
        for i, made in zip(missing, pseudo_captions(image_features[missing]), strict=True):
            texts[i] = made
        pseudo = len(missing)
    text_features = encoder.encode_texts(texts)
    encoded = time.perf_counter() - start
    head = HeadConfig(encoder.image_dim, encoder.text_dim, out_dim=args.out_dim, hidden=tuple(args.hidden))
    config = TrainConfig(epochs=args.epochs, koleo_weight=args.koleo, seed=args.seed, device=args.device)
    result = train_heads(image_features, text_features, head, config, on_epoch=None if args.quiet else _epoch_line)
    save_heads(result.heads, args.out)
    summary = {
        "pairs": len(positions),
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


def _default_heads_name(config: dict[str, Any]) -> str:
    """What ingest without --head used, in words."""
    how = "ConSE + PCA-32 of the class prompts" if config.get("join") == "conse" else "PCA-32 of the shared space"
    return f"default, no captions needed ({how})"


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

    encoder = make_encoder(args.encoder, device=args.device)
    heads = None if args.head is None else load_heads(args.head, device=getattr(encoder, "device", "cpu"))
    catalog, report = run(
        args.source,
        args.catalog,
        encoder=encoder,
        heads=heads,
        chunk_size=args.chunk_size,
        batch_size=args.batch_size,
        overwrite=args.overwrite,
        drop_near_duplicates=args.drop_near_duplicates,
        progress=not args.quiet,
    )
    summary = {
        "catalog": str(catalog.path),
        "heads": str(args.head) if args.head else _default_heads_name(catalog.manifest.get("head") or {}),
        "items": report.items,
        "skipped": len(report.skipped),
        "near_duplicates": len(report.near_duplicates),
        "resumed_chunks": report.resumed_chunks,
    }
    fate = "dropped" if args.drop_near_duplicates else "kept; --drop-near-duplicates leaves them out"
    if args.json:
        near = [{"path": path, "same_codes_as": first} for path, first in report.near_duplicates]
        files = {"skipped_files": report.skipped, "near_duplicate_files": near}
        print(json.dumps({**summary, **files, "near_duplicates_dropped": args.drop_near_duplicates}))
    else:
        print("\n".join(f"{k}: {v}" for k, v in summary.items()))
        for path, reason in report.skipped:
            print(f"  skipped {path}: {reason}")
        for path, first in report.near_duplicates:
            print(f"  near-duplicate {path}: the same codes as {first} ({fate})")
    return 0


def index(args: argparse.Namespace) -> int:
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
    catalog = Catalog.open(args.catalog)
    thumbs = catalog.path / THUMBS_DIR
    index_state = "none (build it with `clipbranches index CATALOG`)"
    if catalog.has_index:
        try:
            index_state = f"{catalog.index.nbytes:,} bytes"
        except ClipBranchesError as e:  # stale or corrupt: report it, do not fail
            index_state = f"unusable ({type(e).__name__}: {e})"
    summary = {
        "catalog": str(catalog.path),
        "items": len(catalog),
        "dim": catalog.dim,
        "encoder": catalog.encoder,
        "head": catalog.manifest.get("head"),
        "head_file": (catalog.path / HEAD_FILE).is_file(),
        "quantizer": catalog.manifest["quantizer"],
        "index": index_state,
        "thumbnails": sum(1 for _ in thumbs.iterdir()) if thumbs.is_dir() else 0,
        "columns": catalog.items.columns,
    }
    emit(summary, args.json)
    return 0


def verify(args: argparse.Namespace) -> int:
    catalog = Catalog.open(args.catalog)
    catalog.verify()  # checksums of every data file
    index_state = "none (build it with `clipbranches index CATALOG`)"
    if catalog.has_index:
        _ = catalog.index  # opening checks the header, the catalog's checksum and the payload's
        index_state = "ok"
    emit({"catalog": str(catalog.path), "items": len(catalog), "data": "ok", "index": index_state}, args.json)
    return 0


def emit(summary: dict[str, Any], as_json: bool) -> None:
    """A summary as one JSON object or as ``key: value`` lines."""
    print(json.dumps(summary, default=str) if as_json else "\n".join(f"{k}: {v}" for k, v in summary.items()))
