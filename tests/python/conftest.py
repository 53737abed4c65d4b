"""Shared fixtures: small catalogs on disk."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from clipbranches import Catalog


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
