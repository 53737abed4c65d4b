"""The demo pipeline end to end on a small subset (300 Fashion-MNIST images, no UI): a query
for one class returns mostly that class after one refine round; a second build reuses the
catalog; a missing dataset says how to install it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("wordllama")

from clipbranches import DatasetNotFoundError  # noqa: E402
from clipbranches.cli import main  # noqa: E402
from clipbranches.datasets import require  # noqa: E402
from clipbranches.demo import DATASETS, _spread, build_demo, demo_round  # noqa: E402
from clipbranches.engine import SearchEngine  # noqa: E402


def test_demo_round_on_a_subset_finds_the_class(tmp_path: Path) -> None:
    path = build_demo(tmp_path, "fashion-mnist", limit=300, progress=False, log=lambda _: None)
    engine = SearchEngine.open(path)
    assert len(engine) == 300
    assert engine.has_index
    assert len(list((path / "thumbs").iterdir())) == 300
    query, wanted = DATASETS["fashion-mnist"]
    found = demo_round(engine, query, wanted, log=lambda _: None)
    assert found["refined_share"] >= 0.6, found  # mostly the class asked for
    assert found["refined_share"] > found["first_share"], found
    assert found["accepted_wanted"] >= 0.8 * found["total_wanted"], found

    started = time.perf_counter()
    assert build_demo(tmp_path, "fashion-mnist", limit=300, log=lambda _: None) == path
    assert time.perf_counter() - started < 5, "the second run reuses the catalog"


def test_demo_command_without_a_ui(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["demo", "--dir", str(tmp_path), "--dataset", "fashion-mnist", "--limit", "200", "--quiet", "--no-tui"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert 'search "a photo of a sneaker"' in out
    assert "refined (hybrid)" in out


def test_a_missing_dataset_says_how_to_install_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(
        DatasetNotFoundError, match="make data.*apt-get install -y --no-install-recommends openclipart-png"
    ):
        require("openclipart", tmp_path / "nowhere")
    with pytest.raises(DatasetNotFoundError, match="dataset-fashion-mnist"):
        build_demo(tmp_path, "fashion-mnist", root=tmp_path / "nowhere", log=lambda _: None)


def test_subsets_are_spread_over_the_classes() -> None:
    import numpy as np

    labels = np.array(["a"] * 50 + ["b"] * 5 + ["c"] * 50)
    picked = _spread(labels, 30)
    assert len(picked) == 30
    assert sorted(set(labels[picked])) == ["a", "b", "c"]
    assert (labels[picked] == "b").sum() == 5
    assert len(_spread(labels, None)) == len(labels)
