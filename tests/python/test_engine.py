"""The search engine end to end on a small synthetic catalog: nearest-neighbour search, refine
with every model, paging, export round trip, rules (checked by running their SQL),
concurrent use, and every bad input."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from clipbranches import Catalog, EncoderError, InvalidArgumentError, UnknownItemError, testing
from clipbranches.engine import STAGES, SearchEngine
from clipbranches.learn.registry import MODELS

N = 20_000
CLUSTERS = 50


def item_id(row: np.ndarray | int) -> np.ndarray | int:
    """Ids deliberately not 0..n-1, so rows and ids cannot be confused."""
    return row * 2 + 1000


@pytest.fixture(scope="module")
def labels() -> np.ndarray:
    return testing.labels(N, k=CLUSTERS, seed=3)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, labels: np.ndarray) -> SearchEngine:
    codes = np.concatenate([c for c, _ in testing.codes(N, k=CLUSTERS, seed=3)])
    items = pl.DataFrame({"id": item_id(np.arange(N)), "label": labels, "caption": [f"item {i}" for i in range(N)]})
    Catalog.create(tmp_path_factory.mktemp("engine") / "cat", codes, items)
    return SearchEngine.open(tmp_path_factory.getbasetemp() / "engine0" / "cat", build_index=True)


@pytest.fixture(scope="module")
def labelled(labels: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """A cluster, 10 positive and 10 negative item ids."""
    rng = np.random.default_rng(0)
    cluster = int(labels[5])
    pos = rng.choice(np.flatnonzero(labels == cluster), 10, replace=False)
    neg = rng.choice(np.flatnonzero(labels != cluster), 10, replace=False)
    return cluster, item_id(pos), item_id(neg)


def test_search_by_item_returns_the_item_first_then_its_neighbours(engine: SearchEngine, labels: np.ndarray) -> None:
    assert engine.has_index
    results = engine.search_image(item_id(5), k=30)
    assert results.ids[0] == item_id(5)
    assert results.scores[0] == 0
    assert (np.diff(results.scores) <= 0).all()
    np.testing.assert_array_equal(results.ids, item_id(results.rows))
    assert (labels[results.rows] == labels[5]).mean() > 0.75
    table = results.to_polars()
    assert table.columns[:4] == ["rank", "score", "labelled", "id"]
    assert table["rank"].to_list() == list(range(1, 31))
    assert table["label"].to_list() == labels[results.rows].tolist()
    assert set(results.timings) == set(STAGES)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_refine_with_every_model_finds_the_cluster(
    engine: SearchEngine, labels: np.ndarray, labelled: tuple[int, np.ndarray, np.ndarray], model: str
) -> None:
    cluster, pos, neg = labelled
    results = engine.refine(pos, neg, model=model, seed=1)
    assert results.total == len(results.ids) > 0
    labelled_first = results.labelled
    assert labelled_first[: len(pos)].all(), "the positives come first"
    assert not labelled_first[len(pos) :].any()
    assert (np.diff(results.scores[len(pos) :]) <= 0).all(), "then the rest, ranked best first"
    top = results.rows[:100]
    assert (labels[top] == cluster).mean() >= 0.5, f"{model}: the top is mostly the labelled cluster"
    assert results.params["model"] == model
    assert results.params["positives"] == sorted(pos.tolist())
    assert all(results.timings[s] >= 0 for s in STAGES)
    assert results.timings["train"] > 0
    assert results.timings["query"] > 0
    again = engine.redo(results.params)
    np.testing.assert_array_equal(again.ids, results.ids)


def test_paging_covers_every_result_once(engine: SearchEngine, labelled: tuple[int, np.ndarray, np.ndarray]) -> None:
    _, pos, neg = labelled
    results = engine.refine(pos, neg, model="linear", seed=0)
    size = 37
    pages = [results.page(n, size) for n in range(-(-results.total // size))]
    np.testing.assert_array_equal(np.concatenate([p.ids for p in pages]), results.ids)
    assert pages[1].offset == size
    assert pages[1].to_polars()["rank"][0] == size + 1
    assert pages[-1].total == results.total
    assert len(results.page(10_000, size)) == 0
    with pytest.raises(InvalidArgumentError, match="page needs"):
        results.page(-1)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_export_round_trip(
    engine: SearchEngine, labelled: tuple[int, np.ndarray, np.ndarray], tmp_path: Path, suffix: str
) -> None:
    _, pos, neg = labelled
    results = engine.refine(pos, neg, model="ensemble", seed=0)
    path = results.export(tmp_path / f"out{suffix}")
    back = pl.read_parquet(path) if suffix == ".parquet" else pl.read_csv(path)
    assert back["id"].to_list() == results.ids.tolist()
    assert back["rank"].to_list() == list(range(1, results.total + 1))
    np.testing.assert_allclose(back["score"].to_numpy(), results.scores)
    assert [p.name for p in tmp_path.iterdir()] == [f"out{suffix}"], "no temporary file left"
    with pytest.raises(InvalidArgumentError, match=r"\.parquet or \.csv"):
        results.export(tmp_path / "out.xlsx")
    with pytest.raises(InvalidArgumentError, match="not a directory"):
        results.export(tmp_path / "nope" / "out.csv")


@pytest.mark.parametrize("model", ["branch", "ensemble"])
def test_rules_sql_selects_exactly_the_accepted_items(
    engine: SearchEngine, labelled: tuple[int, np.ndarray, np.ndarray], model: str
) -> None:
    _, pos, neg = labelled
    results = engine.refine(pos, neg, model=model, seed=2)
    rules = results.rules()
    assert len(rules.conditions()) == len(rules.boxes) > 0
    assert "accepted when" in str(rules)
    codes = engine.catalog.codes
    db = sqlite3.connect(":memory:")
    columns = ", ".join(f"c{d} INTEGER" for d in range(codes.shape[1]))
    db.execute(f"CREATE TABLE codes (id INTEGER, {columns})")
    placeholders = ", ".join("?" * (codes.shape[1] + 1))
    rows = np.column_stack([item_id(np.arange(len(codes))), codes.astype(np.int64)]).tolist()
    db.executemany(f"INSERT INTO codes VALUES ({placeholders})", rows)
    selected = sorted(r[0] for r in db.execute(rules.sql()))
    assert selected == sorted(results.ids.tolist())


def test_models_without_boxes_have_no_rules(engine: SearchEngine, labelled: tuple[int, np.ndarray, np.ndarray]) -> None:
    _, pos, neg = labelled
    with pytest.raises(InvalidArgumentError, match="only box models"):
        engine.refine(pos, neg, model="linear", seed=0).rules()
    with pytest.raises(InvalidArgumentError, match="only box models"):
        engine.search_image(item_id(3)).rules()


def test_bad_inputs_are_typed_errors(engine: SearchEngine, labelled: tuple[int, np.ndarray, np.ndarray]) -> None:
    _, pos, neg = labelled
    with pytest.raises(InvalidArgumentError, match="unknown model 'svm'"):
        engine.refine(pos, neg, model="svm")
    with pytest.raises(InvalidArgumentError, match="at least one positive"):
        engine.refine([], neg)
    with pytest.raises(UnknownItemError, match=r"positive ids not in the catalog: \[1001\]"):
        engine.refine([1001], neg)  # odd ids do not exist
    with pytest.raises(UnknownItemError):
        engine.search_image(7)
    with pytest.raises(InvalidArgumentError, match="both positive and negative"):
        engine.refine(pos, pos[:1])
    with pytest.raises(InvalidArgumentError, match="random_negatives"):
        engine.refine(pos, random_negatives=-1)
    with pytest.raises(InvalidArgumentError, match="seed"):
        engine.refine(pos, seed=-3)
    with pytest.raises(InvalidArgumentError, match="k must be"):
        engine.search_image(item_id(0), k=0)
    with pytest.raises(InvalidArgumentError, match="integers"):
        engine.refine(["a"])
    # A catalog not made by ingest has no encoder or head: say so, and what to do instead.
    with pytest.raises(EncoderError, match="search by item id"):
        engine.search_text("a red dress")


def test_unseeded_rounds_record_their_seed(engine: SearchEngine, labelled: tuple[int, np.ndarray, np.ndarray]) -> None:
    _, pos, neg = labelled
    results = engine.refine(pos, neg, model="ensemble")
    assert isinstance(results.params["seed"], int)
    np.testing.assert_array_equal(engine.redo(results.params).ids, results.ids)


def test_concurrent_refines_agree(engine: SearchEngine, labelled: tuple[int, np.ndarray, np.ndarray]) -> None:
    _, pos, neg = labelled
    expected = engine.refine(pos, neg, model="ensemble", seed=5).ids
    out: list[np.ndarray] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            out.append(engine.refine(pos, neg, model="ensemble", seed=5).ids)
        except BaseException as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(out) == 4
    for ids in out:
        np.testing.assert_array_equal(ids, expected)


def test_an_encoder_of_another_space_is_refused(tmp_path: Path) -> None:
    from clipbranches import EncoderMismatchError
    from clipbranches.embed.encoders import Encoder

    class Other(Encoder):
        image_dim = text_dim = 4

        @property
        def identity(self) -> dict[str, object]:
            return {"kind": "open_clip", "model": "ViT-B-32", "weights": "laion2b", "dim": 512}

        def encode_images(self, images: object) -> np.ndarray:
            raise AssertionError("never called")

        def encode_texts(self, texts: object) -> np.ndarray:
            raise AssertionError("never called")

    codes = np.zeros((3, 32), np.uint8)
    catalog = Catalog.create(tmp_path / "c", codes, encoder={"kind": "offline", "image": "x", "text": "y"})
    with pytest.raises(EncoderMismatchError, match="not the catalog's"):
        SearchEngine(catalog, encoder=Other())


@pytest.mark.parametrize("model", ["branch", "ensemble"])
def test_rules_sql_keeps_the_labels_the_boxes_disagree_with(
    engine: SearchEngine, labels: np.ndarray, labelled: tuple[int, np.ndarray, np.ndarray], model: str
) -> None:
    cluster, pos, _ = labelled
    outsider = item_id(np.flatnonzero(labels != cluster)[:1])  # a positive no box will hold
    first = engine.refine(pos, model=model, seed=4)
    inside = first.ids[~first.labelled][:2]  # negatives the boxes would accept
    results = engine.refine(np.concatenate([pos, outsider]), inside, model=model, seed=4)
    assert outsider[0] in results.ids
    assert not np.isin(inside, results.ids).any()
    codes = engine.catalog.codes
    db = sqlite3.connect(":memory:")
    db.execute(f"CREATE TABLE codes (id INTEGER, {', '.join(f'c{d} INTEGER' for d in range(codes.shape[1]))})")
    rows = np.column_stack([item_id(np.arange(len(codes))), codes.astype(np.int64)]).tolist()
    db.executemany(f"INSERT INTO codes VALUES ({', '.join('?' * (codes.shape[1] + 1))})", rows)
    assert sorted(r[0] for r in db.execute(results.rules().sql())) == sorted(results.ids.tolist())
    assert "plus the 11 labelled positives, minus the 2 labelled negatives" in str(results.rules())


def test_items_and_thumbnails_by_id(tmp_path: Path) -> None:
    codes = np.concatenate([block for block, _ in testing.codes(50, k=5)])
    items = pl.DataFrame({"id": np.arange(100, 150), "caption": [f"item {i}" for i in range(50)]})
    engine = SearchEngine(Catalog.create(tmp_path / "cat", codes, items, encoder={"name": "test"}))
    found = engine.items([140, 100, 141])
    assert found["id"].to_list() == [140, 100, 141]
    assert found["caption"].to_list() == ["item 40", "item 0", "item 41"]
    assert engine.items([]).columns == found.columns
    assert engine.thumbnail(100) is None  # not made by ingest: no thumbnail
    (tmp_path / "cat" / "thumbs").mkdir()
    (tmp_path / "cat" / "thumbs" / "141.jpg").write_bytes(b"jpeg")
    assert engine.thumbnail(141) == tmp_path / "cat" / "thumbs" / "141.jpg"
    with pytest.raises(UnknownItemError, match=r"\[7\]"):
        engine.items([100, 7])
    with pytest.raises(UnknownItemError):
        engine.thumbnail(99)
