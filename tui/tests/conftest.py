"""Fixtures: a tiny synthetic catalog with thumbnails and captions, an engine on it, and a
helper that waits for the app's backend calls to land."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from PIL import Image
from textual.pilot import Pilot

from clipbranches import Catalog, SearchEngine, testing
from clipbranches.store.catalog import THUMBS_DIR
from clipbranches_tui.screens.search import SearchScreen

N = 300
CLUSTERS = 6
#: Item ids are rows + FIRST_ID, so ids and rows cannot be confused.
FIRST_ID = 100
COLOURS = ["red", "green", "blue", "orange", "purple", "teal"]
RGB = [(200, 40, 40), (40, 170, 60), (40, 70, 200), (240, 150, 30), (140, 50, 170), (30, 160, 160)]


def make_catalog(path: Path) -> Catalog:
    """``N`` synthetic items in ``CLUSTERS`` clusters; item ``i``'s caption and thumbnail
    colour name its cluster; the index is built."""
    codes = np.concatenate([c for c, _ in testing.codes(N, k=CLUSTERS, seed=5)])
    labels = testing.labels(N, k=CLUSTERS, seed=5)
    ids = np.arange(N) + FIRST_ID
    captions = [f"{COLOURS[c]} thing {i}" for i, c in zip(ids, labels, strict=True)]
    items = pl.DataFrame({"id": ids, "caption": captions, "label": labels})

    def attach(staging: Path) -> None:
        thumbs = staging / THUMBS_DIR
        thumbs.mkdir()
        for item_id, cluster in zip(ids, labels, strict=True):
            image = Image.new("RGB", (48, 32), RGB[cluster])
            shade = tuple(v // 2 for v in RGB[cluster])
            for x in range(int(item_id) % 40, 48, 12):
                image.paste(shade, (x, 0, x + 4, 32))
            image.save(thumbs / f"{item_id}.jpg", quality=90)

    catalog = Catalog.create(path, codes, items, attach=attach)
    catalog.build_index(block_items=128)
    return catalog


@pytest.fixture(scope="session")
def catalog_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tui") / "fixture"
    make_catalog(path)
    return path


@pytest.fixture
def engine(catalog_path: Path) -> SearchEngine:
    return SearchEngine.open(catalog_path)


@pytest.fixture(scope="session")
def clusters() -> np.ndarray:
    """The cluster of every row."""
    return testing.labels(N, k=CLUSTERS, seed=5)


async def wait_idle(pilot: Pilot[None], timeout: float = 30.0) -> SearchScreen:
    """Wait until the search screen awaits no backend answer and has drawn the last one."""
    screen = pilot.app.screen
    assert isinstance(screen, SearchScreen)
    waited = 0.0
    while screen.state.pending and waited < timeout:
        await pilot.pause(0.05)
        waited += 0.05
    assert not screen.state.pending, "the backend call did not answer in time"
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    return screen


@pytest.fixture
def settle() -> Callable[[Pilot[None]], Awaitable[SearchScreen]]:
    """:func:`wait_idle`, for tests (a fixture, so tests need not import the conftest)."""
    return wait_idle
