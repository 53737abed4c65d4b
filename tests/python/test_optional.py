"""Optional dependencies: without the towers' packages, text search, ingest and train-head are
typed errors with the exact install line (the CLI exits 2), and search by item and refine work."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from clipbranches import MissingDependencyError
from clipbranches._optional import EXTRAS, require

# Runs in a fresh interpreter where torch (and so every tower) cannot be imported.
WITHOUT_TORCH = """
import json, sys
sys.modules["torch"] = None
import numpy as np
from clipbranches import Catalog, MissingDependencyError, SearchEngine
from clipbranches.cli import main
root = sys.argv[1]
codes = np.random.default_rng(0).integers(0, 256, (300, 32), np.uint8)
def head(staging):
    (staging / "head.safetensors").write_bytes(b"not read: torch is missing first")
cat = Catalog.create(root + "/cat", codes, encoder={"kind": "offline"}, attach=head)
engine = SearchEngine(cat)
out = {"refined": engine.refine([0, 1, 2], [3], seed=0).total > 0, "nearest": len(engine.search_image(5, k=3))}
try:
    engine.search_text("a dog")
except MissingDependencyError as e:
    out["text"] = str(e)
out["cli"] = main(["search", root + "/cat", "a dog"])
out["cli_item"] = main(["search", root + "/cat", "--item", "5", "--show", "0"])
print(json.dumps(out))
"""


def test_without_torch_text_search_says_how_to_install_and_the_rest_works(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_TORCH, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["refined"]
    assert out["nearest"] == 3
    assert "torch" in out["text"]
    assert "pip install 'clipbranches[offline]'" in out["text"]
    assert out["cli"] == 2
    assert out["cli_item"] == 0
    assert "pip install 'clipbranches[offline]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_require_names_the_missing_modules_and_the_extra() -> None:
    require("numpy things", "offline", ("numpy",))
    with pytest.raises(
        MissingDependencyError,
        match=r"the UI needs no_such_module_x, which is not installed: pip install 'clipbranches\[tui\]'",
    ):
        require("the UI", "tui", ("no_such_module_x",))
    assert set(EXTRAS) == {"offline", "openclip", "models", "tui", "cluster", "serve"}
