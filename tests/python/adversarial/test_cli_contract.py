"""The CLI contract under bad input (issue 15): every subcommand with bad arguments exits 2 with
one line on stderr (``clipbranches CMD: ...``), no traceback, and with ``--json`` one JSON
error object on stdout; arguments are checked before any work."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from clipbranches import testing
from clipbranches.cli import main


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("contract") / "cat"
    testing.make_catalog(path, 2000, k=5)
    return path


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten captioned images: enough for train-head to get past its listing."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("pairs")
    for i in range(10):
        Image.new("RGB", (8, 8), (i * 20, 0, 0)).save(folder / f"{i}.png")
        (folder / f"{i}.txt").write_text(f"red {i}")
    return folder


def cases(catalog: Path, pairs: Path, tmp: Path) -> list[tuple[list[str], str]]:
    """(arguments, a phrase the one stderr line must hold)."""
    missing = tmp / "nowhere" / "x"
    not_a_catalog = tmp / "plain.txt"
    not_a_catalog.write_text("hello")
    session = tmp / "session.json"
    return [
        (["train-head", str(tmp / "none"), str(tmp / "h.safetensors")], "not a folder of images"),
        (["train-head", str(pairs), str(missing)], "does not exist"),
        (["train-head", str(pairs), str(tmp / "h.safetensors"), "--koleo", "nan"], "finite number"),
        (["train-head", str(pairs), str(tmp / "h.safetensors"), "--epochs", "0"], "at least 1"),
        (["ingest", str(tmp / "none"), str(tmp / "new"), "--head", str(tmp / "h")], ""),
        (["ingest", str(pairs), str(tmp / "new"), "--head", str(tmp / "h"), "--chunk-size", "0"], "at least 1"),
        (["index", str(missing)], "not found"),
        (["index", str(catalog), "--block-items", "-128"], "at least 1"),
        (["index", str(catalog), "--block-items", "abc"], "not a whole number"),
        (["index", str(catalog), "--block-items", "100"], "multiple of 128"),
        (["info", str(not_a_catalog)], ""),
        (["verify", str(missing)], "not found"),
        (["search", str(catalog)], "exactly one query"),
        (["search", str(catalog), "--item", "1", "--image", "x.png"], "exactly one query"),
        (["search", str(catalog), "--item", "99999999"], "not in the catalog"),
        (["search", str(catalog), "--item", "1", "-k", "0"], "at least 1"),
        (["search", str(catalog), "--item", "1", "--session", str(missing)], "is not a directory"),
        (["search", str(catalog), "a red dress"], "cannot take text or image queries"),
        (["refine", "--positive", "1"], "name the catalog"),
        (["refine", str(catalog), "--positive", "1"], "unrecognized arguments"),
        (["refine", "--catalog", str(catalog), "--positive", "1", "--model", "nope"], "unknown model"),
        (["refine", "--catalog", str(catalog), "--positive", "99999999"], "not in the catalog"),
        (["refine", "--catalog", str(catalog), "--positive", "1", "--rules"], "has no rules"),
        (["refine", "--catalog", str(catalog), "--positive", "1", "--export", str(tmp / "x.txt")], ".parquet or .csv"),
        (
            ["refine", "--catalog", str(catalog), "--positive", "1", "--export", str(missing) + ".csv"],
            "not a directory",
        ),
        (["refine", "--catalog", str(catalog), "--positive", "1", "--negative-weight", "0"], "negative_weight"),
        (["refine", "--catalog", str(catalog), "--positive", "1", "--random-negatives", "10001"], "random_negatives"),
        (["refine", "--catalog", str(catalog), "--positive", "1", "--negative", "1"], "both positive and negative"),
        (["refine", "--catalog", str(catalog), "--session", str(missing), "--positive", "1"], "not a directory"),
        (["export", str(tmp / "out.csv"), "--session", str(session)], "no session file"),
        (["tui", str(missing)], ""),
        (["demo", "--dataset", "bogus"], "invalid choice"),
        (["demo", "--limit", "0"], "at least 1"),
        (["nope"], "invalid choice"),
    ]


def run(capsys: pytest.CaptureFixture[str], args: list[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_every_subcommand_with_bad_arguments_exits_2_with_one_line(
    catalog: Path, pairs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for args, phrase in cases(catalog, pairs, tmp_path):
        code, out, err = run(capsys, args)
        lines = err.strip().splitlines()
        assert code == 2, (args, code, err)
        assert len(lines) == 1, (args, err)
        assert lines[0].startswith("clipbranches"), (args, err)
        assert phrase in lines[0], (args, phrase, err)
        assert "Traceback" not in err + out, args


def test_with_json_every_failure_is_one_json_object(
    catalog: Path, pairs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with_json = {"train-head", "ingest", "index", "info", "verify", "search", "refine"}
    for args, _ in cases(catalog, pairs, tmp_path):
        if args[0] not in with_json:
            continue
        code, out, err = run(capsys, [*args, "--json"])
        assert code == 2, (args, err)
        error = json.loads(out)["error"]  # stdout is exactly one JSON object
        assert error["exit"] == 2
        assert error["type"].endswith("Error")
        assert error["message"] in err, (args, err)


def test_refine_rules_with_json_puts_the_rules_inside_the_object(
    catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys,
        [
            "refine",
            "--catalog",
            str(catalog),
            "--positive",
            "1",
            "2",
            "--model",
            "branch",
            "--rules",
            "--json",
            "--seed",
            "0",
        ],
    )
    assert code == 0
    answer = json.loads(out)  # one object: no SQL text beside it
    assert answer["rules"]["sql"].startswith("SELECT id FROM codes WHERE")
    assert "accepted when" in answer["rules"]["text"]


def test_an_internal_error_is_one_line_with_exit_1(
    catalog: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from clipbranches.cli import build

    class NativePanic(BaseException):  # what pyo3's PanicException derives from
        pass

    def panic(_: object) -> int:
        raise NativePanic("the native core panicked")

    monkeypatch.setattr(build, "info", panic)
    code = main(["info", str(catalog), "--json"])
    out, err = capsys.readouterr()
    assert code == 1
    assert err.strip() == "clipbranches info: internal error: NativePanic: the native core panicked"
    assert json.loads(out)["error"]["type"] == "InternalError"


def test_the_installed_command_keeps_the_contract(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("clipbranches")
    done = subprocess.run(
        [str(exe), "index", str(tmp_path / "none"), "--block-items", "x", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert json.loads(done.stdout)["error"]["type"] == "InvalidArgumentError"
