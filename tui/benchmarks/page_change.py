"""Time page changes of the TUI's result grid, headless (Pilot), on a real catalog.

    python tui/benchmarks/page_change.py demo-data/openclipart [RENDERER]

Runs a 600-item search like the catalog's first item, then turns 14 pages (on and back) and
prints each page change's time, the screen's refresh included, and their median.
"""

from __future__ import annotations

import asyncio
import sys
import time
from functools import partial

from clipbranches import SearchEngine
from clipbranches_tui.app import ClipBranchesApp
from clipbranches_tui.screens.search import SearchScreen


async def main(catalog: str, renderer: str) -> None:
    engine = SearchEngine.open(catalog)
    app = ClipBranchesApp(engine, renderer=renderer)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = app.screen
        assert isinstance(screen, SearchScreen)
        await pilot.pause()
        screen._submit("600 like the first item", partial(engine.search_image, int(engine.catalog.item_ids[0]), k=600))
        while screen.state.pending:
            await pilot.pause(0.05)
        await pilot.pause(0.5)
        times = []
        for delta in [1, 1, 1, 1, -1, -1, -1, -1, 1, 1, 1, 1, -1, -1]:
            start = time.perf_counter()
            await screen.action_page(delta)
            await pilot.pause()  # the refresh that draws the page
            times.append(time.perf_counter() - start)
        print(renderer, "page changes (s):", " ".join(f"{t:.3f}" for t in times))
        print(f"median {sorted(times)[len(times) // 2]:.3f} s")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "halfcell"))
