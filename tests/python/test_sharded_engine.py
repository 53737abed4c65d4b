"""The engine over a catalog set gives exactly the single-catalog engine's answers over the
concatenation of its shards: for nearest-neighbour search and for every registry model, with
1-5 shards of uneven sizes (an empty one included), with and without shard indexes: the same
ids, scores, totals, pages and exports. Shard errors surface at open, naming the shard."""

from __future__ import annotations

import gc
import json
import pickle
import shutil
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clipbranches import Catalog, EncoderError, InvalidArgumentError, Results, Session, UnknownItemError, testing
from clipbranches.cli import main as cli_main
from clipbranches.engine import SearchEngine
from clipbranches.exceptions import ShardCorruptError, ShardMissingError
from clipbranches.learn.registry import MODELS
from clipbranches.results import FIRST_PAGE
from clipbranches.shard_worker import ShardWorker
from clipbranches.sharded import ShardedEngine, ShardedResults
from clipbranches.store.catalog_set import CatalogSet

N = 6000
CLUSTERS = 12
#: Shard sizes (uneven; "five" has a one-item and an empty shard). "three" has no indexes.
SPLITS = {"one": (N,), "two": (2500, 3500), "three": (4100, 700, 1200), "five": (1, 1999, 0, 3000, 1000)}


def item_id(row: np.ndarray | int) -> np.ndarray | int:
    return row * 2 + 1000


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, pl.DataFrame]:
    codes = np.concatenate([c for c, _ in testing.codes(N, k=CLUSTERS, seed=3)])
    labels = testing.labels(N, k=CLUSTERS, seed=3)
    items = pl.DataFrame({"id": item_id(np.arange(N)), "label": labels, "caption": [f"item {i}" for i in range(N)]})
    return codes, items


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory, data: tuple[np.ndarray, pl.DataFrame]) -> SearchEngine:
    codes, items = data
    path = tmp_path_factory.mktemp("single") / "cat"
    Catalog.create(path, codes, items)
    return SearchEngine.open(path, build_index=True)


def make_set(root: Path, codes: np.ndarray, items: pl.DataFrame, sizes: tuple[int, ...]) -> Path:
    cuts = np.concatenate([[0], np.cumsum(sizes)]).tolist()
    parts = []
    for i, (a, b) in enumerate(zip(cuts, cuts[1:], strict=False)):
        Catalog.create(root / f"part{i}", codes[a:b], items[a:b], dim=codes.shape[1])
        parts.append(root / f"part{i}")
    CatalogSet.create(root / "set", parts, move=True)
    return root / "set"


@pytest.fixture(scope="module", params=sorted(SPLITS))
def sharded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, data: tuple[np.ndarray, pl.DataFrame]
) -> ShardedEngine:
    split = str(request.param)
    path = make_set(tmp_path_factory.mktemp(f"set-{split}"), *data, SPLITS[split])
    engine = SearchEngine.open(path, build_index=split != "three")
    assert isinstance(engine, ShardedEngine)
    assert engine.has_index == (split != "three")
    return engine


@pytest.fixture(scope="module")
def labelled(data: tuple[np.ndarray, pl.DataFrame]) -> tuple[np.ndarray, np.ndarray]:
    labels = data[1]["label"].to_numpy()
    rng = np.random.default_rng(0)
    cluster = int(labels[5])
    pos = rng.choice(np.flatnonzero(labels == cluster), 10, replace=False)
    neg = rng.choice(np.flatnonzero(labels != cluster), 10, replace=False)
    return item_id(pos), item_id(neg)


def assert_same(one: Results, many: Results, tmp_path: Path | None = None) -> None:
    """Totals, pages (shallow and past the first page), the full ranking, tables and exports."""
    assert isinstance(many, ShardedResults)
    assert many.total == one.total
    assert len(many) == len(one)
    assert many.params == one.params
    for n, size in ((0, 7), (0, 50), (1, 50), (3, 50), (2, 120), (100, 50)):
        a, b = one.page(n, size), many.page(n, size)
        np.testing.assert_array_equal(b.ids, a.ids)
        np.testing.assert_array_equal(b.scores, a.scores)
        assert (b.total, b.offset) == (a.total, a.offset)
        assert b.to_polars().equals(a.to_polars())
    np.testing.assert_array_equal(many.rows, one.rows)
    np.testing.assert_array_equal(many.ids, one.ids)
    np.testing.assert_array_equal(many.scores, one.scores)
    np.testing.assert_array_equal(many.labelled, one.labelled)
    assert many.to_polars().equals(one.to_polars())
    if tmp_path is not None:
        for suffix in (".parquet", ".csv"):
            a_file, b_file = one.export(tmp_path / f"one{suffix}"), many.export(tmp_path / f"many{suffix}")
            assert a_file.read_bytes() == b_file.read_bytes()


@pytest.mark.parametrize("item", [0, 5, 2499, 2500, 4099, N - 1])
@pytest.mark.parametrize("k", [1, 30, 700])
def test_nearest_search_merges_the_shards_exactly(
    single: SearchEngine, sharded: ShardedEngine, item: int, k: int
) -> None:
    one, many = single.search_image(item_id(item), k=k), sharded.search_image(item_id(item), k=k)
    assert many.ids[0] == item_id(item)
    assert_same(one, many)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_refine_with_every_model_is_the_single_catalog_answer(
    single: SearchEngine,
    sharded: ShardedEngine,
    labelled: tuple[np.ndarray, np.ndarray],
    model: str,
    tmp_path: Path,
) -> None:
    pos, neg = labelled
    one = single.refine(pos, neg, model=model, seed=11)
    many = sharded.refine(pos, neg, model=model, seed=11)
    assert_same(one, many, tmp_path)
    # The fitted models agree too (what the rules of box models and pinned scores come from).
    codes = np.asarray(single.catalog.codes[:500])
    np.testing.assert_array_equal(many.model.score(codes), one.model.score(codes))  # type: ignore[union-attr]
    if model in ("branch", "ensemble"):
        assert many.rules().sql() == one.rules().sql()


@pytest.mark.parametrize("model", ["hybrid", "linear", "branch"])
def test_refine_options_and_redo_agree(
    single: SearchEngine, sharded: ShardedEngine, labelled: tuple[np.ndarray, np.ndarray], model: str
) -> None:
    pos, neg = labelled
    options = {"random_negatives": 50, "negative_weight": 5, "seed": 3}
    one = single.refine(pos[:3], neg[:2], model=model, **options)
    many = sharded.refine(pos[:3], neg[:2], model=model, **options)
    assert_same(one, many)
    assert_same(one, sharded.redo(many.params))


def test_a_round_ranks_only_its_first_page_until_asked_and_forgets_dropped_rounds(
    sharded: ShardedEngine, labelled: tuple[np.ndarray, np.ndarray]
) -> None:
    pos, neg = labelled
    results = sharded.refine(pos, neg, model="hybrid", seed=1)
    assert results.total > 2 * FIRST_PAGE
    round_id = results._round
    assert round_id is not None
    assert all(round_id in w._rounds for w in sharded.workers)
    assert not any(round_id in w._ranked for w in sharded.workers), "nothing ranked beyond the first page yet"
    results.page(0, 50)
    assert not any(round_id in w._ranked for w in sharded.workers)
    del results
    gc.collect()
    assert not any(round_id in w._rounds for w in sharded.workers)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_the_shard_work_unit_pickles_and_gives_the_same_page_on_a_freshly_opened_shard(
    sharded: ShardedEngine, labelled: tuple[np.ndarray, np.ndarray], model: str
) -> None:
    """What a Ray actor will do: open its shard by path, take the pickled fitted model, apply it."""
    pos, neg = labelled
    results = sharded.refine(pos, neg, model=model, seed=5)
    assert isinstance(results, ShardedResults)
    assert results._round is not None
    scorer = pickle.loads(pickle.dumps(results.scorer))
    rows = sharded.catalog_set.find(np.concatenate([pos, neg]))
    for i, shard in enumerate(sharded.catalog_set.shards):
        fresh = ShardWorker(pickle.loads(pickle.dumps(str(shard.path))))
        page = pickle.loads(pickle.dumps(fresh.apply(0, scorer, sharded._local(rows, i), FIRST_PAGE)))
        assert page.count == results._pages[i].count
        expected = sharded.workers[i].top(results._round, FIRST_PAGE)
        np.testing.assert_array_equal(page.page.rows, expected.rows)
        np.testing.assert_array_equal(page.page.scores, expected.scores)
        np.testing.assert_array_equal(fresh.ranked(0).rows, sharded.workers[i].ranked(results._round).rows)


def test_bad_inputs_are_refused_and_a_failed_round_leaves_nothing_in_the_shards(
    sharded: ShardedEngine, labelled: tuple[np.ndarray, np.ndarray]
) -> None:
    pos, neg = labelled
    before = [len(w._rounds) + len(w._first_pass) for w in sharded.workers]
    with pytest.raises(UnknownItemError, match="positive ids not in the catalog set: \\[7\\]"):
        sharded.refine([7])
    with pytest.raises(InvalidArgumentError, match="both positive and negative"):
        sharded.refine(pos, [pos[0]], model="linear")
    with pytest.raises(InvalidArgumentError, match="unknown model"):
        sharded.refine(pos, model="nope")
    with pytest.raises(InvalidArgumentError, match="k must be a positive integer"):
        sharded.search_image(int(pos[0]), k=0)
    with pytest.raises(UnknownItemError):
        sharded.search_image(7)
    assert [len(w._rounds) + len(w._first_pass) for w in sharded.workers] == before


def test_a_session_works_on_a_set(sharded: ShardedEngine, labelled: tuple[np.ndarray, np.ndarray]) -> None:
    pos, _ = labelled
    session = Session.for_engine(sharded)
    assert session.catalog == str(sharded.catalog_set.path)
    session.check_catalog(sharded)
    session.label(pos[:4].tolist(), "positive")
    results = session.refine(sharded, model="branch", seed=2)
    assert results.labelled[:4].all()
    assert session.rounds[-1]["params"] == results.params
    assert session.rounds[-1]["total"] == results.total


def test_threads_sharing_a_sharded_engine_get_the_sequential_answers(
    single: SearchEngine, sharded: ShardedEngine, labelled: tuple[np.ndarray, np.ndarray]
) -> None:
    pos, neg = labelled
    models = ["hybrid", "linear", "branch", "logreg"] * 2
    expected = [single.refine(pos, neg, model=m, seed=9) for m in models]
    got = testing.refine_concurrently(sharded, pos, neg, models)
    for mine, one in zip(got, expected, strict=True):
        np.testing.assert_array_equal(mine.ids, one.ids)
        np.testing.assert_array_equal(mine.scores, one.scores)


def test_text_queries_need_the_shards_encoder_and_head(
    sharded: ShardedEngine,
) -> None:
    with pytest.raises(EncoderError, match="cannot take text or image queries"):
        sharded.search_text("a red dress")


def test_thumbnails_come_from_the_shard_holding_the_item(tmp_path: Path, data: tuple[np.ndarray, pl.DataFrame]) -> None:
    codes, items = data
    path = make_set(tmp_path, codes[:300], items[:300], (100, 200))
    engine = SearchEngine.open(path)
    thumbs = path / "shard-00001" / "thumbs"
    thumbs.mkdir()
    (thumbs / f"{item_id(150)}.jpg").write_bytes(b"jpeg")
    results = engine.search_image(item_id(150), k=3)
    assert results.thumbnail(int(results.rows[0])) == thumbs / f"{item_id(150)}.jpg"
    assert results.page(0, 2).thumbnail(int(results.rows[1])) is None


def test_open_names_a_missing_or_corrupt_shard_before_any_work(
    tmp_path: Path, data: tuple[np.ndarray, pl.DataFrame]
) -> None:
    codes, items = data
    path = make_set(tmp_path, codes[:300], items[:300], (100, 150, 50))
    shutil.move(path / "shard-00001", tmp_path / "away")
    with pytest.raises(ShardMissingError, match="shard-00001"):
        SearchEngine.open(path)
    shutil.move(tmp_path / "away", path / "shard-00001")
    codes_file = path / "shard-00002" / "codes.u8"
    codes_file.write_bytes(codes_file.read_bytes()[:-1])
    with pytest.raises(ShardCorruptError, match="shard-00002"):
        SearchEngine.open(path)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cuts=st.lists(st.integers(0, 1500), min_size=0, max_size=4),
    model=st.sampled_from(["branch", "ensemble", "logreg", "linear", "hybrid"]),
    seed=st.integers(0, 2**32 - 1),
    positives=st.integers(1, 12),
)
def test_any_split_gives_the_single_catalog_answer(
    data: tuple[np.ndarray, pl.DataFrame], cuts: list[int], model: str, seed: int, positives: int
) -> None:
    codes, items = data[0][:1500], data[1][:1500]
    bounds = [0, *sorted(cuts), 1500]
    sizes = tuple(b - a for a, b in zip(bounds, bounds[1:], strict=False))
    labels = items["label"].to_numpy()
    rng = np.random.default_rng(seed)
    pos = item_id(rng.choice(np.flatnonzero(labels == labels[0]), positives, replace=False))
    neg = item_id(rng.choice(np.flatnonzero(labels != labels[0]), 3, replace=False))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        Catalog.create(root / "one", codes, items)
        one_engine = SearchEngine.open(root / "one")
        many_engine = SearchEngine.open(make_set(root, codes, items, sizes))
        assert_same(
            one_engine.refine(pos, neg, model=model, seed=seed), many_engine.refine(pos, neg, model=model, seed=seed)
        )
        assert_same(one_engine.search_image(int(pos[0]), k=40), many_engine.search_image(int(pos[0]), k=40))


def test_the_cli_searches_refines_and_exports_a_set_as_one_catalog(
    tmp_path: Path, data: tuple[np.ndarray, pl.DataFrame], capsys: pytest.CaptureFixture[str]
) -> None:
    codes, items = data[0][:2000], data[1][:2000]
    Catalog.create(tmp_path / "one", codes, items)
    many = make_set(tmp_path, codes, items, (300, 1200, 500))
    labels = items["label"].to_numpy()
    same = item_id(np.flatnonzero(labels == labels[0])[1:6]).tolist()
    other = item_id(np.flatnonzero(labels != labels[0])[:3]).tolist()
    outputs = []
    for path in (tmp_path / "one", many):
        session = tmp_path / f"{path.name}.json"
        answers = []
        for args in (
            ["search", path, "--item", item_id(0), "-k", 10, "--session", session, "--json"],
            ["refine", "--session", session, "--positive", *same, "--negative", *other, "--seed", 4, "--json"],
            ["export", tmp_path / f"{path.name}.csv", "--session", session],
        ):
            code = cli_main([str(a) for a in args])
            out = capsys.readouterr()
            assert code == 0, out.err
            answers.append(out.out.replace(str(path), "CATALOG"))
        answers.append((tmp_path / f"{path.name}.csv").read_text())
        outputs.append(answers)
    for one, sharded in zip(*outputs, strict=True):
        if one.lstrip().startswith("{"):
            a, b = json.loads(one), json.loads(sharded)
            for answer in (a, b):
                answer.pop("timings_ms", None)
            assert a["items"] == b["items"]
            assert a.get("total") == b.get("total")
        else:
            assert one == sharded
    # A missing shard is a typed error naming it, exit 2.
    shutil.move(many / "shard-00001", tmp_path / "away")
    code = cli_main(["search", str(many), "--item", str(item_id(0))])
    assert code == 2
    assert "shard-00001" in capsys.readouterr().err
