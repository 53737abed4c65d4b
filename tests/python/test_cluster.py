"""The engine on a local Ray cluster (one actor per shard) gives exactly the single-catalog
engine's answers: nearest search and every registry model over 1, 3 and 5 shards of uneven
sizes (ids, scores, totals, pages, exports); a round fans out to all the actors at once; an actor
killed between or during rounds changes nothing; a cluster that cannot be reached is a typed
error that leaves the session file as it was."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

ray = pytest.importorskip("ray")

from clipbranches import Catalog, Session, testing  # noqa: E402
from clipbranches import cluster as cluster_module  # noqa: E402
from clipbranches.cluster import ClusterError, RayEngine  # noqa: E402
from clipbranches.engine import SearchEngine  # noqa: E402
from clipbranches.exceptions import ClipBranchesError, InvalidArgumentError  # noqa: E402
from clipbranches.learn.registry import MODELS  # noqa: E402
from clipbranches.sharded import ShardedEngine  # noqa: E402
from clipbranches.store.catalog_set import CatalogSet  # noqa: E402

N = 3000
CLUSTERS = 10
SPLITS = {"one": (N,), "three": (1900, 300, 800), "five": (1, 999, 0, 1500, 500)}


def item_id(row: Any) -> Any:
    return row * 2 + 1000


def make_set(root: Path, codes: np.ndarray, items: pl.DataFrame, sizes: tuple[int, ...]) -> Path:
    cuts = np.concatenate([[0], np.cumsum(sizes)]).tolist()
    parts = []
    for i, (a, b) in enumerate(zip(cuts, cuts[1:], strict=False)):
        Catalog.create(root / f"part{i}", codes[a:b], items[a:b], dim=codes.shape[1])
        parts.append(root / f"part{i}")
    CatalogSet.create(root / "set", parts, move=True)
    return root / "set"


@pytest.fixture(scope="module")
def cluster() -> Any:
    """One local Ray for the module (two CPUs: every split's actors fit at once)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, pl.DataFrame]:
    codes = np.concatenate([c for c, _ in testing.codes(N, k=CLUSTERS, seed=5)])
    labels = testing.labels(N, k=CLUSTERS, seed=5)
    items = pl.DataFrame({"id": item_id(np.arange(N)), "label": labels, "caption": [f"item {i}" for i in range(N)]})
    return codes, items


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory, data: tuple[np.ndarray, pl.DataFrame]) -> SearchEngine:
    path = tmp_path_factory.mktemp("single") / "cat"
    Catalog.create(path, *data)
    return SearchEngine.open(path, build_index=True)


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory, data: tuple[np.ndarray, pl.DataFrame]) -> dict[str, Path]:
    paths = {split: make_set(tmp_path_factory.mktemp(f"set-{split}"), *data, sizes) for split, sizes in SPLITS.items()}
    for split, path in paths.items():
        if split != "three":  # "three" has no indexes
            CatalogSet.open(path).build_index()
    return paths


@pytest.fixture(scope="module", params=sorted(SPLITS))
def engine(request: pytest.FixtureRequest, cluster: Any, sets: dict[str, Path]) -> Any:
    opened = SearchEngine.open(sets[str(request.param)], cluster="auto")
    assert isinstance(opened, RayEngine)
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def labelled(data: tuple[np.ndarray, pl.DataFrame]) -> tuple[np.ndarray, np.ndarray]:
    labels = data[1]["label"].to_numpy()
    rng = np.random.default_rng(0)
    pos = rng.choice(np.flatnonzero(labels == labels[5]), 10, replace=False)
    neg = rng.choice(np.flatnonzero(labels != labels[5]), 10, replace=False)
    return item_id(pos), item_id(neg)


def assert_same(one: Any, many: Any, tmp_path: Path | None = None) -> None:
    """Totals, pages (shallow and past the first page), the full ranking, tables and exports."""
    assert many.total == one.total
    assert len(many) == len(one)
    assert many.params == one.params
    for n, size in ((0, 7), (0, 50), (1, 50), (3, 50), (2, 120), (100, 50)):
        a, b = one.page(n, size), many.page(n, size)
        np.testing.assert_array_equal(b.ids, a.ids)
        np.testing.assert_array_equal(b.scores, a.scores)
        assert (b.total, b.offset) == (a.total, a.offset)
        assert b.to_polars().equals(a.to_polars())
    np.testing.assert_array_equal(many.ids, one.ids)
    np.testing.assert_array_equal(many.scores, one.scores)
    np.testing.assert_array_equal(many.labelled, one.labelled)
    if tmp_path is not None:
        for suffix in (".parquet", ".csv"):
            a_file, b_file = one.export(tmp_path / f"one{suffix}"), many.export(tmp_path / f"many{suffix}")
            assert a_file.read_bytes() == b_file.read_bytes()


def test_the_actors_open_their_shards_in_their_own_processes(engine: RayEngine) -> None:
    pids = engine.pids()
    assert len(pids) == len(engine.catalog_set.shards)
    assert os.getpid() not in pids
    assert len(set(pids)) == len(pids)


@pytest.mark.parametrize("item", [0, 1900, N - 1])
@pytest.mark.parametrize("k", [1, 40, 700])
def test_nearest_search_is_the_single_catalog_answer(
    single: SearchEngine, engine: RayEngine, item: int, k: int
) -> None:
    one, many = single.search_image(item_id(item), k=k), engine.search_image(item_id(item), k=k)
    assert many.ids[0] == item_id(item)
    assert_same(one, many)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_refine_with_every_model_is_the_single_catalog_answer(
    single: SearchEngine, engine: RayEngine, labelled: tuple[np.ndarray, np.ndarray], model: str, tmp_path: Path
) -> None:
    pos, neg = labelled
    one = single.refine(pos, neg, model=model, seed=11)
    many = engine.refine(pos, neg, model=model, seed=11)
    assert_same(one, many, tmp_path)


def test_a_round_fans_out_to_every_actor_before_waiting(engine: RayEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    real_get = ray.get

    def get(refs: Any, **kwargs: Any) -> Any:
        events.append("get")
        return real_get(refs, **kwargs)

    for shard in engine.workers:
        submit = shard.submit  # type: ignore[attr-defined]

        def logged(method: str, *args: Any, _submit: Any = submit) -> Any:
            events.append(f"submit {method}")
            return _submit(method, *args)

        monkeypatch.setattr(shard, "submit", logged)
    monkeypatch.setattr(ray, "get", get)
    engine.search_image(item_id(3), k=5)
    shards = len(engine.workers)
    assert events[: shards + 1] == ["submit nearest"] * shards + ["get"]


@pytest.mark.parametrize("model", sorted(MODELS))
def test_a_round_makes_as_few_fan_outs_as_its_model_needs(
    single: SearchEngine, engine: RayEngine, data: tuple[np.ndarray, pl.DataFrame], model: str, monkeypatch: Any
) -> None:
    """The random negatives' pool and the hybrid's sample are fetched once (here: every row,
    the set being smaller than the pool); then a round is the apply alone (linear: its two
    self-training passes first). Without them kept, new labels cost one gather of the training
    rows' codes (the hybrid: and one of its sample), and the same labels again none. The
    answers stay the single catalog's."""
    from clipbranches.sharded import CodeCache

    labels = data[1]["label"].to_numpy()
    rng = np.random.default_rng(sorted(MODELS).index(model) + 100)  # labels no other test used
    pos = item_id(rng.choice(np.flatnonzero(labels == labels[7]), 6, replace=False))
    neg = item_id(rng.choice(np.flatnonzero(labels != labels[7]), 6, replace=False))
    engine.refine(pos[:1], model="logreg", seed=1)  # the fixed rows fetched (with pos[0]) in one gather
    fan_outs: list[str] = []
    real = engine._map
    monkeypatch.setattr(engine, "_map", lambda method, calls: fan_outs.append(method) or real(method, calls))
    passes = ["first_pass", "pseudo_codes"] if model == "linear" else []
    expected = single.refine(pos, neg, model=model, seed=12)
    many = engine.refine(pos, neg, model=model, seed=12)
    assert fan_outs == [*passes, "apply"]
    assert_same(expected, many)

    offsets = engine.catalog_set.offsets
    monkeypatch.setattr(engine, "_known", CodeCache(offsets, engine._codes(), np.zeros(0, np.int64)))
    sample = ["codes"] if model == "hybrid" else []  # its calibration sample, not kept either
    for gathers in (["codes", *sample], []):
        fan_outs.clear()
        many = engine.refine(pos, neg, model=model, seed=12)
        assert fan_outs == [*gathers, *passes, "apply"]
        assert_same(expected, many)


@pytest.mark.parametrize("model", ["hybrid", "linear", "branch"])
def test_an_actor_killed_between_or_during_rounds_changes_no_answer(
    single: SearchEngine,
    engine: RayEngine,
    labelled: tuple[np.ndarray, np.ndarray],
    model: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pos, neg = labelled
    redone: list[tuple[int, str]] = []
    for shard in engine.workers:
        redo = shard._redo  # type: ignore[attr-defined]

        def logged(method: str, args: Any, _redo: Any = redo, _index: int = shard.index) -> None:  # type: ignore[attr-defined]
            redone.append((_index, method))
            _redo(method, args)

        monkeypatch.setattr(shard, "_redo", logged)
    expected = single.refine(pos, neg, model=model, seed=7)
    many = engine.refine(pos, neg, model=model, seed=7)
    # Between rounds: the restarted actor has lost the round; paging and the full ranking redo it.
    victim = len(engine.workers) // 2
    before = engine.pids()
    os.kill(before[victim], signal.SIGKILL)
    assert_same(expected, many)
    after = engine.pids()
    assert after[victim] != before[victim]
    assert (
        (victim, "top") in redone or (victim, "ranked") in redone or engine.catalog_set.shards[victim].codes.size == 0
    )
    # Just before a round: the round's calls reach an actor that died (Ray retries them).
    os.kill(after[-1], signal.SIGKILL)
    assert_same(expected, engine.refine(pos, neg, model=model, seed=7))
    # During a round: the last shard's actor is killed once the round's calls were sent to it.
    target = engine.workers[-1]
    pid, submit = engine.pids()[-1], target.submit  # type: ignore[attr-defined]

    def kill_after_apply(method: str, *args: Any) -> Any:
        ref = submit(method, *args)
        if method == "apply":
            os.kill(pid, signal.SIGKILL)
        return ref

    monkeypatch.setattr(target, "submit", kill_after_apply)
    assert_same(expected, engine.refine(pos, neg, model=model, seed=7))
    assert engine.pids()[-1] != pid
    monkeypatch.undo()
    # Killed for good (no restart): the shard's actor is started again.
    ray.kill(engine.workers[0].actor, no_restart=True)  # type: ignore[attr-defined]
    assert_same(expected, engine.refine(pos, neg, model=model, seed=7))
    assert_same(single.search_image(item_id(9), k=30), engine.search_image(item_id(9), k=30))


def test_shard_errors_keep_their_types(engine: RayEngine) -> None:
    with pytest.raises(InvalidArgumentError, match="k must be a positive integer"):
        engine.search_image(item_id(1), k=0)
    with pytest.raises(InvalidArgumentError, match="a cluster serves catalog sets"):
        SearchEngine.open(engine.catalog_set.shards[0].path, cluster="auto")


def test_a_session_on_the_cluster_records_the_single_catalog_rounds(
    single: SearchEngine, engine: RayEngine, labelled: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    pos, _ = labelled
    session = Session.for_engine(engine)
    session.label(pos[:4].tolist(), "positive")
    results = session.refine(engine, model="branch", seed=2)
    expected = single.refine(pos[:4].tolist(), [], model="branch", seed=2)
    np.testing.assert_array_equal(results.ids, expected.ids)
    assert session.rounds[-1]["total"] == expected.total
    np.testing.assert_array_equal(engine.redo(results.params).ids, expected.ids)


def test_threads_sharing_the_engine_get_the_sequential_answers(
    single: SearchEngine, engine: RayEngine, labelled: tuple[np.ndarray, np.ndarray]
) -> None:
    pos, neg = labelled
    models = ["hybrid", "linear", "branch", "logreg"]
    expected = [single.refine(pos, neg, model=m, seed=9) for m in models]
    got = testing.refine_concurrently(engine, pos, neg, models)
    for mine, one in zip(got, expected, strict=True):
        np.testing.assert_array_equal(mine.ids, one.ids)
        np.testing.assert_array_equal(mine.scores, one.scores)


def test_actors_that_cannot_be_placed_are_a_cluster_error(
    cluster: Any, sets: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cluster_module, "START_TIMEOUT_S", 2.0)
    with pytest.raises(ClusterError, match="were not all placed within 2 s"):
        RayEngine.open(sets["three"], cluster="auto", actor_options={"resources": {"no-such-node": 1}})


UNREACHABLE = """
import sys
import ray
from pathlib import Path
from clipbranches import Session
from clipbranches.engine import SearchEngine
from clipbranches.cluster import ClusterError
set_path, session_path = sys.argv[1], Path(sys.argv[2])
session = Session.load(session_path)
before = session_path.read_bytes()
try:
    engine = SearchEngine.open(set_path, cluster="127.0.0.1:1")
except ClusterError as e:
    print("ClusterError:", e)
assert session_path.read_bytes() == before
assert Session.load(session_path).rounds == session.rounds
print("labels", len(session.labels), "rounds", len(session.rounds))
# A driver that loses its cluster after opening: the round is a ClusterError, nothing recorded.
ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
engine = SearchEngine.open(set_path, cluster="auto")
session.refine(engine, seed=2)
session.save(session_path)
saved = session_path.read_bytes()
ray.shutdown()
try:
    session.refine(engine, seed=3)
except ClusterError as e:
    print("lost:", e)
assert session_path.read_bytes() == saved and len(session.rounds) == 2 and not ray.is_initialized()
print("after", len(session.rounds))
"""


def test_an_unreachable_or_lost_cluster_is_a_typed_error_and_the_session_file_stays(
    sets: dict[str, Path], labelled: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    assert issubclass(ClusterError, ClipBranchesError)
    local = SearchEngine.open(sets["three"])
    assert isinstance(local, ShardedEngine)
    session = Session.for_engine(local)
    session.label(labelled[0][:3].tolist(), "positive")
    session.refine(local, seed=1)
    path = session.save(tmp_path / "session.json")
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", UNREACHABLE, str(sets["three"]), str(path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "ClusterError: cannot reach the Ray cluster at '127.0.0.1:1'" in done.stdout
    assert "labels 3 rounds 1" in done.stdout
    assert "lost: this process is no longer connected to the Ray cluster" in done.stdout
    assert "after 2" in done.stdout
    assert time.monotonic() - start < 120


def test_the_cli_with_cluster_answers_as_without(
    cluster: Any, sets: dict[str, Path], labelled: tuple[np.ndarray, np.ndarray], tmp_path: Path, capsys: Any
) -> None:
    from clipbranches.cli import main

    pos, neg = labelled
    answers = []
    for extra in ([], ["--cluster", "auto"]):
        session = tmp_path / f"s{len(extra)}.json"
        search = ["search", str(sets["three"]), "--item", str(int(pos[0])), "-k", "20", "--session", str(session)]
        labels = ["--positive", *map(str, pos.tolist()), "--negative", *map(str, neg.tolist())]
        refine = ["refine", "--session", str(session), *labels, "--seed", "3"]
        export = ["export", str(tmp_path / f"hits{len(extra)}.csv"), "--session", str(session)]
        for args in (search, refine, export):
            assert main([*args, *extra, "--json"] if args is not export else [*args, *extra]) == 0
        out = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
        answers.append(([(o["items"], o.get("total")) for o in out], (tmp_path / f"hits{len(extra)}.csv").read_text()))
    assert answers[0] == answers[1]
