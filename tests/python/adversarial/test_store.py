"""Adversarial inputs to the store (issue 15): nothing lost, nothing mixed, nothing hangs,
every bad input typed. One test per case, each bounded in time; subprocesses are ended by PID."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clipbranches import (
    Catalog,
    CatalogChangedError,
    CatalogError,
    CatalogExistsError,
    CatalogFormatError,
    ClipBranchesError,
    IndexFormatError,
    InvalidArgumentError,
    _core,
)
from clipbranches.store.index import INDEX_FILE

#: Seconds any subprocess of these tests may run before it is ended (by PID).
SUBPROCESS_LIMIT = 60.0


def _codes(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, dim), dtype=np.uint8)


def _replace_items(root: Path, table: pl.DataFrame | bytes) -> None:
    """Put ``table`` (a frame, or raw bytes) in place of ``items.parquet`` and record its new
    size in the manifest, so the cheap checks of open pass and the items checks are reached."""
    path = root / "items.parquet"
    if isinstance(table, pl.DataFrame):
        buffer = io.BytesIO()
        table.write_parquet(buffer)
        data = buffer.getvalue()
    else:
        data = table
    path.write_bytes(data)
    manifest_path = root / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["items.parquet"]["bytes"] = len(data)
    manifest_path.write_text(json.dumps(manifest))


def _run_bounded(code: str) -> str:
    """Run ``code`` in a fresh interpreter, ended by its PID if it outlives the limit; its stdout."""
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=SUBPROCESS_LIMIT)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, 9)
        proc.communicate()
        pytest.fail(f"hung: still running after {SUBPROCESS_LIMIT} s (ended by PID {proc.pid})")
    assert proc.returncode == 0, err
    return out.strip()


# --- 1. overwrite destroys non-catalogs -------------------------------------------------------


def test_overwrite_refuses_a_directory_with_a_foreign_manifest(tmp_path: Path) -> None:
    web = tmp_path / "web"
    (web / "src").mkdir(parents=True)
    (web / "manifest.json").write_text('{"name": "app", "version": "1.0.0", "start_url": "/"}')
    (web / "src" / "main.js").write_text("main();\n")
    with pytest.raises(CatalogExistsError, match="not a clipbranches catalog") as info:
        Catalog.create(web, _codes(4), overwrite=True)
    assert "nothing was changed" in str(info.value)
    assert (web / "src" / "main.js").read_text() == "main();\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["web"]  # no staging left either


def test_overwrite_refuses_a_foreign_directory_before_reading_a_stream(tmp_path: Path) -> None:
    web = tmp_path / "web"
    web.mkdir()
    (web / "manifest.json").write_text('{"name": "app"}')
    pulled: list[int] = []

    def stream():  # type: ignore[no-untyped-def]
        pulled.append(1)
        yield _codes(4)

    with pytest.raises(CatalogExistsError, match="not a clipbranches catalog"):
        Catalog.create(web, stream(), overwrite=True)
    assert not pulled  # refused before any (expensive) chunk was made
    assert not Catalog.is_catalog(web)


def test_overwrite_refuses_a_catalog_of_another_format_version(tmp_path: Path) -> None:
    catalog = Catalog.create(tmp_path / "c", _codes(4))
    manifest = json.loads((catalog.path / "manifest.json").read_text())
    manifest["version"] = 99
    (catalog.path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CatalogExistsError, match="not a clipbranches catalog"):
        Catalog.create(catalog.path, _codes(4), overwrite=True)
    assert json.loads((catalog.path / "manifest.json").read_text())["version"] == 99


def test_overwrite_still_replaces_a_catalog(tmp_path: Path) -> None:
    Catalog.create(tmp_path / "c", _codes(4))
    replaced = Catalog.create(tmp_path / "c", _codes(7), overwrite=True)
    assert len(replaced) == 7


# --- 2. stale handles read a mixed catalog ---------------------------------------------------


def _old_and_new(tmp_path: Path) -> tuple[Catalog, Catalog]:
    root = tmp_path / "c"
    old = Catalog.create(root, _codes(300, seed=1), pl.DataFrame({"id": np.arange(300), "caption": ["old"] * 300}))
    new = Catalog.create(
        root, _codes(100, seed=2), pl.DataFrame({"id": np.arange(100) + 1000, "caption": ["new"] * 100}), overwrite=True
    )
    return old, new


def test_stale_handle_items_raise_catalog_changed(tmp_path: Path) -> None:
    old, new = _old_and_new(tmp_path)
    with pytest.raises(CatalogChangedError, match="replaced"):
        _ = old.items
    with pytest.raises(CatalogChangedError, match="open it again"):
        _ = old.item_ids
    with pytest.raises(CatalogChangedError):
        old.check_unchanged()
    assert new.items["caption"].unique().to_list() == ["new"]
    new.check_unchanged()


def test_stale_handle_verify_raises_catalog_changed(tmp_path: Path) -> None:
    old, new = _old_and_new(tmp_path)
    with pytest.raises(CatalogChangedError):
        old.verify()
    new.verify()


def test_stale_handle_keeps_what_it_already_read(tmp_path: Path) -> None:
    root = tmp_path / "c"
    old = Catalog.create(root, _codes(30, seed=1), pl.DataFrame({"id": np.arange(30), "caption": ["old"] * 30}))
    items = old.items
    Catalog.create(root, _codes(10, seed=2), overwrite=True)
    assert old.items is items
    assert old.items["caption"].unique().to_list() == ["old"]
    assert len(old.codes) == 30  # the old codes stay mapped


def test_stale_handle_index_open_raises_catalog_changed(tmp_path: Path) -> None:
    old, new = _old_and_new(tmp_path)
    new.build_index(block_items=128)
    with pytest.raises(CatalogChangedError):
        _ = old.index


def test_stale_handle_build_index_keeps_the_new_catalogs_index(tmp_path: Path) -> None:
    old, new = _old_and_new(tmp_path)
    new.build_index(block_items=128)
    before = (new.path / INDEX_FILE).read_bytes()
    with pytest.raises(CatalogChangedError):
        old.build_index(block_items=128)
    assert (new.path / INDEX_FILE).read_bytes() == before
    assert len(Catalog.open(new.path).index) == 100
    assert not [p for p in (new.path / "index").iterdir() if p.name.startswith(".")]


def test_index_save_checks_the_catalog_just_before_the_rename(tmp_path: Path) -> None:
    catalog = Catalog.create(tmp_path / "c", _codes(200))
    core = _core.BlockIndex.build(catalog.codes, catalog.codes_checksum, 128)
    st = os.stat(catalog.path)
    with pytest.raises(CatalogChangedError, match="was not installed"):
        core.save(catalog.path / INDEX_FILE, (catalog.path, st.st_dev, st.st_ino + 1))
    assert not (catalog.path / INDEX_FILE).exists()
    assert not [p for p in (catalog.path / "index").iterdir()]  # no partial left
    core.save(catalog.path / INDEX_FILE, (catalog.path, st.st_dev, st.st_ino))
    assert len(catalog.index) == 200


# --- 3. index accepted with the wrong count or dim -------------------------------------------


def test_index_with_the_wrong_count_is_refused(tmp_path: Path) -> None:
    catalog = Catalog.create(tmp_path / "c", _codes(200))
    forged = _core.BlockIndex.build(_codes(300), catalog.codes_checksum, 128)  # right stamp, wrong count
    forged.save(catalog.path / INDEX_FILE)
    with pytest.raises(IndexFormatError, match="indexes 300 items of dim 16, but its catalog has 200 items"):
        _ = Catalog.open(catalog.path).index


def test_index_with_the_wrong_dim_is_refused(tmp_path: Path) -> None:
    catalog = Catalog.create(tmp_path / "c", _codes(200))
    forged = _core.BlockIndex.build(_codes(200, dim=8), catalog.codes_checksum, 128)
    forged.save(catalog.path / INDEX_FILE)
    with pytest.raises(IndexFormatError, match="of dim 8, but its catalog has 200 items of dim 16"):
        _ = Catalog.open(catalog.path).index


# --- 4. items.parquet not validated at open ----------------------------------------------------


@pytest.fixture
def small(tmp_path: Path) -> Catalog:
    return Catalog.create(tmp_path / "c", _codes(5))


def test_items_with_string_ids(small: Catalog) -> None:
    _replace_items(small.path, pl.DataFrame({"id": ["a", "b", "c", "d", "e"]}))
    with pytest.raises(CatalogFormatError, match="column 'id' has type String; expected Int64"):
        Catalog.open(small.path)


def test_items_with_null_ids(small: Catalog) -> None:
    _replace_items(small.path, pl.DataFrame({"id": [0, 1, None, 3, 4]}))
    catalog = Catalog.open(small.path)
    with pytest.raises(CatalogFormatError, match="column 'id' has 1 null ids"):
        _ = catalog.item_ids
    with pytest.raises(CatalogFormatError, match="null ids"):
        _ = catalog.items


def test_items_with_duplicate_ids(small: Catalog) -> None:
    _replace_items(small.path, pl.DataFrame({"id": [0, 1, 1, 3, 3]}))
    with pytest.raises(CatalogFormatError, match=r"duplicate ids: \[1, 3\]"):
        _ = Catalog.open(small.path).item_ids


def test_items_without_an_id_column(small: Catalog) -> None:
    _replace_items(small.path, pl.DataFrame({"caption": ["x"] * 5}))
    with pytest.raises(CatalogFormatError, match="no 'id' column"):
        Catalog.open(small.path)


def test_items_with_uint64_ids_above_int64(small: Catalog) -> None:
    _replace_items(small.path, pl.DataFrame({"id": pl.Series([0, 1, 2, 3, 2**63 + 5], dtype=pl.UInt64)}))
    with pytest.raises(CatalogFormatError, match="ids above"):
        _ = Catalog.open(small.path).item_ids


def test_items_that_are_not_parquet_inside(small: Catalog) -> None:
    _replace_items(small.path, b"PAR1" + bytes(range(256)) * 4 + b"PAR1")
    with pytest.raises(CatalogFormatError, match="unreadable parquet"):
        Catalog.open(small.path)


def test_create_refuses_uint64_ids_above_int64(tmp_path: Path) -> None:
    ids = pl.Series("id", [1, 2**63 + 1], dtype=pl.UInt64)
    with pytest.raises(InvalidArgumentError, match="ids above"):
        Catalog.create(tmp_path / "c", _codes(2), pl.DataFrame(ids))
    assert not (tmp_path / "c").exists()


def _mutate(data: bytes, data_flips: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for at, value in data_flips:
        out[at % len(out)] = value
    return bytes(out)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    flips=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1, max_size=8),
    column=st.sampled_from(["none", "id_str", "id_null", "id_dup", "id_float", "extra"]),
)
def test_items_fuzz_every_open_and_read_is_typed(tmp_path_factory: pytest.TempPathFactory, flips, column) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("fuzz") / "c"
    tables = {
        "none": pl.DataFrame({"id": np.arange(6)}),
        "id_str": pl.DataFrame({"id": [str(i) for i in range(6)]}),
        "id_null": pl.DataFrame({"id": [0, None, 2, 3, 4, 5]}),
        "id_dup": pl.DataFrame({"id": [0, 0, 2, 3, 4, 5]}),
        "id_float": pl.DataFrame({"id": np.arange(6, dtype=np.float64)}),
        "extra": pl.DataFrame({"id": np.arange(6), "caption": ["a"] * 6, "x": [1.5] * 6}),
    }
    Catalog.create(root, _codes(6))
    buffer = io.BytesIO()
    tables[column].write_parquet(buffer)
    _replace_items(root, _mutate(buffer.getvalue(), flips))
    try:
        catalog = Catalog.open(root)
        _ = catalog.item_ids
        _ = catalog.items
    except ClipBranchesError:
        pass
    shutil.rmtree(root.parent)


# --- 5. reserved item column names -------------------------------------------------------------


@pytest.mark.parametrize("name", ["score", "rank", "labelled"])
def test_reserved_item_column_refused_at_create(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidArgumentError, match=f"items column '{name}' is reserved"):
        Catalog.create(tmp_path / "c", _codes(3), pl.DataFrame({"id": [0, 1, 2], name: [1, 2, 3]}))


@pytest.mark.parametrize("name", ["score", "rank", "labelled"])
def test_reserved_item_column_refused_at_open(small: Catalog, name: str) -> None:
    _replace_items(small.path, pl.DataFrame({"id": np.arange(5), name: np.arange(5)}))
    with pytest.raises(CatalogFormatError, match=f"has a column '{name}', a name reserved"):
        Catalog.open(small.path)


# --- 6. symlinks out of the catalog ------------------------------------------------------------


@pytest.mark.parametrize("name", ["codes.u8", "items.parquet", "manifest.json", INDEX_FILE])
def test_symlink_out_of_the_catalog_is_refused(tmp_path: Path, name: str) -> None:
    catalog = Catalog.create(tmp_path / "c", _codes(200))
    catalog.build_index(block_items=128)
    inside = catalog.path / name
    outside = tmp_path / "outside"
    shutil.move(inside, outside)
    inside.symlink_to(outside)
    error = IndexFormatError if name == INDEX_FILE else CatalogFormatError
    with pytest.raises(error, match="symbolic link"):
        _ = Catalog.open(catalog.path).index


# --- 7. FIFO hangs -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["manifest.json", "codes.u8", "items.parquet", INDEX_FILE])
def test_fifo_in_place_of_a_file_is_refused_without_hanging(tmp_path: Path, name: str) -> None:
    catalog = Catalog.create(tmp_path / "c", _codes(200))
    catalog.build_index(block_items=128)
    (catalog.path / name).unlink()
    os.mkfifo(catalog.path / name)
    out = _run_bounded(
        f"""
        from clipbranches import Catalog, ClipBranchesError
        try:
            Catalog.open({str(catalog.path)!r}).index
        except ClipBranchesError as e:
            print(type(e).__name__, e)
        """
    )
    assert out.startswith(("CatalogFormatError", "IndexFormatError")), out
    assert "FIFO" in out or "not a regular file" in out, out


def test_fifo_in_place_of_items_is_refused_on_lazy_read(small: Catalog) -> None:
    catalog = Catalog.open(small.path)
    (small.path / "items.parquet").unlink()
    os.mkfifo(small.path / "items.parquet")
    with pytest.raises(CatalogFormatError, match="FIFO"):
        _ = catalog.items


# --- 8. index partials never swept ---------------------------------------------------------------


def test_dead_writers_index_partials_are_swept(tmp_path: Path) -> None:
    catalog = Catalog.create(tmp_path / "c", _codes(200))
    index_dir = catalog.path / "index"
    index_dir.mkdir()
    dead = index_dir / ".blocks.cbi.partial-4194304"  # above any pid_max: no such process
    live = index_dir / f".blocks.cbi.partial-{os.getppid()}"
    dead.write_bytes(b"x" * 1000)
    live.write_bytes(b"x" * 10)
    catalog.build_index(block_items=128)
    assert not dead.exists()
    assert live.exists()


def test_killed_index_build_leaves_a_partial_that_the_next_build_sweeps(tmp_path: Path) -> None:
    catalog = Catalog.create(tmp_path / "c", _codes(200))
    (catalog.path / "index").mkdir()
    # A child that stops where a writer killed mid-write would: its partial written, no rename.
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import os, time; open({str(catalog.path / 'index')!r} + f'/.blocks.cbi.partial-{{os.getpid()}}', 'wb')"
            ".write(b'x' * 4096); print('ready', flush=True); time.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        partial = catalog.path / "index" / f".blocks.cbi.partial-{proc.pid}"
        catalog.build_index(block_items=128)
        assert partial.exists()  # its writer is alive: kept
    finally:
        os.kill(proc.pid, 9)
        proc.wait(timeout=SUBPROCESS_LIMIT)
        if proc.stdout is not None:
            proc.stdout.close()
    catalog.build_index(block_items=128)
    assert not partial.exists()


# --- 9. untyped store arguments ----------------------------------------------------------------


@pytest.mark.parametrize("dim", [-1, 0, 2**70, "32", 3.0, True])
def test_create_with_a_bad_dim_is_typed(tmp_path: Path, dim: object) -> None:
    with pytest.raises(InvalidArgumentError, match="dim must be"):
        Catalog.create(tmp_path / "c", iter([]), dim=dim)  # type: ignore[arg-type]
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("block_items", [-128, 0, 2**70, "128", 100])
def test_build_index_with_bad_block_items_is_typed(small: Catalog, block_items: object) -> None:
    with pytest.raises(InvalidArgumentError, match="block_items must be a multiple of 128"):
        small.build_index(block_items=block_items)  # type: ignore[arg-type]


def test_every_store_error_here_is_a_catalog_or_argument_error() -> None:
    for error in (CatalogChangedError, CatalogExistsError, CatalogFormatError, IndexFormatError):
        assert issubclass(error, CatalogError)


def test_a_stale_engine_reads_no_heads_or_thumbnails_of_the_replacement(tmp_path: Path) -> None:
    from clipbranches import CatalogChangedError, SearchEngine

    def with_thumbnail(staging: Path) -> None:
        (staging / "thumbs").mkdir()
        (staging / "thumbs" / "0.jpg").write_bytes(b"old thumbnail")

    codes = np.random.default_rng(0).integers(0, 256, (50, 32), np.uint8)
    Catalog.create(tmp_path / "c", codes, attach=with_thumbnail)
    engine = SearchEngine(Catalog.open(tmp_path / "c"))
    results = engine.search_image(0, k=5)
    assert results.thumbnail(0) is not None
    Catalog.create(tmp_path / "c", codes[::-1].copy(), overwrite=True, attach=with_thumbnail)
    with pytest.raises(CatalogChangedError, match="replaced"):
        results.thumbnail(0)
    with pytest.raises(CatalogChangedError, match="replaced"):
        engine.search_text("a dog")  # the heads it would load are the replacement's
