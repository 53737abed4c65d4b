"""Catalog.create / Catalog.open / verify: round trips and the zero-copy view."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clipbranches import Catalog
from clipbranches.store import CalibratedQuantizer, FixedRangeQuantizer


def test_round_trip_of_an_array(tmp_path: Path, codes: np.ndarray) -> None:
    catalog = Catalog.create(tmp_path / "cat", codes)
    reopened = Catalog.open(tmp_path / "cat")
    assert len(reopened) == 200
    assert reopened.dim == 32
    np.testing.assert_array_equal(reopened.codes, codes)
    reopened.verify()
    assert catalog.manifest == reopened.manifest
    assert reopened.manifest["format"] == "clipbranches-catalog"
    assert reopened.manifest["version"] == 1


@settings(max_examples=25, deadline=None)
@given(
    rows=st.integers(0, 500),
    dim=st.integers(1, 80),
    chunk=st.integers(1, 130),
    seed=st.integers(0, 2**32 - 1),
)
def test_round_trip_of_any_shape_and_chunking(
    tmp_path_factory: object, rows: int, dim: int, chunk: int, seed: int
) -> None:
    root = tmp_path_factory.mktemp("rt")  # type: ignore[attr-defined]
    data = np.random.default_rng(seed).integers(0, 256, size=(rows, dim), dtype=np.uint8)
    chunks = (data[i : i + chunk] for i in range(0, rows, chunk))
    catalog = Catalog.create(root / "cat", chunks, dim=dim)
    assert (len(catalog), catalog.dim) == (rows, dim)
    np.testing.assert_array_equal(Catalog.open(root / "cat").codes, data)
    assert catalog.items["id"].to_list() == list(range(rows))
    catalog.verify()
    assert [p.name for p in root.iterdir()] == ["cat"]


def test_codes_are_a_read_only_zero_copy_view_that_keeps_its_owner(catalog: Catalog, codes: np.ndarray) -> None:
    view = catalog.codes
    assert view.dtype == np.uint8
    assert view.shape == (200, 32)
    assert view.flags.c_contiguous
    assert not view.flags.writeable
    assert not view.flags.owndata
    assert np.shares_memory(view, catalog._core.codes())
    try:
        view.flags.writeable = True
    except ValueError:
        pass
    else:  # pragma: no cover - a writeable view of the map would be a bug
        raise AssertionError("the codes view could be made writeable")
    del catalog
    gc.collect()
    np.testing.assert_array_equal(view, codes)  # the map is still alive through the view


def test_default_items_have_the_standard_columns(catalog: Catalog) -> None:
    items = catalog.items
    assert items.columns == ["id", "uri", "caption", "width", "height"]
    assert items.schema["id"] == pl.Int64
    assert items["id"].to_list() == list(range(200))
    assert items["uri"].null_count() == 200


def test_custom_items_keep_extra_columns_and_get_ids(tmp_path: Path, codes: np.ndarray) -> None:
    items = pl.DataFrame(
        {
            "caption": [f"item {i}" for i in range(200)],
            "uri": [f"/img/{i}.png" for i in range(200)],
            "label": np.arange(200) % 3,
            "width": np.full(200, 28, dtype=np.int16),
        }
    )
    catalog = Catalog.create(tmp_path / "cat", codes, items)
    got = catalog.items
    assert got.columns == ["id", "uri", "caption", "width", "height", "label"]
    assert got["caption"][5] == "item 5"
    assert got["width"].dtype == pl.Int32
    assert got["label"].to_list() == (np.arange(200) % 3).tolist()


def test_quantizer_and_encoder_are_recorded(tmp_path: Path) -> None:
    x = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    quantizer = CalibratedQuantizer.fit(x)
    catalog = Catalog.create(tmp_path / "cat", quantizer.quantize(x), quantizer=quantizer, encoder={"name": "e"})
    restored = Catalog.open(tmp_path / "cat").quantizer
    assert isinstance(restored, CalibratedQuantizer)
    np.testing.assert_array_equal(restored.quantize(x), catalog.codes)
    assert catalog.encoder == {"name": "e"}
    assert Catalog.create(tmp_path / "b", catalog.codes[:1]).quantizer == FixedRangeQuantizer()


def test_empty_catalog_with_explicit_dim(tmp_path: Path) -> None:
    catalog = Catalog.create(tmp_path / "cat", iter([]), dim=8)
    assert len(catalog) == 0
    assert catalog.codes.shape == (0, 8)
    assert catalog.items.height == 0
    catalog.verify()


def test_overwrite_replaces_atomically(tmp_path: Path, catalog: Catalog) -> None:
    old_view = catalog.codes
    new = Catalog.create(tmp_path / "cat", np.full((3, 4), 9, np.uint8), overwrite=True)
    assert (len(new), new.dim) == (3, 4)
    assert old_view.shape == (200, 32)  # the old map still reads the unlinked files
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cat"]


def test_repr_names_path_and_size(catalog: Catalog) -> None:
    assert repr(catalog).endswith("items=200, dim=32)")


def test_attached_files_appear_with_the_catalog_and_a_failing_attach_leaves_nothing(tmp_path: Path) -> None:
    codes = np.arange(24, dtype=np.uint8).reshape(3, 8)

    def attach(staging: Path) -> None:
        (staging / "head.safetensors").write_bytes(b"weights")
        (staging / "thumbs").mkdir()

    catalog = Catalog.create(tmp_path / "c", codes, attach=attach)
    assert (catalog.path / "head.safetensors").read_bytes() == b"weights"
    assert (catalog.path / "thumbs").is_dir()
    catalog.verify()

    def broken(staging: Path) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        Catalog.create(tmp_path / "d", codes, attach=broken)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"], "no catalog and no staging left behind"
