"""Catalog sets: create (copy or move), add a shard, open with every shard checked first, the
global view (codes, ids, items, find), typed errors naming the shard, and atomicity (an
interrupted create or add leaves the previous state valid)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from clipbranches import (
    Catalog,
    CatalogExistsError,
    CatalogFormatError,
    CatalogNotFoundError,
    InvalidArgumentError,
    OutputError,
    UnknownItemError,
)
from clipbranches.exceptions import ShardCorruptError, ShardMissingError
from clipbranches.store import catalog_set as catalog_set_module
from clipbranches.store.catalog_set import SET_FORMAT, SET_MANIFEST, CatalogSet, is_catalog_set

SIZES = (50, 7, 120, 0, 23)


def make_parts(root: Path, sizes: tuple[int, ...] = SIZES, *, dim: int = 32) -> tuple[list[Path], np.ndarray]:
    """Catalogs of the given sizes (ids 1000 + 3 * global row) and all their codes, in order."""
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 256, size=(sum(sizes), dim), dtype=np.uint8)
    paths, start = [], 0
    for i, n in enumerate(sizes):
        ids = 1000 + 3 * np.arange(start, start + n)
        items = pl.DataFrame({"id": ids, "caption": [f"c{r}" for r in range(start, start + n)]})
        Catalog.create(root / f"part{i}", codes[start : start + n], items, encoder={"name": "test"}, dim=dim)
        paths.append(root / f"part{i}")
        start += n
    return paths, codes


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and p.name != ".catalogset.lock")


def test_create_copies_the_catalogs_in_order_and_the_set_reads_as_their_concatenation(tmp_path: Path) -> None:
    parts, codes = make_parts(tmp_path)
    s = CatalogSet.create(tmp_path / "set", parts)
    assert is_catalog_set(tmp_path / "set")
    assert CatalogSet.is_catalog_set(s.path)
    assert not is_catalog_set(parts[0])
    assert not Catalog.is_catalog(tmp_path / "set")
    assert all(p.is_dir() for p in parts), "copied: the sources stay"
    assert [i.name for i in s.infos] == [f"shard-{i:05d}" for i in range(len(SIZES))]
    assert len(s) == sum(SIZES)
    assert s.dim == 32
    assert len(s.shards) == len(SIZES)
    np.testing.assert_array_equal(s.offsets, np.concatenate([[0], np.cumsum(SIZES)]))
    manifest = json.loads((s.path / SET_MANIFEST).read_text())
    assert manifest["format"] == SET_FORMAT
    assert manifest["version"] == 1
    assert manifest["count"] == len(s)
    assert manifest["identity"]["encoder"] == {"name": "test"}
    assert manifest["identity"]["dim"] == 32
    assert [e["count"] for e in manifest["shards"]] == list(SIZES)
    assert manifest["shards"][0]["ids"] == [1000, 1000 + 3 * 49]
    assert manifest["shards"][3]["ids"] is None
    # The global view.
    rows = np.array([0, 49, 50, 56, 57, 199, len(s) - 1, 3, 3])
    np.testing.assert_array_equal(s.codes[rows], codes[rows])
    np.testing.assert_array_equal(s.codes[60], codes[60])
    np.testing.assert_array_equal(s.codes[-1], codes[-1])
    np.testing.assert_array_equal(s.codes[10:70], codes[10:70])
    assert s.codes.shape == codes.shape
    np.testing.assert_array_equal(s.item_ids, 1000 + 3 * np.arange(len(s)))
    np.testing.assert_array_equal(s.ids_of(rows), 1000 + 3 * rows)
    np.testing.assert_array_equal(s.find(1000 + 3 * rows), rows)
    assert s.items_of(rows)["caption"].to_list() == [f"c{r}" for r in rows]
    assert s.items["caption"].to_list() == [f"c{r}" for r in range(len(s))]
    assert s.items_of(np.zeros(0, np.int64)).columns == s.items.columns
    with pytest.raises(UnknownItemError, match="1001"):
        s.find([1000, 1001])
    with pytest.raises(InvalidArgumentError):
        s.find(["a"])  # type: ignore[list-item]
    with pytest.raises(IndexError):
        s.codes[len(s)]
    assert s.codes_checksum.startswith("set-sha256:")
    s.verify()
    assert leftovers(tmp_path) == []


def test_create_with_move_moves_the_catalogs(tmp_path: Path) -> None:
    parts, codes = make_parts(tmp_path, (30, 40))
    s = CatalogSet.create(tmp_path / "set", parts, move=True)
    assert not any(p.exists() for p in parts)
    np.testing.assert_array_equal(s.codes[np.arange(70)], codes)


def test_create_refuses_bad_inputs_and_leaves_nothing(tmp_path: Path) -> None:
    parts, _ = make_parts(tmp_path, (10, 20))
    with pytest.raises(InvalidArgumentError, match="at least one shard"):
        CatalogSet.create(tmp_path / "set", [])
    with pytest.raises(InvalidArgumentError, match="both hold item ids"):
        CatalogSet.create(tmp_path / "set", [parts[0], parts[1], parts[0]])
    Catalog.create(tmp_path / "wide", np.zeros((3, 16), np.uint8), encoder={"name": "test"})
    with pytest.raises(InvalidArgumentError, match="dim"):
        CatalogSet.create(tmp_path / "set", [parts[0], tmp_path / "wide"])
    Catalog.create(tmp_path / "other", np.zeros((3, 32), np.uint8), pl.DataFrame({"id": [1, 2, 4]}))
    with pytest.raises(InvalidArgumentError, match="encoder"):
        CatalogSet.create(tmp_path / "set", [parts[0], tmp_path / "other"])
    with pytest.raises(CatalogNotFoundError):
        CatalogSet.create(tmp_path / "set", [tmp_path / "nope"])
    with pytest.raises(CatalogNotFoundError):
        CatalogSet.create(tmp_path / "no" / "set", parts)
    assert not (tmp_path / "set").exists()
    assert leftovers(tmp_path) == []
    CatalogSet.create(tmp_path / "set", parts)
    with pytest.raises(CatalogExistsError):
        CatalogSet.create(tmp_path / "set", parts)


def test_an_interrupted_create_leaves_nothing_and_moves_the_catalogs_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parts, _ = make_parts(tmp_path, (10, 20))

    def crash(*args: object, **kwargs: object) -> None:
        raise OutputError("simulated crash before the set manifest is written")

    monkeypatch.setattr(catalog_set_module, "atomic_write", crash)
    with pytest.raises(OutputError, match="simulated"):
        CatalogSet.create(tmp_path / "set", parts, move=True)
    assert not (tmp_path / "set").exists()
    assert leftovers(tmp_path) == []
    assert all(Catalog.is_catalog(p) for p in parts), "moved catalogs are moved back"


def test_add_shard_appends_and_the_old_handle_keeps_its_view(tmp_path: Path) -> None:
    parts, codes = make_parts(tmp_path, (10, 20, 5))
    s = CatalogSet.create(tmp_path / "set", parts[:2])
    grown = s.add_shard(parts[2])
    assert len(s) == 30
    assert len(grown) == 35
    assert len(CatalogSet.open(s.path)) == 35
    np.testing.assert_array_equal(grown.codes[np.arange(35)], codes)
    assert grown.infos[-1].name == "shard-00002"
    assert grown.infos[-1].offset == 30
    # Appending new images: a shard from codes (the set's quantizer and encoder by default).
    more = np.full((4, 32), 9, np.uint8)
    grown = grown.add_codes(more, pl.DataFrame({"id": [5000, 5001, 5002, 5003]}))
    assert len(grown) == 39
    assert grown.find([5002]).tolist() == [37]
    assert leftovers(s.path) == []


def test_add_shard_refuses_ids_the_set_has_and_another_identity(tmp_path: Path) -> None:
    parts, _ = make_parts(tmp_path, (10, 20))
    s = CatalogSet.create(tmp_path / "set", parts)
    with pytest.raises(InvalidArgumentError, match="both hold item ids"):
        s.add_shard(parts[1])
    Catalog.create(tmp_path / "other", np.zeros((3, 32), np.uint8), pl.DataFrame({"id": [1, 2, 4]}))
    with pytest.raises(InvalidArgumentError, match="encoder"):
        s.add_shard(tmp_path / "other")
    assert len(CatalogSet.open(s.path)) == 30
    assert sorted(p.name for p in s.path.iterdir() if not p.name.startswith(".")) == [
        SET_MANIFEST,
        "shard-00000",
        "shard-00001",
    ]


def test_ids_may_interleave_across_shards_if_unique(tmp_path: Path) -> None:
    Catalog.create(tmp_path / "even", np.zeros((5, 32), np.uint8), pl.DataFrame({"id": [0, 2, 4, 6, 8]}))
    Catalog.create(tmp_path / "odd", np.ones((5, 32), np.uint8), pl.DataFrame({"id": [1, 3, 5, 7, 9]}))
    s = CatalogSet.create(tmp_path / "set", [tmp_path / "even", tmp_path / "odd"])
    assert s.find([9, 0, 3]).tolist() == [9, 0, 6]
    assert len(CatalogSet.open(s.path)) == 10


@pytest.mark.parametrize("move", [False, True])
def test_an_interrupted_add_shard_leaves_the_previous_set_valid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, move: bool
) -> None:
    parts, codes = make_parts(tmp_path, (10, 20, 5))
    s = CatalogSet.create(tmp_path / "set", parts[:2])
    before = (s.path / SET_MANIFEST).read_bytes()

    def crash(*args: object, **kwargs: object) -> None:
        raise OutputError("simulated crash while the set manifest is written")

    with monkeypatch.context() as m:
        m.setattr(catalog_set_module, "atomic_write", crash)
        with pytest.raises(OutputError, match="simulated"):
            s.add_shard(parts[2], move=move)
    assert (s.path / SET_MANIFEST).read_bytes() == before
    reopened = CatalogSet.open(s.path)
    assert len(reopened) == 30
    np.testing.assert_array_equal(reopened.codes[np.arange(30)], codes[:30])
    assert Catalog.is_catalog(parts[2]), "the source is intact (moved back when it was moved)"
    assert not (s.path / "shard-00002").exists()
    assert leftovers(s.path) == []
    # A real crash (no clean-up) leaves an unlisted shard directory: readers never see it and
    # the next add takes a fresh name.
    (s.path / "shard-00002").mkdir()
    assert len(CatalogSet.open(s.path)) == 30
    grown = CatalogSet.open(s.path).add_shard(parts[2])
    assert grown.infos[-1].name == "shard-00003"
    assert len(grown) == 35


def test_a_missing_shard_is_named_at_open(tmp_path: Path) -> None:
    parts, _ = make_parts(tmp_path)
    s = CatalogSet.create(tmp_path / "set", parts)
    os.rename(s.path / "shard-00002", tmp_path / "elsewhere")
    with pytest.raises(ShardMissingError, match="shard-00002") as info:
        CatalogSet.open(s.path)
    assert info.value.shard == "shard-00002"
    assert isinstance(info.value, CatalogNotFoundError)


def test_a_truncated_shard_is_named_at_open(tmp_path: Path) -> None:
    parts, _ = make_parts(tmp_path)
    s = CatalogSet.create(tmp_path / "set", parts)
    codes = s.path / "shard-00002" / "codes.u8"
    codes.write_bytes(codes.read_bytes()[:-32])
    with pytest.raises(ShardCorruptError, match="shard-00002.*truncated") as info:
        CatalogSet.open(s.path)
    assert info.value.shard == "shard-00002"
    assert isinstance(info.value, CatalogFormatError)


def test_an_edited_shard_manifest_is_named_at_open(tmp_path: Path) -> None:
    parts, _ = make_parts(tmp_path)
    s = CatalogSet.create(tmp_path / "set", parts)
    path = s.path / "shard-00001" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["encoder"] = {"name": "edited"}
    path.write_text(json.dumps(manifest))
    with pytest.raises(ShardCorruptError, match="shard-00001.*not the one the catalog set recorded") as info:
        CatalogSet.open(s.path)
    assert info.value.shard == "shard-00001"


def test_a_shard_replaced_by_another_catalog_is_named_at_open(tmp_path: Path) -> None:
    parts, _ = make_parts(tmp_path, (10, 20))
    s = CatalogSet.create(tmp_path / "set", parts)
    Catalog.create(s.path / "shard-00001", np.zeros((20, 32), np.uint8), encoder={"name": "test"}, overwrite=True)
    with pytest.raises(ShardCorruptError, match="shard-00001"):
        CatalogSet.open(s.path)


def test_a_corrupt_byte_is_found_by_verify_naming_the_shard(tmp_path: Path) -> None:
    parts, _ = make_parts(tmp_path, (10, 20))
    s = CatalogSet.create(tmp_path / "set", parts)
    codes = s.path / "shard-00001" / "codes.u8"
    data = bytearray(codes.read_bytes())
    data[5] ^= 0xFF
    codes.write_bytes(bytes(data))
    with pytest.raises(ShardCorruptError, match="shard-00001") as info:
        CatalogSet.open(s.path).verify()
    assert info.value.shard == "shard-00001"


def test_a_bad_set_manifest_is_a_format_error(tmp_path: Path) -> None:
    parts, _ = make_parts(tmp_path, (10, 20))
    s = CatalogSet.create(tmp_path / "set", parts)
    manifest = json.loads((s.path / SET_MANIFEST).read_text())
    for edit in (
        lambda m: m.update(version=2),
        lambda m: m.update(count=31),
        lambda m: m["shards"][1].update(offset=3),
        lambda m: m["shards"][1].update(path="../elsewhere"),
    ):
        broken = json.loads(json.dumps(manifest))
        edit(broken)
        (s.path / SET_MANIFEST).write_text(json.dumps(broken))
        with pytest.raises(CatalogFormatError, match=SET_MANIFEST):
            CatalogSet.open(s.path)
    (s.path / SET_MANIFEST).write_text("{not json")
    with pytest.raises(CatalogFormatError, match="not JSON"):
        CatalogSet.open(s.path)
    assert not is_catalog_set(s.path)
    with pytest.raises(CatalogNotFoundError):
        CatalogSet.open(tmp_path / "nope")


def test_indexes_built_in_the_shards_keep_the_set_valid(tmp_path: Path) -> None:
    parts, codes = make_parts(tmp_path, (300, 0, 200))
    s = CatalogSet.create(tmp_path / "set", parts)
    assert not s.has_index
    s.build_index(block_items=128)
    reopened = CatalogSet.open(s.path)
    assert reopened.has_index
    np.testing.assert_array_equal(reopened.codes[np.arange(500)], codes)


def test_shards_may_carry_different_extra_columns(tmp_path: Path) -> None:
    Catalog.create(tmp_path / "a", np.zeros((3, 32), np.uint8), pl.DataFrame({"id": [1, 2, 3], "label": [7, 8, 9]}))
    Catalog.create(
        tmp_path / "b", np.ones((2, 32), np.uint8), pl.DataFrame({"id": [4, 5], "tags": [["x"], ["y", "z"]]})
    )
    s = CatalogSet.create(tmp_path / "set", [tmp_path / "a", tmp_path / "b"])
    assert sorted(s.items.columns) == ["caption", "height", "id", "label", "tags", "uri", "width"]
    picked = s.items_of(np.array([4, 0]))
    assert picked.columns == s.items.columns
    assert picked["id"].to_list() == [5, 1]
    assert picked["label"].to_list() == [None, 7]
    assert picked["tags"].to_list() == [["y", "z"], None]
    assert s.items_of(np.array([1]))["tags"].to_list() == [None]
    assert s.items_of(np.zeros(0, np.int64)).columns == s.items.columns


def test_find_over_runs_of_ids_and_over_shuffled_ones(tmp_path: Path) -> None:
    Catalog.create(tmp_path / "run", np.zeros((4, 32), np.uint8), pl.DataFrame({"id": [10, 11, 12, 13]}))
    Catalog.create(tmp_path / "shuffled", np.zeros((3, 32), np.uint8), pl.DataFrame({"id": [15, 14, 16]}))
    Catalog.create(tmp_path / "gaps", np.zeros((3, 32), np.uint8), pl.DataFrame({"id": [17, 19, 20]}))
    s = CatalogSet.create(tmp_path / "set", [tmp_path / "run", tmp_path / "shuffled", tmp_path / "gaps"])
    assert s.find([13, 10, 14, 15, 16, 20, 17]).tolist() == [3, 0, 5, 4, 6, 9, 7]
    with pytest.raises(UnknownItemError, match="18"):
        s.find([18])
    np.testing.assert_array_equal(s.find(s.item_ids), np.arange(len(s)))
