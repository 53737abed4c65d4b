"""Snapshots of the main screens (pytest-textual-snapshot), previews forced to half blocks so
they do not depend on the terminal; timings are pinned so the status line is stable.

Update after an intended change with ``pytest tui/tests/test_snapshots.py --snapshot-update``
and look at the SVGs in ``__snapshots__/``.
"""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot

from clipbranches import Results
from clipbranches.engine import STAGES, SearchEngine
from clipbranches_tui.app import ClipBranchesApp
from clipbranches_tui.screens.search import SearchScreen

SIZE = (120, 40)


class PinnedTimings(SearchEngine):
    """An engine whose results report 1 ms per stage, for stable snapshots."""

    def search_image(self, image: Any, k: int = 60) -> Results:
        return _pinned(super().search_image(image, k))

    def refine(self, *args: Any, **kwargs: Any) -> Results:
        return _pinned(super().refine(*args, **kwargs))


def _pinned(results: Results) -> Results:
    results.timings = dict.fromkeys(STAGES, 1.0)
    return results


@pytest.fixture
def app(engine: SearchEngine) -> ClipBranchesApp:
    return ClipBranchesApp(PinnedTimings(engine.catalog), renderer="halfcell")


async def search_and_label(pilot: Pilot[None]) -> None:
    screen = pilot.app.screen
    assert isinstance(screen, SearchScreen)
    screen.query_input.value = "#100"
    await pilot.press("enter")
    while screen.state.pending:
        await pilot.pause(0.05)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    await pilot.press("p", "right", "p", "right", "n", "down")
    await pilot.pause()


def test_start_screen(app: ClipBranchesApp, snap_compare: Any) -> None:
    assert snap_compare(app, terminal_size=SIZE)


def test_search_and_labels(app: ClipBranchesApp, snap_compare: Any) -> None:
    assert snap_compare(app, terminal_size=SIZE, run_before=search_and_label)


def test_help_screen(app: ClipBranchesApp, snap_compare: Any) -> None:
    async def open_help(pilot: Pilot[None]) -> None:
        await pilot.pause()
        await pilot.press("f1")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=open_help)
