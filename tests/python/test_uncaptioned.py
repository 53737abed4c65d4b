"""A user's own folder without captions, through the command line: ingest with the default heads
(no --head), text search, a refine round, an export; and pseudo-caption heads from train-head."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

pytest.importorskip("torch")
pytest.importorskip("wordllama")
data = pytest.importorskip("skimage.data")

from PIL import Image  # noqa: E402

from clipbranches import Catalog  # noqa: E402
from clipbranches.cli import main  # noqa: E402

PHOTOS = ("chelsea", "coffee", "rocket", "astronaut", "camera", "coins", "clock", "moon", "horse", "brick", "grass")
CPU = ["--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each photo whole and as two crops, no caption files."""
    root = tmp_path_factory.mktemp("own")
    for name in PHOTOS:
        image = Image.fromarray(getattr(data, name)()).convert("RGB")
        w, h = image.size
        views = [image, image.crop((0, 0, int(w * 0.8), int(h * 0.8))), image.crop((w // 5, h // 5, w, h))]
        for v, view in enumerate(views):
            view.save(root / f"{name}_{v}.jpg", quality=90)
    return root


def _json(capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(capsys.readouterr().out)


def _stems(uris: list[str]) -> list[str]:
    return [Path(u).stem.rsplit("_", 1)[0] for u in uris]


def test_an_uncaptioned_folder_is_searchable_refinable_and_exportable(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = tmp_path / "own.catalog"
    assert main(["ingest", str(folder), str(catalog), *CPU, "--json"]) == 0
    summary = _json(capsys)
    assert summary["items"] == 3 * len(PHOTOS)
    assert summary["heads"] == "default, no captions needed (ConSE + PCA-32 of the class prompts)"
    assert Catalog.open(catalog).manifest["head"]["kind"] == "projection"

    session = tmp_path / "s.json"
    assert main(["search", str(catalog), "a cat", "-k", "3", "--session", str(session), "--json"]) == 0
    found = _json(capsys)
    assert _stems([i["uri"] for i in found["items"]])[0] == "chelsea"
    assert main(["search", str(catalog), "a cup of coffee", "-k", "3", "--json"]) == 0
    assert _stems([i["uri"] for i in _json(capsys)["items"]])[0] == "coffee"

    cats = [i["id"] for i in found["items"] if Path(i["uri"]).stem.startswith("chelsea")]
    others = [i["id"] for i in found["items"] if not Path(i["uri"]).stem.startswith("chelsea")]
    refine = ["refine", "--session", str(session), "--positive", *map(str, cats), "--model", "linear", "--seed", "0"]
    assert main([*refine, *(["--negative", *map(str, others)] if others else []), "--json"]) == 0
    assert _json(capsys)["total"] >= len(cats)
    assert main(["export", str(tmp_path / "out.csv"), "--session", str(session)]) == 0
    exported = pl.read_csv(tmp_path / "out.csv")
    assert set(cats) <= set(exported["id"].to_list())


def test_pseudo_captions_train_heads_on_an_uncaptioned_folder(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    head = tmp_path / "pseudo.safetensors"
    train = ["train-head", str(folder), str(head), "--epochs", "3", "--hidden", "32", *CPU, "--json"]
    assert main(train[:-1]) == 2  # no captions and no --pseudo-captions: nothing to train on
    assert "--pseudo-captions" in capsys.readouterr().err
    assert main([*train, "--pseudo-captions"]) == 0
    summary = _json(capsys)
    assert summary["pairs"] == summary["pseudo_captions"] == 3 * len(PHOTOS)
    assert main(["ingest", str(folder), str(tmp_path / "c"), "--head", str(head), *CPU, "--json"]) == 0
    assert _json(capsys)["heads"] == str(head)


def test_pseudo_captions_need_the_offline_towers(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("open_clip")
    spec = "open_clip:ViT-B-32:random"
    args = ["train-head", str(folder), str(tmp_path / "h"), "--pseudo-captions", "--encoder", spec, *CPU]
    assert main(args) == 2
    assert "needs the offline towers" in capsys.readouterr().err
