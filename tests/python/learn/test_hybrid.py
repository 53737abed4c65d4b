"""The hybrid model: native scan (plain and through the index) against a numpy brute force,
the share estimate on a class of known size, and its typed errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clipbranches import Catalog, InvalidArgumentError
from clipbranches.learn import build_training_set
from clipbranches.learn.hybrid import HybridModel


def _blobs(n: int, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Codes of a class (``share`` of the rows, a tight blob in two modes) among background."""
    rng = np.random.default_rng(seed)
    codes = rng.normal(128, 40, (n, 32))
    labels = rng.random(n) < share
    modes = rng.normal(128, 60, (2, 32))
    members = np.flatnonzero(labels)
    codes[members] = modes[members % 2] + rng.normal(0, 8, (len(members), 32))
    return np.clip(np.round(codes), 0, 255).astype(np.uint8), labels


@pytest.fixture(scope="module")
def blobs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Catalog, np.ndarray]:
    codes, labels = _blobs(30_000, 0.04, seed=1)
    catalog = Catalog.create(tmp_path_factory.mktemp("hybrid") / "cat", codes)
    return catalog, labels


def _brute_force(model: HybridModel, codes: np.ndarray) -> np.ndarray:
    """The score of every row, from numpy distances (the model's documented formula)."""
    terms = model._terms
    assert terms is not None
    x = codes.astype(np.float64)

    def nearest(refs: np.ndarray) -> np.ndarray:
        if not len(refs):
            return np.full(len(x), np.inf)
        r = refs.astype(np.float64)
        return np.sqrt(((x[:, None, :] - r[None]) ** 2).sum(-1).min(1))

    f = terms.linear.decision(codes)
    return terms.combine(f, nearest(terms.positives), nearest(terms.negatives))


@pytest.mark.parametrize("with_negatives", [False, True])
def test_scan_and_index_agree_with_brute_force(
    blobs: tuple[Catalog, np.ndarray], tmp_path: Path, with_negatives: bool
) -> None:
    catalog, labels = blobs
    positives = np.flatnonzero(labels)[:12]
    negatives = np.flatnonzero(~labels)[:5] if with_negatives else []
    training = build_training_set(catalog.codes, positives, negatives, negative_weight=3)
    small = Catalog.create(tmp_path / "small", np.asarray(catalog.codes[:5000]))
    model = HybridModel().fit(training)
    scanned = model.accept(small)
    _, threshold = model._calibrate(small)
    expected = _brute_force(model, np.asarray(small.codes))
    assert 0 < len(scanned) < len(small)
    np.testing.assert_array_equal(scanned.rows, np.sort(scanned.rows))
    np.testing.assert_allclose(scanned.scores, expected[scanned.rows], rtol=1e-4, atol=1e-4)
    # Exactly the rows the brute force puts above the cut (float32 vs float64: rows within
    # 1e-4 of it may fall either way).
    clear = np.abs(expected - threshold) > 1e-4
    np.testing.assert_array_equal(np.isin(np.arange(len(small)), scanned.rows)[clear], (expected > threshold)[clear])
    small.build_index(block_items=512)
    indexed = HybridModel().fit(training).accept(small)
    order = np.argsort(indexed.rows)
    np.testing.assert_array_equal(indexed.rows[order], scanned.rows)
    np.testing.assert_allclose(indexed.scores[order], scanned.scores, rtol=1e-6)
    np.testing.assert_allclose(model.score(small.codes[scanned.rows]), scanned.scores, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("p", [4, 16, 64])
def test_finds_a_class_of_unknown_size(blobs: tuple[Catalog, np.ndarray], p: int) -> None:
    catalog, labels = blobs
    rng = np.random.default_rng(p)
    positives = rng.choice(np.flatnonzero(labels), p, replace=False)
    model = HybridModel().fit(build_training_set(catalog.codes, positives))
    accepted = model.accept(catalog)
    truth = np.flatnonzero(labels)
    assert model.share_ is not None
    assert 0.5 < model.share_ / labels.mean() < 2.0, "the share estimate is within a factor of two"
    hit = len(np.intersect1d(accepted.rows, truth))
    assert 2 * hit / (len(accepted) + len(truth)) > 0.8, "F1 of the accepted set"


def test_negative_weight_pushes_the_neighbourhood_down(blobs: tuple[Catalog, np.ndarray]) -> None:
    catalog, labels = blobs
    members = np.flatnonzero(labels)
    positives, negative = members[:10], members[10:11]
    codes = np.asarray(catalog.codes).astype(np.int64)
    neighbours = np.argsort(((codes - codes[negative[0]]) ** 2).sum(1))[1:30]
    means = []
    for weight in (1, 100):
        model = HybridModel().fit(build_training_set(catalog.codes, positives, negative, negative_weight=weight))
        model.accept(catalog)
        means.append(model.score(catalog.codes[neighbours]).mean())
    assert means[1] < means[0] - 1.0


def test_typed_errors(blobs: tuple[Catalog, np.ndarray]) -> None:
    catalog, labels = blobs
    training = build_training_set(catalog.codes, np.flatnonzero(labels)[:3])
    model = HybridModel().fit(training)
    with pytest.raises(InvalidArgumentError, match="only after it was applied"):
        model.score(catalog.codes[:3])
    with pytest.raises(InvalidArgumentError, match="not fitted"):
        HybridModel().accept(catalog)
    with pytest.raises(InvalidArgumentError, match="alpha"):
        HybridModel(alpha=-1.0)
    all_positive = build_training_set(catalog.codes, np.arange(10), random_negatives=0)
    with pytest.raises(InvalidArgumentError, match="at least one positive and one negative"):
        HybridModel().fit(all_positive)
