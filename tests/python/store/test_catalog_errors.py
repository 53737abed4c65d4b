"""Every bad input to Catalog.create / open / verify: a typed error naming what is wrong, and
nothing half-written left behind."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from clipbranches import (
    Catalog,
    CatalogExistsError,
    CatalogFormatError,
    CatalogNotFoundError,
    ChecksumError,
    ClipBranchesError,
    DimensionMismatchError,
    InvalidArgumentError,
)
from clipbranches.store import CalibratedQuantizer

EditManifest = Callable[[Path, Callable[[dict[str, Any]], None]], None]


# --- open ----------------------------------------------------------------------------------


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(CatalogNotFoundError, match="does not exist") as info:
        Catalog.open(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(info.value)


@pytest.mark.parametrize("name", ["manifest.json", "codes.u8", "items.parquet"])
def test_missing_file(catalog: Catalog, name: str) -> None:
    (catalog.path / name).unlink()
    with pytest.raises(CatalogFormatError, match=f"{name}.*missing"):
        Catalog.open(catalog.path)


def test_truncated_codes(catalog: Catalog) -> None:
    path = catalog.path / "codes.u8"
    path.write_bytes(path.read_bytes()[:-32])
    with pytest.raises(CatalogFormatError, match="6368 bytes but manifest.json records 6400: truncated"):
        Catalog.open(catalog.path)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("format", "something-else", "not a clipbranches catalog"),
        ("version", 2, "format version 2 is not supported"),
        ("count", 199, "recorded as 6400 bytes but count 199 x dim 32"),
        ("dim", 0, "dim is 0"),
    ],
)
def test_bad_manifest_fields(
    catalog: Catalog, edit_manifest: EditManifest, field: str, value: object, message: str
) -> None:
    edit_manifest(catalog.path, lambda m: m.__setitem__(field, value))
    with pytest.raises(CatalogFormatError, match=message):
        Catalog.open(catalog.path)


def test_invalid_json(catalog: Catalog) -> None:
    (catalog.path / "manifest.json").write_text('{"format": "clipbranches-catalog",')
    with pytest.raises(CatalogFormatError, match=r"manifest.json: not valid JSON"):
        Catalog.open(catalog.path)


def test_items_with_the_wrong_number_of_rows(catalog: Catalog, edit_manifest: EditManifest) -> None:
    items = catalog.path / "items.parquet"
    pl.DataFrame({"id": [0, 1]}).write_parquet(items)
    size = items.stat().st_size
    edit_manifest(catalog.path, lambda m: m["files"]["items.parquet"].__setitem__("bytes", size))
    with pytest.raises(CatalogFormatError, match="has 2 rows but the catalog has 200 codes"):
        Catalog.open(catalog.path)


@pytest.mark.parametrize("name", ["codes.u8", "items.parquet"])
def test_flipped_bytes_are_caught_by_verify(catalog: Catalog, name: str) -> None:
    path = catalog.path / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    reopened = Catalog.open(catalog.path)  # same sizes and headers: open stays cheap
    with pytest.raises(ChecksumError, match=f"{name}: checksum mismatch"):
        reopened.verify()


# --- create --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("codes", "error", "message"),
    [
        (np.zeros((4, 32), np.float32), InvalidArgumentError, "dtype float32; expected uint8"),
        (np.zeros((4, 32), np.int64), InvalidArgumentError, "dtype int64; expected uint8"),
        (np.zeros(32, np.uint8), DimensionMismatchError, r"2-D \(n, dim\), got shape \(32,\)"),
        (np.zeros((2, 4, 4), np.uint8), DimensionMismatchError, "2-D"),
        (np.zeros((4, 0), np.uint8), DimensionMismatchError, "at least one column"),
        ([[1, 2], [3, 4]], InvalidArgumentError, "is a list; expected a numpy uint8 array"),
        ("codes", InvalidArgumentError, "got str"),
        (iter([]), InvalidArgumentError, "pass dim="),
        (
            [np.zeros((2, 8), np.uint8), np.zeros((2, 9), np.uint8)],
            DimensionMismatchError,
            "9 columns, earlier",
        ),
        ([np.zeros((2, 8), np.uint8), np.zeros((2, 8), np.int8)], InvalidArgumentError, "dtype int8"),
    ],
)
def test_bad_codes(tmp_path: Path, codes: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        Catalog.create(tmp_path / "cat", codes)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("items", "error", "message"),
    [
        (pl.DataFrame({"id": [0, 1]}), DimensionMismatchError, "items has 2 rows but there are 4 codes"),
        ({"id": [0, 1, 2, 3]}, InvalidArgumentError, "polars DataFrame"),
        (pl.DataFrame({"id": [0, 1, 1, 3]}), InvalidArgumentError, "unique"),
        (pl.DataFrame({"id": ["a", "b", "c", "d"]}), InvalidArgumentError, "'id' has type String"),
        (pl.DataFrame({"width": [1.5] * 4}), InvalidArgumentError, "'width' has type Float64"),
    ],
)
def test_bad_items(tmp_path: Path, items: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        Catalog.create(tmp_path / "cat", np.zeros((4, 8), np.uint8), items)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_bad_metadata_and_quantizer(tmp_path: Path) -> None:
    codes = np.zeros((4, 8), np.uint8)
    with pytest.raises(InvalidArgumentError, match="JSON-serialisable"):
        Catalog.create(tmp_path / "cat", codes, encoder={"weights": object()})
    with pytest.raises(InvalidArgumentError, match="encoder must be a mapping"):
        Catalog.create(tmp_path / "cat", codes, encoder="ViT-B-32")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="quantizer must be a Quantizer"):
        Catalog.create(tmp_path / "cat", codes, quantizer="fixed")  # type: ignore[arg-type]
    calibrated = CalibratedQuantizer(np.zeros(4, np.float32), np.ones(4, np.float32))
    with pytest.raises(DimensionMismatchError, match="4 dimensions, data has 8"):
        Catalog.create(tmp_path / "cat", codes, quantizer=calibrated)
    with pytest.raises(DimensionMismatchError, match="dim=4 was given"):
        Catalog.create(tmp_path / "cat", codes, dim=4)
    assert list(tmp_path.iterdir()) == []


def test_missing_parent(tmp_path: Path) -> None:
    with pytest.raises(CatalogNotFoundError, match="no/parent"):
        Catalog.create(tmp_path / "no" / "parent" / "cat", np.zeros((1, 8), np.uint8))


def test_existing_target_is_refused_without_overwrite(catalog: Catalog, codes: np.ndarray) -> None:
    with pytest.raises(CatalogExistsError, match="pass overwrite=True"):
        Catalog.create(catalog.path, np.zeros((1, 8), np.uint8))
    np.testing.assert_array_equal(Catalog.open(catalog.path).codes, codes)


def test_overwrite_never_replaces_a_directory_that_is_not_a_catalog(tmp_path: Path) -> None:
    precious = tmp_path / "photos"
    precious.mkdir()
    (precious / "holiday.jpg").write_bytes(b"\xff\xd8")
    with pytest.raises(CatalogExistsError, match="not a clipbranches catalog"):
        Catalog.create(precious, np.zeros((1, 8), np.uint8), overwrite=True)
    assert (precious / "holiday.jpg").exists()


def _failing_stream(after: int, error: BaseException) -> Iterator[np.ndarray]:
    for _ in range(after):
        yield np.ones((10, 32), np.uint8)
    raise error


@pytest.mark.parametrize("error", [RuntimeError("source died"), KeyboardInterrupt()])
def test_failure_mid_create_keeps_the_old_catalog(
    tmp_path: Path, catalog: Catalog, codes: np.ndarray, error: BaseException
) -> None:
    with pytest.raises(type(error)):
        Catalog.create(catalog.path, _failing_stream(3, error), overwrite=True)
    np.testing.assert_array_equal(Catalog.open(catalog.path).codes, codes)
    Catalog.open(catalog.path).verify()
    assert [p.name for p in tmp_path.iterdir()] == ["cat"]


def test_all_errors_share_the_root(tmp_path: Path) -> None:
    with pytest.raises(ClipBranchesError):
        Catalog.open(tmp_path / "nope")
    manifest = json.dumps({"format": "clipbranches-catalog"})
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "manifest.json").write_text(manifest)
    with pytest.raises(CatalogFormatError, match="version"):
        Catalog.open(tmp_path / "half")


def test_items_that_do_not_match_a_stream_are_caught_at_its_end(tmp_path: Path) -> None:
    stream = (np.zeros((3, 8), np.uint8) for _ in range(4))
    with pytest.raises(DimensionMismatchError, match="items has 5 rows but there are 12 codes"):
        Catalog.create(tmp_path / "cat", stream, pl.DataFrame({"id": range(5)}))
    assert list(tmp_path.iterdir()) == []
