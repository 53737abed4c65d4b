"""Shared fixtures: small catalogs on disk."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clipbranches import Catalog


@pytest.fixture(scope="session", autouse=True)
def private_model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Models the encoders export (the offline tower for ONNX Runtime) go to a folder of this
    test run, not the user's cache: a run leaves nothing behind and never reads a stale file."""
    folder = tmp_path_factory.mktemp("model-cache")
    before = os.environ.get("CLIPBRANCHES_CACHE_DIR")
    os.environ["CLIPBRANCHES_CACHE_DIR"] = str(folder)
    yield folder
    if before is None:
        del os.environ["CLIPBRANCHES_CACHE_DIR"]
    else:
        os.environ["CLIPBRANCHES_CACHE_DIR"] = before


@pytest.fixture
def codes() -> np.ndarray:
    """200 random codes of width 32."""
    return np.random.default_rng(7).integers(0, 256, size=(200, 32), dtype=np.uint8)


@pytest.fixture
def catalog(tmp_path: Path, codes: np.ndarray) -> Catalog:
    """A catalog of :func:`codes` at ``tmp_path / "cat"``."""
    return Catalog.create(tmp_path / "cat", codes, encoder={"name": "test"})


@pytest.fixture
def edit_manifest() -> Callable[[Path, Callable[[dict[str, Any]], None]], None]:
    """Rewrite a catalog's manifest.json through a function of its parsed JSON."""

    def edit(root: Path, change: Callable[[dict[str, Any]], None]) -> None:
        path = root / "manifest.json"
        manifest = json.loads(path.read_text())
        change(manifest)
        path.write_text(json.dumps(manifest))

    return edit
