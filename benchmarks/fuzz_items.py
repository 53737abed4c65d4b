"""Fuzz the items table of a catalog: mutate valid ``items.parquet`` files for N seconds and
check that every ``Catalog.open`` / ``item_ids`` / ``items`` either works or raises a
:class:`~clipbranches.ClipBranchesError`: never another exception, never a hang.

Usage: ``python benchmarks/fuzz_items.py [SECONDS] [--seed S] [--hang-seconds H]``
(``make fuzz`` runs it for FUZZ_SECONDS). Everything it reports goes to stdout; stderr carries
only the noise of polars' own panics on corrupt input (which it turns into errors). Inputs
that break the rule are saved under ``target/fuzz_items/failures`` and make the exit status 1;
a hang ends the process with the stacks of every thread (exit status 1).
"""

from __future__ import annotations

import argparse
import faulthandler
import io
import json
import random
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import polars as pl

from clipbranches import Catalog, ClipBranchesError

ROWS = 12
FAILURES = Path("target/fuzz_items/failures")


def _seed_tables(rng: random.Random) -> list[pl.DataFrame]:
    """Valid tables and tables one step from valid (what a mutation should still catch)."""
    ids = list(range(ROWS))
    base = pl.DataFrame(
        {
            "id": pl.Series(ids, dtype=pl.Int64),
            "uri": [f"file:///img/{i}.png" for i in ids],
            "caption": [f"a picture {i}" for i in ids],
            "width": pl.Series([64 + i for i in ids], dtype=pl.Int32),
            "height": pl.Series([48 + i for i in ids], dtype=pl.Int32),
            "label": [rng.choice(["cat", "dog", None]) for _ in ids],
        }
    )
    return [
        base,
        base.select("id"),
        base.with_columns(pl.col("id") * 1000 - 7),
        base.with_columns(pl.col("id").cast(pl.UInt64)),
        base.with_columns(pl.col("id").cast(pl.Int32)),
        base.with_columns(pl.col("id").cast(pl.String)),
        base.with_columns(pl.when(pl.col("id") == 3).then(None).otherwise(pl.col("id")).alias("id")),
        base.with_columns(pl.lit(1, dtype=pl.Int64).alias("id")),
        base.drop("id"),
        base.with_columns(pl.lit(0.5).alias("score")),
        base.with_columns(pl.col("width").cast(pl.String)),
        base.with_columns(pl.col("caption").cast(pl.Categorical)),
        base.head(ROWS - 1),
        pl.DataFrame({"id": pl.Series([2**63 + i for i in ids], dtype=pl.UInt64)}),
    ]


def _to_bytes(table: pl.DataFrame, rng: random.Random) -> bytes:
    buffer = io.BytesIO()
    table.write_parquet(
        buffer,
        compression=rng.choice(["uncompressed", "zstd", "snappy"]),
        statistics=rng.random() < 0.5,
        row_group_size=rng.choice([3, 5, ROWS]),
    )
    return buffer.getvalue()


def _mutate(data: bytes, other: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(6)
        at = rng.randrange(len(out)) if out else 0
        if op == 0 and out:
            out[at] ^= 1 << rng.randrange(8)
        elif op == 1 and out:
            out[at] = rng.choice([0, 0xFF, 0x7F, 0x80, rng.randrange(256)])
        elif op == 2 and out:
            del out[at : at + rng.randint(1, 16)]
        elif op == 3:
            out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == 4 and other:
            start = rng.randrange(len(other))
            out[at : at + 32] = other[start : start + 32]
        elif op == 5 and len(out) > 8:
            # The footer length (4 bytes before the closing PAR1) is where readers trust the file.
            end = len(out) - 8
            out[end : end + 4] = rng.randrange(1 << 32).to_bytes(4, "little")
    return bytes(out)


def _install(root: Path, data: bytes) -> None:
    """Put ``data`` in place of the items and record its size, so open reaches the items checks."""
    (root / "items.parquet").write_bytes(data)
    manifest_path = root / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["items.parquet"]["bytes"] = len(data)
    manifest_path.write_text(json.dumps(manifest))


def _exercise(root: Path) -> str:
    """``"ok"`` or ``"typed"``; any other exception propagates."""
    try:
        catalog = Catalog.open(root)
        _ = catalog.item_ids
        _ = catalog.items
        catalog.find(catalog.item_ids[:3].tolist())
    except ClipBranchesError:
        return "typed"
    return "ok"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("seconds", nargs="?", type=float, default=60.0, help="how long to fuzz (default 60)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: from the clock)")
    parser.add_argument("--hang-seconds", type=float, default=30.0, help="one input taking longer is a hang")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else time.time_ns() % (1 << 32)
    rng = random.Random(seed)
    seeds = [_to_bytes(t, rng) for t in _seed_tables(rng)]
    counts = {"ok": 0, "typed": 0, "failed": 0}
    with tempfile.TemporaryDirectory(prefix="fuzz-items-") as tmp:
        root = Path(tmp) / "catalog"
        codes = np.random.default_rng(seed).integers(0, 256, size=(ROWS, 8), dtype=np.uint8)
        Catalog.create(root, codes)
        deadline = time.monotonic() + args.seconds
        while time.monotonic() < deadline:
            data = rng.choice(seeds)
            if rng.random() < 0.9:
                data = _mutate(data, rng.choice(seeds), rng)
            _install(root, data)
            faulthandler.dump_traceback_later(args.hang_seconds, exit=True, file=sys.stdout)
            try:
                counts[_exercise(root)] += 1
            except BaseException as err:  # a panic is a BaseException: exactly what is hunted
                if isinstance(err, KeyboardInterrupt):
                    raise
                counts["failed"] += 1
                FAILURES.mkdir(parents=True, exist_ok=True)
                saved = FAILURES / f"items-{seed}-{counts['failed']}.parquet"
                shutil.copyfile(root / "items.parquet", saved)
                print(f"UNTYPED {type(err).__module__}.{type(err).__name__}: {err} (input saved to {saved})")
                traceback.print_exc(limit=4, file=sys.stdout)
            finally:
                faulthandler.cancel_dump_traceback_later()
    total = sum(counts.values())
    print(
        f"fuzz_items: seed {seed}, {total} inputs in {args.seconds:g} s: "
        f"{counts['ok']} opened, {counts['typed']} typed errors, {counts['failed']} untyped"
    )
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
