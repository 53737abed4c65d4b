"""The command line: train-head then ingest with the offline towers, and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("wordllama")

from PIL import Image  # noqa: E402

from clipbranches import Catalog  # noqa: E402
from clipbranches.cli import main  # noqa: E402


@pytest.fixture
def pairs(tmp_path: Path) -> Path:
    folder = tmp_path / "pairs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(24):
        colour = ("red", "green", "blue")[i % 3]
        pixels = np.zeros((32, 32, 3), np.uint8)
        pixels[..., i % 3] = 200
        pixels += rng.integers(0, 40, pixels.shape, dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:02d}.png")
        (folder / f"{i:02d}.txt").write_text(f"a {colour} square")
    return folder


def test_train_head_then_ingest(tmp_path: Path, pairs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    head = tmp_path / "head.safetensors"
    args = ["train-head", str(pairs), str(head), "--epochs", "2", "--hidden", "32", "--device", "cpu", "--quiet"]
    assert main([*args, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["pairs"] == 24
    assert summary["stopped"].startswith("reached the epoch limit (2)")
    assert head.is_file()
    code = main(
        ["ingest", str(pairs), str(tmp_path / "cat"), "--head", str(head), "--device", "cpu", "--quiet", "--json"]
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out)["items"] == 24
    catalog = Catalog.open(tmp_path / "cat")
    assert catalog.codes.shape == (24, 32)
    assert catalog.manifest["encoder"]["kind"] == "offline"
    # A text query through the catalog's own encoder and head.
    assert main(["search", str(tmp_path / "cat"), "a red square", "-k", "5", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["total"] == 5
    assert found["params"] == {"kind": "text", "query": "a red square", "k": 5}
    assert len(found["items"]) == 5
    assert found["timings_ms"]["encode"] > 0


def test_bad_input_exits_2_with_a_message(tmp_path: Path, pairs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ingest", str(pairs), str(tmp_path / "c"), "--head", str(tmp_path / "none.safetensors")]) == 2
    assert "no head weights" in capsys.readouterr().err
    assert main(["train-head", str(pairs), str(tmp_path / "h"), "--encoder", "clip9000"]) == 2
    assert "unknown encoder" in capsys.readouterr().err


def test_train_head_prints_every_epoch_and_why_it_stopped(
    tmp_path: Path, pairs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train-head", str(pairs), str(tmp_path / "h.safetensors"), "--epochs", "3", "--hidden", "16"]
    assert main([*args, "--device", "cpu"]) == 0
    out, err = capsys.readouterr()
    epochs = [line for line in err.splitlines() if line.startswith("epoch ")]
    assert len(epochs) == 3
    assert "validation R@1" in epochs[0]
    assert "stopped: reached the epoch limit (3); kept epoch" in out
