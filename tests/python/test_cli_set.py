"""``index``, ``info`` and ``verify`` on a catalog set: per shard, with the set's totals, and a
damaged shard named."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from clipbranches import Catalog, CatalogSet, testing
from clipbranches.cli import main


@pytest.fixture
def catalog_set(tmp_path: Path) -> Path:
    codes = np.concatenate([block for block, _ in testing.codes(1000, k=20, seed=1)])
    parts = []
    for i, (start, stop) in enumerate(((0, 300), (300, 350), (350, 1000))):
        ids = pl.DataFrame({"id": np.arange(start, stop)})
        Catalog.create(tmp_path / f"part{i}", codes[start:stop], ids, encoder={"name": "synthetic"})
        parts.append(tmp_path / f"part{i}")
    CatalogSet.create(tmp_path / "set", parts, move=True)
    return tmp_path / "set"


def _json(capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(capsys.readouterr().out)


def test_index_info_and_verify_cover_every_shard(catalog_set: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(catalog_set), "--json"]) == 0
    before = _json(capsys)
    assert before["items"] == 1000
    assert [s["items"] for s in before["shards"]] == [300, 50, 650]
    assert before["index"].startswith("0 of 3 shards; the others: none")
    assert main(["index", str(catalog_set), "--json"]) == 0
    built = _json(capsys)
    assert built["shards"] == 3
    assert built["bytes"] > 0
    assert main(["info", str(catalog_set), "--json"]) == 0
    assert _json(capsys)["index"] == "every shard"
    assert main(["verify", str(catalog_set), "--json"]) == 0
    assert _json(capsys) == {"catalog_set": str(catalog_set), "shards": 3, "items": 1000, "data": "ok", "index": "ok"}
    assert main(["info", str(catalog_set)]) == 0  # the plain form: totals, then one line per shard
    assert capsys.readouterr().out.count("  shard shard-") == 3


def test_verify_names_a_damaged_shard(catalog_set: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shard = sorted(p for p in catalog_set.iterdir() if p.is_dir())[1]
    codes = shard / "codes.u8"
    data = bytearray(codes.read_bytes())
    data[0] ^= 0xFF  # same size, other bytes: only the checksums can tell
    codes.write_bytes(bytes(data))
    assert main(["verify", str(catalog_set)]) == 2
    assert shard.name in capsys.readouterr().err
