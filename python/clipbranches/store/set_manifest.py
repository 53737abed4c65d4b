"""A catalog set's manifest (``catalogset.json``): its format, reading and writing it, and
checking a shard against what it records (see :mod:`clipbranches.store.catalog_set`)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from clipbranches._io import dir_identity, read_bytes
from clipbranches.exceptions import (
    CatalogFormatError,
    CatalogNotFoundError,
    ClipBranchesError,
    InvalidArgumentError,
    ShardCorruptError,
    ShardMissingError,
)
from clipbranches.store.catalog import MANIFEST_FILE, Catalog

__all__ = [
    "SET_FORMAT",
    "SET_MANIFEST",
    "SET_VERSION",
    "SHARD_NAME",
    "ShardInfo",
    "check_disjoint_ids",
    "check_same_identity",
    "id_range",
    "identity_of",
    "manifest_bytes",
    "open_shard",
    "parse_manifest",
    "place_shard",
    "ranges_overlap",
    "sha256",
    "shard_info",
]


#: The file that makes a directory a catalog set (written last).
SET_MANIFEST = "catalogset.json"


SET_FORMAT = "clipbranches-catalog-set"


SET_VERSION = 1


SHARD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class ShardInfo:
    """One shard as the set manifest records it.

    Attributes
    ----------
    name
        Its directory, relative to the set (a plain name).
    count
        Items in it.
    offset
        The global row of its first item (the sum of the counts before it).
    manifest_sha256
        SHA-256 of its ``manifest.json`` (which holds the checksums of its data files).
    codes_blake3
        Its codes checksum (from its manifest).
    ids
        ``(smallest, largest)`` item id, or None for an empty shard.
    """

    name: str
    count: int
    offset: int
    manifest_sha256: str
    codes_blake3: str
    ids: tuple[int, int] | None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.name,
            "count": self.count,
            "offset": self.offset,
            "manifest_sha256": self.manifest_sha256,
            "codes_blake3": self.codes_blake3,
            "ids": list(self.ids) if self.ids is not None else None,
        }


def identity_of(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """What every shard of a set shares: the code width and the encoder, head and quantizer."""
    return {key: manifest.get(key) for key in ("dim", "encoder", "head", "quantizer")}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def id_range(ids: NDArray[np.int64]) -> tuple[int, int] | None:
    return (int(ids.min()), int(ids.max())) if len(ids) else None


def ranges_overlap(a: tuple[int, int] | None, b: tuple[int, int] | None) -> bool:
    return a is not None and b is not None and a[0] <= b[1] and b[0] <= a[1]


def check_disjoint_ids(names: Sequence[str], id_lists: Sequence[NDArray[np.int64]]) -> None:
    ranges = [id_range(ids) for ids in id_lists]
    for i in range(len(id_lists)):
        for j in range(i + 1, len(id_lists)):
            if not ranges_overlap(ranges[i], ranges[j]):
                continue
            both = np.intersect1d(id_lists[i], id_lists[j])
            if len(both):
                raise InvalidArgumentError(
                    f"{names[i]} and {names[j]} both hold item ids {both[:10].tolist()}: "
                    "ids must be unique in a catalog set"
                )


def check_same_identity(identity: Mapping[str, Any], catalog: Catalog, source: Path) -> None:
    theirs = identity_of(catalog.manifest)
    if theirs != dict(identity):
        diff = [k for k in identity if identity[k] != theirs.get(k)]
        raise InvalidArgumentError(
            f"{source}: its {', '.join(diff)} differ from the catalog set's ({theirs} vs {dict(identity)}); "
            "every shard must come from the same encoder, head and quantizer"
        )


def shard_info(path: Path, name: str, offset: int, ids: NDArray[np.int64]) -> ShardInfo:
    data = read_bytes(path / MANIFEST_FILE, "manifest", error=CatalogFormatError)
    manifest = json.loads(data)
    return ShardInfo(
        name=name,
        count=int(manifest["count"]),
        offset=offset,
        manifest_sha256=sha256(data),
        codes_blake3=str(manifest["files"]["codes.u8"]["blake3"]),
        ids=id_range(ids),
    )


def manifest_bytes(identity: Mapping[str, Any], infos: Sequence[ShardInfo]) -> bytes:
    manifest = {
        "format": SET_FORMAT,
        "version": SET_VERSION,
        "count": sum(info.count for info in infos),
        "identity": dict(identity),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "shards": [info.to_json() for info in infos],
    }
    return (json.dumps(manifest, indent=2, sort_keys=False) + "\n").encode()


def parse_manifest(data: bytes, root: Path) -> dict[str, Any]:
    """The parsed manifest with ``shards`` as :class:`ShardInfo` (and ``raw``: the JSON)."""
    where = root / SET_MANIFEST

    def bad(why: str) -> CatalogFormatError:
        return CatalogFormatError(f"{where}: {why}")

    try:
        raw = json.loads(data)
    except ValueError as e:
        raise bad(f"not JSON ({e})") from None
    if not isinstance(raw, dict) or raw.get("format") != SET_FORMAT:
        raise bad(f"not a catalog set manifest (format {raw.get('format') if isinstance(raw, dict) else None!r})")
    if raw.get("version") != SET_VERSION:
        raise bad(f"catalog set format version {raw.get('version')!r}; this version reads {SET_VERSION}")
    identity = raw.get("identity")
    shards = raw.get("shards")
    if not isinstance(identity, dict) or not isinstance(identity.get("dim"), int) or not isinstance(shards, list):
        raise bad("no identity (with dim) or no shard list")
    infos: list[ShardInfo] = []
    offset = 0
    names: set[str] = set()
    for k, entry in enumerate(shards):
        try:
            name = entry["path"]
            count = entry["count"]
            ids = entry["ids"]
            ok = (
                isinstance(name, str)
                and SHARD_NAME.match(name) is not None
                and isinstance(count, int)
                and count >= 0
                and entry["offset"] == offset
                and isinstance(entry["manifest_sha256"], str)
                and isinstance(entry["codes_blake3"], str)
                and (ids is None or (isinstance(ids, list) and len(ids) == 2 and all(isinstance(v, int) for v in ids)))
            )
        except (KeyError, TypeError):
            ok = False
        if not ok or name in names:
            raise bad(f"shard entry {k} is not valid: {entry!r}")
        names.add(name)
        info = ShardInfo(name, count, offset, entry["manifest_sha256"], entry["codes_blake3"], None)
        infos.append(
            info if ids is None else ShardInfo(name, count, offset, info.manifest_sha256, info.codes_blake3, tuple(ids))
        )
        offset += count
    if raw.get("count") != offset:
        raise bad(f"count {raw.get('count')!r} is not the sum of the shards' counts ({offset})")
    return {"raw": raw, "identity": identity, "shards": infos}


def open_shard(root: Path, info: ShardInfo, identity: Mapping[str, Any]) -> Catalog:
    """Open one shard and check it is the one the set recorded."""
    path = root / info.name

    def corrupt(why: str) -> ShardCorruptError:
        return ShardCorruptError(f"{root}: shard {info.name}: {why}", info.name)

    try:
        data = read_bytes(path / MANIFEST_FILE, "manifest", error=CatalogFormatError)
    except CatalogFormatError as e:
        raise corrupt(str(e)) from e
    if sha256(data) != info.manifest_sha256:
        raise corrupt("its manifest.json is not the one the catalog set recorded (edited or replaced)")
    try:
        catalog = Catalog.open(path)
    except CatalogNotFoundError as e:
        raise ShardMissingError(f"{root}: shard {info.name} missing: {e}", info.name) from e
    except ClipBranchesError as e:
        raise corrupt(str(e)) from e
    try:
        same = catalog.manifest == json.loads(data)
    except ValueError:
        same = False
    if not same:
        raise corrupt("its manifest changed while the set was being opened")
    if len(catalog) != info.count:
        raise corrupt(f"holds {len(catalog)} items; the catalog set recorded {info.count}")
    if identity_of(catalog.manifest) != dict(identity):
        raise corrupt(f"its identity {identity_of(catalog.manifest)} is not the set's {dict(identity)}")
    if catalog.codes_checksum != info.codes_blake3:
        raise corrupt("its codes checksum is not the one the catalog set recorded")
    return catalog


def place_shard(source: Path, catalog: Catalog, dest: Path, move: bool) -> bool:
    """Put the catalog at ``source`` at ``dest`` (moved if ``move`` and on the same file system,
    else copied) and check it is the catalog opened, by its manifest's digest and, when moved,
    its directory's identity; True if it was moved."""
    expected = sha256(read_bytes(source / MANIFEST_FILE, "manifest", error=CatalogFormatError))
    moved = False
    if move:
        try:
            os.rename(source, dest)
            moved = True
        except OSError as e:
            if e.errno != errno.EXDEV:
                raise
    if not moved:
        shutil.copytree(source, dest, symlinks=True)
        catalog.check_unchanged()  # not swapped for another catalog while it was copied
    got = sha256(read_bytes(dest / MANIFEST_FILE, "manifest", error=CatalogFormatError))
    if got != expected:
        raise CatalogFormatError(f"{source}: its manifest changed while it was being added to the catalog set")
    if moved and dir_identity(dest) != catalog._identity:
        raise CatalogFormatError(f"{source}: was replaced while it was being added to the catalog set")
    return moved
