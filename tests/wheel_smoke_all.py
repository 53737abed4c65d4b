"""Smoke test of the wheel installed with every extra (``[all]``), run from outside the
repository by `make wheel-check`, with only the throwaway venv's packages.

It proves that the installed ``clipbranches`` (not the repository's) searches by item and
refines with the default model through the API and through the ``clipbranches`` command, that a
text search runs end to end with the offline towers (train-head on a small captioned set,
ingest, search), that the terminal UI's wheel is installed and registered, and that
``clipbranches serve`` answers its API and its page (with the page's files inside the wheel).
"""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from importlib.metadata import entry_points

import clipbranches_tui
import numpy as np
from PIL import Image

import clipbranches
from clipbranches import SearchEngine
from clipbranches.learn.registry import DEFAULT_MODEL
from clipbranches.testing import labels, make_catalog

VENV = pathlib.Path(sys.prefix)
COMMAND = VENV / "bin" / "clipbranches"

# Both packages are the wheels' copies in this venv's site-packages, never the repository's.
for module in (clipbranches, clipbranches_tui):
    where = pathlib.Path(module.__file__ or "").resolve()
    assert where.is_relative_to(VENV.resolve()), f"{module.__name__} imported from {where}, not from {VENV}"
    assert "site-packages" in where.parts, f"{module.__name__} imported from {where}, not from site-packages"


def cli(*args: str) -> str:
    """``clipbranches ARGS`` in a subprocess; its stdout (it must exit 0)."""
    done = subprocess.run([str(COMMAND), *args], capture_output=True, text=True, env=os.environ | {"NO_COLOR": "1"})
    assert done.returncode == 0, f"clipbranches {' '.join(args)} exited {done.returncode}: {done.stderr}"
    return done.stdout


def rows(table: str) -> list[str]:
    """The result rows of a printed results table (after the count and the header lines)."""
    lines = table.splitlines()
    assert len(lines) >= 2, table
    assert lines[1].split()[:2] == ["rank", "id"], table
    return lines[2:]


def captioned_images(folder: pathlib.Path) -> None:
    """Twelve small PNGs with .txt captions: cats (orange), dogs (brown), the sea (blue)."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    kinds = [("a cat", (230, 140, 40)), ("a dog", (120, 80, 40)), ("the sea", (30, 90, 220))]
    for i in range(12):
        caption, colour = kinds[i % 3]
        pixels = np.clip(np.array(colour) + rng.integers(-30, 30, (48, 48, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:02d}.png")
        (folder / f"{i:02d}.txt").write_text(f"{caption}, photo {i}")


with tempfile.TemporaryDirectory() as tmp:
    root = pathlib.Path(tmp)

    # 1-2. A synthetic catalog: search by item and a refine round, through the API...
    n, k = 3000, 20
    synthetic = make_catalog(root / "synthetic", n, k=k)
    engine = SearchEngine(synthetic)
    near = engine.search_image(0, k=10)
    assert near.total == 10, near.total
    assert near.ids[0] == 0, "an item is its own nearest neighbour"
    truth = labels(n, k=k)
    positives = np.flatnonzero(truth == truth[0])[:5].tolist()
    negatives = np.flatnonzero(truth != truth[0])[:5].tolist()
    refined = engine.refine(positives, negatives, seed=0)
    assert refined.params["model"] == DEFAULT_MODEL
    assert refined.labelled[: len(positives)].all(), "the labelled positives come first"
    assert not set(negatives) & set(refined.ids.tolist()), "a labelled negative never comes back"
    precision = float(np.mean(truth[refined.ids[:50]] == truth[0]))
    assert precision > 0.8, f"the refined top 50 are mostly the positives' cluster: {precision:.2f}"

    # ... and through the installed command.
    assert len(rows(cli("search", str(root / "synthetic"), "--item", "0", "-k", "5"))) == 5
    ids = ["--positive", *map(str, positives), "--negative", *map(str, negatives)]
    found = json.loads(cli("refine", "--catalog", str(root / "synthetic"), *ids, "--seed", "0", "--json"))
    assert found["params"]["model"] == DEFAULT_MODEL, found
    assert found["items"], found

    # 3. A text search end to end with the offline towers: heads, ingest, search.
    photos = root / "photos"
    captioned_images(photos)
    head = root / "heads.safetensors"
    cpu = ("--device", "cpu", "--quiet")
    cli("train-head", str(photos), str(head), "--epochs", "3", "--hidden", "32", *cpu)
    ingested = json.loads(cli("ingest", str(photos), str(root / "photos.catalog"), "--head", str(head), *cpu, "--json"))
    assert ingested["items"] == 12, ingested
    hits = rows(cli("search", str(root / "photos.catalog"), "a cat", "-k", "5"))
    assert len(hits) == 5, hits
    assert all(".png" in row for row in hits), hits

    # 4. The terminal UI: its wheel is installed and registered where `clipbranches tui` looks.
    cli("tui", "--help")
    (ui,) = entry_points(group="clipbranches.ui", name="tui")
    assert ui.load() is clipbranches_tui.run

    # 5. The web server: its API over the ingested catalog, and its page's files from the wheel.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [str(COMMAND), "serve", str(root / "photos.catalog"), "--port", str(port), "--state-dir", str(root / "state")],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                about = json.load(urllib.request.urlopen(f"{url}/api", timeout=5))
                break
            except OSError:
                assert server.poll() is None, server.stderr.read() if server.stderr else "serve exited"
                time.sleep(0.1)
        else:
            raise AssertionError("clipbranches serve did not answer within 30 s")
        assert about["catalogs"] == ["photos.catalog"], about
        page = urllib.request.urlopen(f"{url}/", timeout=5).read().decode()
        assert "<html" in page.lower(), page[:200]
        for module in ("main.js", "session.js"):  # the page's script modules
            script = urllib.request.urlopen(f"{url}/static/{module}", timeout=5)
            assert "javascript" in script.headers["content-type"], (module, script.headers["content-type"])
            assert len(script.read()) > 500, f"the page's script {module} is not in the wheel"
        ask = urllib.request.Request(
            f"{url}/api/catalogs/photos.catalog/search",
            data=json.dumps({"query": "a cat", "k": 5}).encode(),
            headers={"content-type": "application/json"},
        )
        answer = json.load(urllib.request.urlopen(ask, timeout=60))
        assert len(answer["items"]) == 5, answer
        thumb = urllib.request.urlopen(f"{url}{answer['items'][0]['thumbnail']}", timeout=5)
        assert thumb.headers["content-type"] == "image/jpeg"
    finally:
        server.terminate()
        server.wait(timeout=30)

print("all extra OK")
