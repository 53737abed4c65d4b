"""The engine on a real-image catalog: scikit-image's bundled photos (five views each) through
the offline towers, a head trained on their captions, ingest, then text search, image search
and a fine-tuning round."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("wordllama")
data = pytest.importorskip("skimage.data")

from PIL import Image  # noqa: E402

from clipbranches.cli import main  # noqa: E402
from clipbranches.engine import SearchEngine  # noqa: E402

CAPTIONS = {
    "astronaut": "an astronaut in a space suit",
    "coffee": "a cup of coffee",
    "chelsea": "a cat",
    "rocket": "a rocket on a launch pad",
    "camera": "a man with a camera",
    "hubble_deep_field": "galaxies in deep space",
    "immunohistochemistry": "cells under a microscope",
    "moon": "the surface of the moon",
    "page": "a page of printed text",
    "coins": "old coins",
    "horse": "a horse",
    "clock": "a clock",
    "retina": "a retina of an eye",
    "brick": "a brick wall",
    "grass": "grass",
    "colorwheel": "a colour wheel",
}
VIEWS = 5


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each photo as five views (whole, four 80% corner crops, every other one mirrored)."""
    folder = tmp_path_factory.mktemp("photos")
    for name, caption in CAPTIONS.items():
        image = Image.fromarray(getattr(data, name)()).convert("RGB")
        w, h = image.size
        cw, ch = int(w * 0.8), int(h * 0.8)
        views = [image] + [image.crop((x, y, x + cw, y + ch)) for x in (0, w - cw) for y in (0, h - ch)]
        for v, view in enumerate(views[:VIEWS]):
            if v % 2:
                view = view.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            view.save(folder / f"{name}_{v}.jpg", quality=90)
            (folder / f"{name}_{v}.txt").write_text(caption)
    return folder


@pytest.fixture(scope="module")
def engine(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> SearchEngine:
    work = tmp_path_factory.mktemp("catalog")
    head = work / "head.safetensors"
    options = ["--device", "cpu", "--quiet"]
    assert main(["train-head", str(photos), str(head), "--epochs", "60", "--hidden", "128", *options]) == 0
    assert main(["ingest", str(photos), str(work / "cat"), "--head", str(head), *options]) == 0
    return SearchEngine.open(work / "cat", build_index=True)


def names(engine: SearchEngine, rows: np.ndarray) -> list[str]:
    uris = engine.catalog.items["uri"].to_list()
    return [Path(uris[r]).stem.rsplit("_", 1)[0] for r in rows]


def test_text_search_finds_the_captioned_photo(engine: SearchEngine) -> None:
    assert len(engine) == len(CAPTIONS) * VIEWS
    for query, expected in (("a cat", "chelsea"), ("a cup of coffee", "coffee"), ("a horse", "horse")):
        results = engine.search_text(query, k=VIEWS)
        assert names(engine, results.rows).count(expected) >= 3, (query, names(engine, results.rows))
        assert results.timings["encode"] > 0


def test_image_search_by_file_and_by_item(engine: SearchEngine, photos: Path) -> None:
    by_file = engine.search_image(photos / "rocket_0.jpg", k=3)
    assert names(engine, by_file.rows)[0] == "rocket"
    by_item = engine.search_image(int(by_file.ids[0]), k=3)
    assert by_item.ids[0] == by_file.ids[0]


def test_one_fine_tuning_round_returns_the_labelled_subject(engine: SearchEngine) -> None:
    first = engine.search_text("a clock", k=10)
    clocks = [int(i) for i, n in zip(first.ids, names(engine, first.rows), strict=True) if n == "clock"]
    others = [int(i) for i, n in zip(first.ids, names(engine, first.rows), strict=True) if n != "clock"]
    assert len(clocks) >= 2
    refined = engine.refine(clocks[:2], others[:3], model="linear", seed=0)
    top = names(engine, refined.rows[:VIEWS])
    assert top.count("clock") >= 4, top
    assert engine.catalog.path.joinpath("thumbs").is_dir()
    assert refined.thumbnail(int(refined.rows[0])) is not None
