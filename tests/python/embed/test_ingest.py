"""Ingest: a small folder with a corrupt image and a missing file, CSV sources, thumbnails,
resume after an interruption, and bad inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

torch = pytest.importorskip("torch")

from PIL import Image  # noqa: E402

from clipbranches import CatalogExistsError, InvalidArgumentError  # noqa: E402
from clipbranches.embed.head import HeadConfig, Heads, load_heads  # noqa: E402
from clipbranches.embed.ingest import ingest, list_source  # noqa: E402
from clipbranches.testing import MeanColourEncoder, tiny_heads  # noqa: E402


@pytest.fixture
def heads() -> Heads:
    return tiny_heads()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    src = tmp_path / "photos"
    (src / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(7):
        where = src / "sub" if i % 3 == 0 else src
        Image.fromarray(rng.integers(0, 256, (20 + i, 30, 3), dtype=np.uint8)).save(where / f"img{i}.png")
        if i % 2 == 0:
            (where / f"img{i}.txt").write_text(f"caption {i}\n")
    (src / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (src / "notes.md").write_text("ignored: not an image")
    return src


def test_folder_ingest_skips_the_corrupt_image_and_writes_thumbnails(
    tmp_path: Path, folder: Path, heads: Heads
) -> None:
    catalog, report = ingest(
        folder, tmp_path / "cat", encoder=MeanColourEncoder(), heads=heads, chunk_size=3, batch_size=2
    )
    assert len(catalog) == 7
    assert report.items == 7
    assert [Path(p).name for p, _ in report.skipped] == ["broken.jpg"]
    assert catalog.codes.shape == (7, 32)
    items = catalog.items
    assert items["id"].to_list() == list(range(7))
    captions = dict(zip([Path(u).name for u in items["uri"]], items["caption"], strict=True))
    assert captions["img2.png"] == "caption 2"
    assert captions["img1.png"] is None
    assert sorted(p.name for p in (catalog.path / "thumbs").iterdir()) == [f"{i}.jpg" for i in range(7)]
    with Image.open(catalog.path / "thumbs" / "0.jpg") as thumb:
        assert max(thumb.size) <= 160
    assert catalog.manifest["encoder"] == {"kind": "test-mean-colour"}
    assert load_heads(catalog.path / "head.safetensors").config == heads.config
    assert not list(tmp_path.glob(".cat.ingest*")), "work dir removed"
    catalog.verify()


def test_csv_source_with_a_missing_file(tmp_path: Path, folder: Path, heads: Heads) -> None:
    table = tmp_path / "list.csv"
    pl.DataFrame(
        {"path": ["photos/img1.png", "photos/nope.png", "photos/img2.png"], "caption": ["a", "b", "c"]}
    ).write_csv(table)
    listing = list_source(table)
    assert listing["uri"].to_list()[1] == str((tmp_path / "photos" / "nope.png").resolve())
    catalog, report = ingest(table, tmp_path / "cat", encoder=MeanColourEncoder(), heads=heads)
    assert catalog.items["caption"].to_list() == ["a", "c"]
    assert report.skipped == [(str((tmp_path / "photos" / "nope.png").resolve()), "file not found")]


def test_url_sources_are_fetched(tmp_path: Path, folder: Path, heads: Heads) -> None:
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        table = tmp_path / "urls.parquet"
        pl.DataFrame({"url": [f"{base}/img1.png", f"{base}/gone.png"]}).write_parquet(table)
        catalog, report = ingest(table, tmp_path / "cat", encoder=MeanColourEncoder(), heads=heads)
    finally:
        server.shutdown()
        server.server_close()
    assert len(catalog) == 1
    assert catalog.items["uri"].to_list() == [f"{base}/img1.png"]
    assert report.skipped[0][0] == f"{base}/gone.png"
    assert report.skipped[0][1].startswith("cannot fetch")


def test_an_interrupted_ingest_resumes_from_its_last_chunk(tmp_path: Path, folder: Path, heads: Heads) -> None:
    encoder = MeanColourEncoder()

    def stop_after_second(done: int, chunks: int) -> None:
        assert chunks == 3
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ingest(folder, tmp_path / "cat", encoder=encoder, heads=heads, chunk_size=3, on_chunk=stop_after_second)
    assert not (tmp_path / "cat").exists(), "no catalog until the end"
    seen_before = encoder.images_seen
    assert seen_before == 5  # chunks 0 and 1: six files, one of them broken
    catalog, report = ingest(folder, tmp_path / "cat", encoder=encoder, heads=heads, chunk_size=3)
    assert report.resumed_chunks == 2
    assert encoder.images_seen - seen_before == 2  # only the last chunk was encoded
    fresh, _ = ingest(folder, tmp_path / "fresh", encoder=MeanColourEncoder(), heads=heads, chunk_size=3)
    np.testing.assert_array_equal(catalog.codes, fresh.codes)


def test_bad_inputs(tmp_path: Path, folder: Path, heads: Heads) -> None:
    (tmp_path / "cat").mkdir()
    with pytest.raises(CatalogExistsError, match=r"pass overwrite=True \(--overwrite on the command line\)"):
        ingest(folder, tmp_path / "cat", encoder=MeanColourEncoder(), heads=heads)
    with pytest.raises(InvalidArgumentError, match="not a folder of images"):
        ingest(tmp_path / "nothing.txt", tmp_path / "x", encoder=MeanColourEncoder(), heads=heads)
    wrong = Heads(HeadConfig(12, 6, hidden=(8,)))
    with pytest.raises(InvalidArgumentError, match="12-d image features"):
        ingest(folder, tmp_path / "y", encoder=MeanColourEncoder(), heads=wrong)
    table = tmp_path / "t.csv"
    pl.DataFrame({"file": ["a.png"]}).write_csv(table)
    with pytest.raises(InvalidArgumentError, match="'path', 'uri' or 'url' column"):
        ingest(table, tmp_path / "z", encoder=MeanColourEncoder(), heads=heads)


def test_every_file_of_a_catalog_has_the_mode_of_its_codes(tmp_path: Path, folder: Path, heads: Heads) -> None:
    import os

    old = os.umask(0o002)  # group-writable: a mode no writer would pick by accident
    try:
        catalog, _ = ingest(folder, tmp_path / "cat", encoder=MeanColourEncoder(), heads=heads, chunk_size=3)
    finally:
        os.umask(old)
    mode = (catalog.path / "codes.u8").stat().st_mode & 0o777
    modes = {str(p.relative_to(catalog.path)): p.stat().st_mode & 0o777 for p in catalog.path.rglob("*") if p.is_file()}
    assert "head.safetensors" in modes
    assert modes == dict.fromkeys(modes, mode)


def test_items_have_the_size_of_each_image_before_shrinking(tmp_path: Path, folder: Path, heads: Heads) -> None:
    Image.new("RGB", (1000, 500), "navy").save(folder / "poster.png")  # shrunk to a 448 short side when decoded
    catalog, report = ingest(folder, tmp_path / "cat", encoder=MeanColourEncoder(), heads=heads, chunk_size=3)
    sizes = {Path(u).name: (w, h) for u, w, h in catalog.items.select("uri", "width", "height").iter_rows()}
    assert sizes["poster.png"] == (1000, 500)
    assert sizes["img4.png"] == (30, 24)
    assert catalog.items["width"].null_count() == 0
    assert report.sizes.tolist() == [list(row) for row in catalog.items.select("width", "height").rows()]


def test_exact_duplicates_are_skipped_and_near_duplicates_reported(tmp_path: Path, folder: Path, heads: Heads) -> None:
    import shutil

    shutil.copyfile(folder / "img1.png", folder / "zcopy.png")  # the same bytes
    with Image.open(folder / "img2.png") as image:  # the same pixels, other bytes
        image.save(folder / "zresaved.png", compress_level=0)
    assert (folder / "zresaved.png").read_bytes() != (folder / "img2.png").read_bytes()
    encoder = MeanColourEncoder()
    catalog, report = ingest(folder, tmp_path / "cat", encoder=encoder, heads=heads, chunk_size=3)
    first, copy, resaved = (str((folder / n).resolve()) for n in ("img1.png", "zcopy.png", "zresaved.png"))
    assert (copy, f"duplicate of {first}") in report.skipped
    assert report.near_duplicates == [(resaved, str((folder / "img2.png").resolve()))]
    assert len(catalog) == report.items == 8, "the near-duplicate is kept by default"
    assert copy not in catalog.items["uri"].to_list()
    catalog.verify()

    dropped, report = ingest(
        folder, tmp_path / "cat2", encoder=encoder, heads=heads, chunk_size=3, drop_near_duplicates=True
    )
    assert len(dropped) == report.items == 7
    assert resaved not in dropped.items["uri"].to_list()
    assert len(report.near_duplicates) == 1
    assert sorted(p.name for p in (dropped.path / "thumbs").iterdir()) == [f"{i}.jpg" for i in range(7)]


def test_the_cli_lists_duplicates_and_drops_near_duplicates_on_request(
    tmp_path: Path, folder: Path, heads: Heads, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json
    import shutil

    from clipbranches.cli import main
    from clipbranches.embed import encoders
    from clipbranches.embed.head import save_heads

    shutil.copyfile(folder / "img1.png", folder / "zcopy.png")
    with Image.open(folder / "img2.png") as image:
        image.save(folder / "zresaved.png", compress_level=0)
    save_heads(heads, tmp_path / "head.safetensors")
    monkeypatch.setattr(encoders, "make_encoder", lambda *_, **__: MeanColourEncoder())
    command = ["ingest", str(folder), str(tmp_path / "cat"), "--head", str(tmp_path / "head.safetensors"), "--quiet"]
    assert main(command) == 0
    out = capsys.readouterr().out
    assert "near_duplicates: 1" in out
    assert f"skipped {(folder / 'zcopy.png').resolve()}: duplicate of {(folder / 'img1.png').resolve()}" in out
    assert "(kept; --drop-near-duplicates leaves them out)" in out
    assert main([*command, "--overwrite", "--drop-near-duplicates", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["items"] == 7
    assert summary["near_duplicates_dropped"] is True
    assert summary["near_duplicate_files"] == [
        {"path": str((folder / "zresaved.png").resolve()), "same_codes_as": str((folder / "img2.png").resolve())}
    ]
