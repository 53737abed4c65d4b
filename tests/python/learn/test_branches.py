"""Learners through the Python API: fit/predict/score, apply to a catalog, determinism, and
every bad input as a typed error."""

from __future__ import annotations

import numpy as np
import pytest

from clipbranches import Catalog, DimensionMismatchError, InvalidArgumentError, testing
from clipbranches.learn import BranchEnsemble, DecisionBranch, build_training_set, original_subsets
from clipbranches.store import Box
from clipbranches.store.boxes import boxes_of


@pytest.fixture(scope="module")
def clustered(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """20,000 synthetic items in 50 clusters, indexed."""
    catalog = testing.make_catalog(tmp_path_factory.mktemp("learn") / "cat", 20_000, k=50)
    catalog.build_index(block_items=512)
    return catalog


def labels_of(catalog: Catalog) -> np.ndarray:
    return catalog.items["label"].to_numpy()


def round_for(catalog: Catalog, cluster: int, positives: int = 20, seed: int = 0):  # noqa: ANN201
    members = np.flatnonzero(labels_of(catalog) == cluster)
    chosen = np.random.default_rng(seed).choice(members, size=positives, replace=False)
    return build_training_set(catalog.codes, chosen, random_negatives=500, seed=seed)


def f1(found: np.ndarray, truth: np.ndarray) -> float:
    hit = len(np.intersect1d(found, truth))
    return 0.0 if hit == 0 else 2 * hit / (len(found) + len(truth))


def test_original_subsets_have_the_original_shape() -> None:
    subsets = original_subsets(32)
    assert [len(s) for s in subsets].count(4) == 64
    assert [len(s) for s in subsets].count(6) == 32
    assert [len(s) for s in subsets].count(8) == 8
    assert original_subsets(32) == subsets


@pytest.mark.parametrize(("model", "least_f1"), [(DecisionBranch(seed=1), 0.2), (BranchEnsemble(seed=1), 0.6)])
def test_models_find_the_labelled_cluster(
    clustered: Catalog, model: DecisionBranch | BranchEnsemble, least_f1: float
) -> None:
    # 64 positives of a 400-item cluster (one of 50 that overlap on every 4-8-dim view):
    # measured F1 ~0.3 for one branch model and ~0.77 for the ensemble; random would be ~0.02.
    ts = round_for(clustered, cluster=3, positives=64)
    model.fit(ts.codes, ts.labels, ts.weights)
    assert model.boxes_
    assert all(isinstance(b, Box) for b in model.boxes_)
    ranked = model.apply(clustered)
    truth = np.flatnonzero(labels_of(clustered) == 3)
    assert f1(ranked.rows, truth) > least_f1
    # predict on the training rows: most positives accepted
    assert model.predict(ts.codes)[ts.labels].mean() > 0.7
    # scores are ranked best first
    assert np.all(np.diff(ranked.scores) <= 0)


def test_apply_agrees_with_predict_on_every_item(clustered: Catalog) -> None:
    ts = round_for(clustered, cluster=7, seed=2)
    for model in (DecisionBranch(seed=2), BranchEnsemble(n_members=7, seed=2)):
        model.fit(ts.codes, ts.labels, ts.weights)
        ranked = model.apply(clustered)
        expected = np.flatnonzero(model.predict(clustered.codes))
        np.testing.assert_array_equal(np.sort(ranked.rows), expected)
        scores = model.score_samples(clustered.codes)
        np.testing.assert_allclose(ranked.scores, scores[ranked.rows])


def test_same_seed_same_model_and_other_seed_differs(clustered: Catalog) -> None:
    ts = round_for(clustered, cluster=5)
    a = BranchEnsemble(seed=11).fit(ts.codes, ts.labels, ts.weights).boxes_
    b = BranchEnsemble(seed=11).fit(ts.codes, ts.labels, ts.weights).boxes_
    c = BranchEnsemble(seed=12).fit(ts.codes, ts.labels, ts.weights).boxes_
    assert a == b
    assert a != c


def test_ensemble_groups_are_members(clustered: Catalog) -> None:
    ts = round_for(clustered, cluster=9)
    model = BranchEnsemble(n_members=6, seed=0).fit(ts.codes, ts.labels, ts.weights)
    assert {b.group for b in model.boxes_} == set(range(6))
    assert model.box_set_ is not None
    assert model.box_set_.groups == 6


def test_models_keep_the_native_set_and_build_the_box_view_once(clustered: Catalog) -> None:
    ts = round_for(clustered, cluster=4)
    model = DecisionBranch(seed=3)
    assert model.box_set_ is None
    assert model.boxes_ == []
    model.fit(ts.codes, ts.labels, ts.weights)
    assert model.box_set_ is not None
    assert (len(model.box_set_), model.box_set_.dim, model.box_set_.groups) == (len(model.boxes_), 32, 1)
    assert model.boxes_ is model.boxes_, "built once"
    assert boxes_of(model.box_set_) == model.boxes_
    hits = clustered.query_boxes(model.boxes_)
    np.testing.assert_array_equal(np.sort(hits.rows), np.sort(model.accept(clustered).rows))
    first = model.boxes_
    model.fit(ts.codes[:, :16], ts.labels)
    assert model.box_set_.dim == 16
    assert model.boxes_ is not first, "a refit drops the old view"
    assert all(max(b.dims) < 16 for b in model.boxes_)


def test_fit_errors(clustered: Catalog) -> None:
    ts = round_for(clustered, cluster=1)
    with pytest.raises(InvalidArgumentError, match="uint8"):
        DecisionBranch().fit(ts.codes.astype(np.float32), ts.labels)
    with pytest.raises(DimensionMismatchError):
        DecisionBranch().fit(ts.codes, ts.labels[:-1])
    with pytest.raises(InvalidArgumentError, match="no positive"):
        DecisionBranch().fit(ts.codes, np.zeros(len(ts), bool))
    with pytest.raises(InvalidArgumentError, match="0/1"):
        DecisionBranch().fit(ts.codes, np.full(len(ts), 2))
    with pytest.raises(InvalidArgumentError, match="max_evals"):
        DecisionBranch(max_evals=0).fit(ts.codes, ts.labels)
    with pytest.raises(InvalidArgumentError, match="max_boxes"):
        DecisionBranch(max_boxes=0).fit(ts.codes, ts.labels)
    with pytest.raises(DimensionMismatchError):
        DecisionBranch(subsets=[(0, 40)]).fit(ts.codes, ts.labels)
    with pytest.raises(InvalidArgumentError, match="repeats"):
        DecisionBranch(subsets=[(1, 1)]).fit(ts.codes, ts.labels)
    with pytest.raises(InvalidArgumentError, match="n_members"):
        BranchEnsemble(n_members=0).fit(ts.codes, ts.labels)
    with pytest.raises(InvalidArgumentError, match="weight"):
        DecisionBranch().fit(ts.codes, ts.labels, np.full(len(ts), -1.0))
    with pytest.raises(InvalidArgumentError, match="not fitted"):
        DecisionBranch().predict(ts.codes)
    fitted = DecisionBranch().fit(ts.codes, ts.labels)
    with pytest.raises(DimensionMismatchError, match="dims"):
        fitted.predict(ts.codes[:, :16])
