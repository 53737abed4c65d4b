"""`import clipbranches` stays light: no torch, open_clip or textual until a module needs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = [
    "torch",
    "open_clip",
    "textual",
    "torchvision",
    "sklearn",
    "wordllama",
    "efficientnet_lite_pytorch",
    "ray",
    "fastapi",
    "uvicorn",
    "starlette",
]


def test_import_does_not_pull_heavy_dependencies() -> None:
    # The package and the modules the CLI and the engine import up front.
    modules = ", ".join(
        [
            "clipbranches",
            "clipbranches.cli",
            "clipbranches.store",
            "clipbranches.learn",
            "clipbranches.embed",
            "clipbranches.embed.encoders",
            "clipbranches.embed.ingest",
            "clipbranches.embed.codes",
            "clipbranches.embed.chunks",
            "clipbranches.datasets",
            "clipbranches.demo",
            "clipbranches.testing",
        ]
    )
    code = f"import json, sys, {modules}; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert json.loads(out) == []


def test_a_text_query_on_a_catalog_without_heads_loads_no_torch(tmp_path: Path) -> None:
    # The refusal comes first: a server warming such a catalog must not pay torch (seconds, ~0.5 GB).
    code = f"""
import json, sys
from clipbranches import EncoderError, SearchEngine, testing
testing.make_catalog({str(tmp_path / "c")!r}, 100, k=5)
try:
    SearchEngine.open({str(tmp_path / "c")!r}).encode_text("a cat")
except EncoderError:
    print(json.dumps("torch" in sys.modules))
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert json.loads(out) is False
