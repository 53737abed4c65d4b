"""The ``clipbranches`` command (this issue's part: ``train-head`` and ``ingest``).

Exit codes: 0 success, 2 bad input (a typed clipbranches error or a bad argument), 1 internal
error. Heavy packages (torch, the towers) load only inside the subcommands that need them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from clipbranches.exceptions import ClipBranchesError, InvalidArgumentError

if TYPE_CHECKING:
    from clipbranches.encoders import Encoder

__all__ = ["main"]

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 1


def make_encoder(spec: str, device: str | None) -> Encoder:
    """``offline`` or ``open_clip:MODEL[:PRETRAINED]`` (PRETRAINED: a tag, a checkpoint path,
    or ``random``)."""
    from clipbranches.encoders import OfflineEncoder, OpenClipEncoder

    if spec == "offline":
        return OfflineEncoder(device=device)
    kind, _, rest = spec.partition(":")
    if kind == "open_clip" and rest:
        model, _, pretrained = rest.partition(":")
        weights = None if pretrained == "random" else (pretrained or "openai")
        return OpenClipEncoder(model, weights, device=device)
    raise InvalidArgumentError(f"unknown encoder {spec!r}: use 'offline' or 'open_clip:MODEL[:PRETRAINED|random]'")


def train_head(args: argparse.Namespace) -> int:
    from clipbranches.encoders.files import encode_files
    from clipbranches.head import HeadConfig, TrainConfig, save_heads, train_heads
    from clipbranches.ingest import list_source

    listing = list_source(args.pairs)
    captions = listing["caption"].to_list()
    keep = [i for i, c in enumerate(captions) if c]
    if len(keep) < 10:
        raise InvalidArgumentError(f"{args.pairs}: {len(keep)} images with captions; at least 10 are needed")
    encoder = make_encoder(args.encoder, args.device)
    uris = [listing["uri"][i] for i in keep]
    start = time.perf_counter()
    parts = list(encode_files(encoder, uris, batch_size=args.batch_size, progress=not args.quiet))
    positions = np.concatenate([p for p, _ in parts])
    image_features = np.concatenate([f for _, f in parts])
    text_features = encoder.encode_texts([captions[keep[i]] for i in positions.tolist()])
    encoded = time.perf_counter() - start
    head = HeadConfig(encoder.image_dim, encoder.text_dim, out_dim=args.out_dim, hidden=tuple(args.hidden))
    config = TrainConfig(epochs=args.epochs, koleo_weight=args.koleo, seed=args.seed, device=args.device)
    result = train_heads(image_features, text_features, head, config)
    save_heads(result.heads, args.out)
    summary = {
        "pairs": len(positions),
        "encode_seconds": round(encoded, 2),
        "epochs": len(result.history),
        "best_epoch": result.best_epoch,
        "val_recall_at_1": round(result.val_recall_at_1, 4),
        "out": str(args.out),
    }
    print(json.dumps(summary) if args.json else "\n".join(f"{k}: {v}" for k, v in summary.items()))
    return 0


def ingest(args: argparse.Namespace) -> int:
    from clipbranches.head import load_heads
    from clipbranches.ingest import ingest as run

    encoder = make_encoder(args.encoder, args.device)
    heads = load_heads(args.head, device=getattr(encoder, "device", "cpu"))
    catalog, report = run(
        args.source,
        args.catalog,
        encoder=encoder,
        heads=heads,
        chunk_size=args.chunk_size,
        batch_size=args.batch_size,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    summary = {
        "catalog": str(catalog.path),
        "items": report.items,
        "skipped": len(report.skipped),
        "resumed_chunks": report.resumed_chunks,
    }
    if args.json:
        print(json.dumps({**summary, "skipped_files": report.skipped}))
    else:
        print("\n".join(f"{k}: {v}" for k, v in summary.items()))
        for path, reason in report.skipped:
            print(f"  skipped {path}: {reason}")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="clipbranches", description="Interactive text-to-image search.")
    sub = top.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--encoder", default="offline", help="offline | open_clip:MODEL[:PRETRAINED|random]")
        p.add_argument("--device", default=None, help="cuda, cpu, ... (default: cuda when available)")
        p.add_argument("--batch-size", type=int, default=64)
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.add_argument("--quiet", action="store_true", help="no progress bar")

    t = sub.add_parser("train-head", help="train the image and text heads on (image, caption) pairs")
    t.add_argument("pairs", type=Path, help="a folder of images with .txt captions, or a CSV/parquet")
    t.add_argument("out", type=Path, help="where to write the heads (.safetensors)")
    t.add_argument("--hidden", type=int, nargs="+", default=[1024])
    t.add_argument("--out-dim", type=int, default=32)
    t.add_argument("--epochs", type=int, default=50)
    t.add_argument("--koleo", type=float, default=0.5, help="KoLeo weight (0: plain CLIP loss)")
    t.add_argument("--seed", type=int, default=0)
    common(t)
    t.set_defaults(run=train_head)

    i = sub.add_parser("ingest", help="encode an image collection into a catalog (resumable)")
    i.add_argument("source", type=Path, help="a folder of images, or a CSV/parquet with a path or url column")
    i.add_argument("catalog", type=Path)
    i.add_argument("--head", type=Path, required=True, help="heads from train-head (.safetensors)")
    i.add_argument("--chunk-size", type=int, default=1024)
    i.add_argument("--overwrite", action="store_true")
    common(i)
    i.set_defaults(run=ingest)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except ClipBranchesError as e:
        print(f"clipbranches {args.command}: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"clipbranches {args.command}: interrupted (an ingest resumes where it stopped)", file=sys.stderr)
        return 130
    except Exception as e:  # an internal error: say so, with the type, and a distinct exit code
        print(f"clipbranches {args.command}: internal error: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_INTERNAL
    return code


if __name__ == "__main__":
    sys.exit(main())
