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


from clipbranches import Catalog, testing  # noqa: E402
from clipbranches.cli import main  # noqa: E402

PHOTOS = ("chelsea", "coffee", "rocket", "astronaut", "camera", "coins", "clock", "moon", "horse", "brick", "grass")
CPU = ["--device", "cpu", "--quiet"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each photo whole and as two crops, no caption files."""
    root = tmp_path_factory.mktemp("own")
    testing.photo_views(root, PHOTOS)
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
    assert summary["heads"] == (
        "default, no captions needed (ConSE + PCA-32, fitted on the class prompts: fewer than 1,000 images)"
    )
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


def test_kept_features_train_and_reproject_without_encoding_again(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    from clipbranches.embed import encoders
    from clipbranches.embed.codes import FEATURES_FILE, load_features

    catalog = tmp_path / "kept"
    assert main(["ingest", str(folder), str(catalog), "--keep-features", *CPU]) == 0
    capsys.readouterr()
    first = Catalog.open(catalog)
    kept = load_features(first)
    items, codes = first.items, np.array(first.codes)  # read before the catalog is replaced
    assert kept.shape == (len(first), 1280)
    assert kept.dtype == np.float16

    def no_encoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("encoded images again")

    monkeypatch.setattr(encoders, "encode_files", no_encoding)
    head = tmp_path / "h.safetensors"
    train = ["train-head", str(catalog), str(head), "--pseudo-captions", "--epochs", "3", "--hidden", "32"]
    assert main([*train, *CPU, "--json"]) == 0
    assert _json(capsys)["pseudo_captions"] == len(items)

    assert main(["reproject", str(catalog), str(catalog), "--head", str(head), "--overwrite", "--json"]) == 0
    assert _json(capsys)["items"] == len(items)
    again = Catalog.open(catalog)
    assert again.manifest["head"].get("kind", "mlp") == "mlp"  # trained heads now
    assert again.items.equals(items)
    assert (catalog / FEATURES_FILE).is_file()
    assert len(list((catalog / "thumbs").iterdir())) == len(items)
    assert main(["search", str(catalog), "a cat", "-k", "3", "--json"]) == 0
    # Back to the default heads from the float16 features: the codes ingest made from float32.
    assert main(["reproject", str(catalog), str(tmp_path / "back"), "--json"]) == 0
    capsys.readouterr()
    difference = np.abs(Catalog.open(tmp_path / "back").codes.astype(int) - codes.astype(int))
    assert difference.max() <= 2
    assert (difference == 0).mean() > 0.9


def test_reproject_needs_kept_features_and_refuses_damaged_ones(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from clipbranches.embed.codes import FEATURES_FILE

    catalog = tmp_path / "plain"
    assert main(["ingest", str(folder), str(catalog), *CPU]) == 0
    capsys.readouterr()
    assert main(["reproject", str(catalog), str(tmp_path / "x")]) == 2
    assert "keeps no tower features" in capsys.readouterr().err
    (catalog / FEATURES_FILE).write_bytes(b"not numpy")
    assert main(["reproject", str(catalog), str(tmp_path / "x")]) == 2
    assert "unreadable features" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_default_heads_are_fitted_on_the_catalogs_own_images(
    folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np
    import torch

    from clipbranches.embed.codes import load_features, project_images
    from clipbranches.embed.head import defaults, load_heads

    monkeypatch.setattr(defaults, "MIN_FIT_IMAGES", 10)  # the folder's 33 images are enough here
    catalog = tmp_path / "fitted"
    assert main(["ingest", str(folder), str(catalog), "--keep-features", *CPU]) == 0
    capsys.readouterr()
    opened = Catalog.open(catalog)
    heads = load_heads(catalog / "head.safetensors")
    features = np.asarray(load_features(opened), np.float32)
    with torch.no_grad():
        joined = heads.to_space(torch.from_numpy(features)).numpy()
    np.testing.assert_allclose(heads.image_mean.numpy(), joined.mean(axis=0), atol=1e-5)
    np.testing.assert_array_equal(heads.text_mean.numpy(), heads.image_mean.numpy())  # ConSE: one mean
    np.testing.assert_array_equal(project_images(heads, load_features(opened)), opened.codes)
    assert main(["search", str(catalog), "a cat", "-k", "3", "--json"]) == 0
    assert _json(capsys)["total"] == 3
