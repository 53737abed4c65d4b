"""`import clipbranches` stays light: no torch, open_clip or textual until a module needs them."""

from __future__ import annotations

import json
import subprocess
import sys

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
