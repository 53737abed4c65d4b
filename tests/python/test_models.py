"""The model registry end to end on a small synthetic catalog, the self-trained linear model,
and the evaluation recipe's pieces (idx parsing, split, PCA) on tiny inputs."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clipbranches import Catalog, DatasetNotFoundError, InvalidArgumentError, build_training_set, synthetic
from clipbranches.evaluation import load_fashion_mnist, pca_unit, stratified_split
from clipbranches.models import DEFAULT_MODEL, MODELS, make_model


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    cat = synthetic.make_catalog(tmp_path_factory.mktemp("models") / "cat", 8000, k=20)
    cat.build_index(block_items=512)
    return cat


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_fits_and_ranks_the_cluster(catalog: Catalog, name: str) -> None:
    labels = catalog.items["label"].to_numpy()
    members = np.flatnonzero(labels == 4)
    positives = np.random.default_rng(0).choice(members, size=32, replace=False)
    training = build_training_set(catalog.codes, positives, random_negatives=500, seed=0)
    ranked = make_model(name, seed=0).fit(training).apply(catalog)
    assert len(ranked.ids) == len(np.unique(ranked.ids))
    assert np.all(np.diff(ranked.scores) <= 0), "best first"
    if len(ranked):
        precision = np.isin(ranked.ids, members).mean()
        assert precision > 0.5, f"{name}: precision {precision:.2f}"


def test_default_model_is_registered_and_unknown_names_fail() -> None:
    assert DEFAULT_MODEL in MODELS
    with pytest.raises(InvalidArgumentError, match="unknown model 'svm'"):
        make_model("svm")


def test_linear_model_is_deterministic_and_needs_fitting(catalog: Catalog) -> None:
    positives = np.flatnonzero(catalog.items["label"].to_numpy() == 2)[:8]
    training = build_training_set(catalog.codes, positives, seed=1)
    a = make_model("linear", seed=3).fit(training).apply(catalog)
    b = make_model("linear", seed=3).fit(training).apply(catalog)
    np.testing.assert_array_equal(a.ids, b.ids)
    with pytest.raises(InvalidArgumentError, match="not fitted"):
        make_model("linear").apply(catalog)


def _write_idx(path: Path, magic: int, array: np.ndarray) -> None:
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_reader_on_tiny_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    train, test = rng.integers(0, 256, (6, 28, 28)), rng.integers(0, 256, (4, 28, 28))
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", 0x0803, train)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", 0x0801, np.arange(6) % 10)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", 0x0803, test)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", 0x0801, np.arange(4) % 10)
    images, labels = load_fashion_mnist(tmp_path)
    np.testing.assert_array_equal(images, np.concatenate([train, test]).astype(np.uint8))
    np.testing.assert_array_equal(labels, [0, 1, 2, 3, 4, 5, 0, 1, 2, 3])
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", 0x0803, np.arange(4))
    with pytest.raises(DatasetNotFoundError, match="not an idx file"):
        load_fashion_mnist(tmp_path)


def test_missing_dataset_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path)


def test_split_is_stratified_disjoint_and_seeded() -> None:
    labels = np.repeat(np.arange(3), [10, 7, 4])
    pool, test = stratified_split(labels, seed=0)
    assert len(np.intersect1d(pool, test)) == 0
    assert len(pool) + len(test) == len(labels)
    assert list(np.bincount(labels[pool])) == [5, 3, 2]
    np.testing.assert_array_equal(pool, stratified_split(labels, seed=0)[0])


def test_pca_unit_rows_are_unit_and_components_ordered() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 20)) * np.linspace(10, 1, 20)
    out = pca_unit(x.astype(np.float32), dim=4)
    assert out.shape == (500, 4)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)


def test_lite0_features_shape_and_determinism() -> None:
    pytest.importorskip("torch")
    from clipbranches.evaluation import lite0_features

    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    a = lite0_features(images, device="cpu", progress=False)
    b = lite0_features(images[:2], device="cpu", progress=False)
    assert a.shape == (3, 1280)
    assert a.dtype == np.float32
    assert np.isfinite(a).all()
    np.testing.assert_allclose(a[:2], b, rtol=1e-4, atol=1e-4)


def test_openclipart_titles_skip_agent_names_and_fall_back_to_file_names(tmp_path: Path) -> None:
    from clipbranches.evaluation import openclipart_items

    with pytest.raises(DatasetNotFoundError, match="apt-get install openclipart-png"):
        openclipart_items(tmp_path)
    for folder in ("png/animals", "svg/animals", "png/food"):
        (tmp_path / folder).mkdir(parents=True)
    svg = (
        "<svg><metadata><cc:Work><dc:creator><cc:Agent><dc:title>Some Artist</dc:title></cc:Agent></dc:creator>"
        "<dc:title>Happy\n  cat</dc:title><dc:subject><rdf:Bag><rdf:li>cat</rdf:li><rdf:li> pet </rdf:li>"
        "</rdf:Bag></dc:subject></cc:Work></metadata></svg>"
    )
    (tmp_path / "svg/animals/cat_01.svg").write_text(svg)
    (tmp_path / "png/animals/cat_01.png").write_bytes(b"")
    (tmp_path / "png/food/red_apple.png").write_bytes(b"")  # no svg
    cat, apple = openclipart_items(tmp_path)
    assert (cat.title, cat.keywords, cat.category) == ("Happy cat", ("cat", "pet"), "animals")
    assert (apple.title, apple.keywords, apple.category) == ("red apple", (), "food")


def test_conse_mixes_the_top_classes_by_probability() -> None:
    from clipbranches.evaluation import conse

    texts = np.eye(4, dtype=np.float32)  # class c's text embedding is the unit vector e_c
    logits = np.log(np.array([[0.6, 0.3, 0.1, 0.0001], [0.0001, 0.0001, 0.0001, 1.0]]))
    mixed = conse(logits, texts, top=2)
    # top 2 of the first image: classes 0 and 1 weighted 0.6 : 0.3, then unit norm
    np.testing.assert_allclose(mixed[0], np.array([2, 1, 0, 0]) / np.sqrt(5), atol=1e-3)
    np.testing.assert_allclose(mixed[1], [0, 0, 0, 1], atol=1e-3)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 300), st.data())
def test_pseudo_negatives_are_distinct_rows_outside_the_accepted(n: int, data: st.DataObject) -> None:
    from clipbranches.selftrain import _sample_outside

    inside = np.array(sorted(data.draw(st.sets(st.integers(0, n - 1)))), np.int64)
    size = data.draw(st.integers(0, n + 5))
    seed = data.draw(st.integers(0, 2**32 - 1))
    drawn = _sample_outside(np.random.default_rng(seed), n, inside, size)
    outside = np.setdiff1d(np.arange(n), inside)
    assert len(drawn) == min(size, len(outside))
    assert len(np.unique(drawn)) == len(drawn)
    assert np.isin(drawn, outside).all()
    assert (np.diff(drawn) > 0).all()


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 200), st.booleans(), st.data())
def test_ranking_fast_path_matches_the_three_key_sort(n: int, linear: bool, data: st.DataObject) -> None:
    from clipbranches.learn import Ranked

    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    ids = np.sort(rng.choice(10 * n + 1, size=n, replace=False)) if linear else rng.permutation(n)
    scores = rng.integers(0, data.draw(st.integers(1, 4)), n).astype(np.float64)  # many ties, or all
    counts = np.zeros(n, np.uint16) if linear else rng.integers(0, 3, n).astype(np.uint16)
    ranked = Ranked(ids.astype(np.int64), scores, counts).ranked()
    order = np.lexsort((ids, -counts.astype(np.int64), -scores))
    np.testing.assert_array_equal(ranked.ids, ids[order])
    np.testing.assert_array_equal(ranked.scores, scores[order])


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 200), st.integers(0, 220), st.data())
def test_top_k_is_the_head_of_the_full_ranking(n: int, k: int, data: st.DataObject) -> None:
    from clipbranches.learn import Ranked

    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    ids = rng.permutation(n).astype(np.int64)
    levels = data.draw(st.sampled_from([1, 3, 1000]))  # all tied, many ties, few ties
    scores = rng.integers(0, levels, n).astype(np.float64)
    counts = rng.integers(0, data.draw(st.sampled_from([1, 3])), n).astype(np.uint16)  # all tied, or not
    hits = Ranked(ids, scores, counts)
    full, head = hits.ranked(), hits.top(k)
    np.testing.assert_array_equal(head.ids, full.ids[:k])
    np.testing.assert_array_equal(head.scores, full.scores[:k])
    np.testing.assert_array_equal(head.box_counts, full.box_counts[:k])


_NO_SKLEARN = """
import sys, json
import numpy as np
sys.modules["sklearn"] = None  # as if scikit-learn were not installed
from clipbranches import MissingDependencyError, build_training_set, synthetic
from clipbranches.models import DEFAULT_MODEL, make_model
cat = synthetic.make_catalog(sys.argv[1], 3000, k=10)
training = build_training_set(cat.codes, np.arange(5))
for name in (DEFAULT_MODEL, "linear", "logreg", "branch", "ensemble"):
    make_model(name).fit(training).apply(cat)
out = {}
for name in ("tree", "forest"):
    try:
        make_model(name).fit(training)
    except MissingDependencyError as e:
        out[name] = str(e)
print(json.dumps(out))
"""


def test_default_model_needs_no_scikit_learn_and_scan_models_say_how_to_get_it(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-c", _NO_SKLEARN, str(tmp_path / "cat")], check=True, capture_output=True, text=True
    )
    messages = json.loads(run.stdout)
    assert set(messages) == {"tree", "forest"}
    assert all("pip install 'clipbranches[models]'" in m for m in messages.values())
