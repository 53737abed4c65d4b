"""Shared fixtures of the web tests: a 1M-item synthetic catalog (made once per test session) and
real ``clipbranches serve`` servers on 127.0.0.1 (subprocesses, stopped after the test)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from clipbranches import testing

sys.path.insert(0, str(Path(__file__).parents[3] / "benchmarks"))

from serve import running_server  # noqa: E402  (benchmarks/serve.py: the benchmark starts servers the same way)


@dataclass(frozen=True)
class BuiltCatalog:
    """A synthetic catalog on disk, with its index, and how long it took to make."""

    path: Path
    items: int
    seconds: float


@pytest.fixture(scope="session")
def catalog_1m(tmp_path_factory: pytest.TempPathFactory) -> BuiltCatalog:
    """``testing.make_catalog`` of 1,000,000 items (seed 0, 1,000 clusters) with its index
    (about 70 MB; 3-5 s on the 2-core machine)."""
    path = tmp_path_factory.mktemp("web-1m") / "catalog"
    start = time.perf_counter()
    testing.make_catalog(path, 1_000_000, seed=0).build_index()
    return BuiltCatalog(path, 1_000_000, time.perf_counter() - start)


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[Callable[[Mapping[str, Path]], str]]:
    """Start ``clipbranches serve`` on catalogs (name -> path) on a free loopback port, its
    sessions in ``tmp_path / "server-N"`` (N: 1 for the test's first server); returns its base
    URL (``http://127.0.0.1:PORT``). Every server started is stopped when the test ends."""
    started = 0
    with ExitStack() as servers:

        def start(catalogs: Mapping[str, Path]) -> str:
            nonlocal started
            started += 1
            return servers.enter_context(running_server(catalogs, tmp_path / f"server-{started}"))

        yield start
