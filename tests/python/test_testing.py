"""The project's synthetic data: deterministic, chunking-independent, clustered as specified."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clipbranches import InvalidArgumentError, testing
from clipbranches.store import FixedRangeQuantizer


def _all(n: int, **kwargs: object) -> tuple[np.ndarray, np.ndarray]:
    blocks = list(testing.embeddings(n, **kwargs))  # type: ignore[arg-type]
    return np.concatenate([b[0] for b in blocks]), np.concatenate([b[1] for b in blocks])


def test_points_are_unit_norm_and_deterministic() -> None:
    x, labels = _all(1000)
    assert x.shape == (1000, 32)
    assert x.dtype == np.float32
    assert labels.dtype == np.int32
    assert 0 <= labels.min() <= labels.max() < 1000
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-5)
    x2, labels2 = _all(1000)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(labels, labels2)
    assert not np.array_equal(x, _all(1000, seed=1)[0])


def test_a_prefix_is_the_smaller_catalog() -> None:
    n = testing.BLOCK_ROWS + 123
    x_big, labels_big = _all(n)
    x_small, labels_small = _all(500)
    np.testing.assert_array_equal(x_big[:500], x_small)
    np.testing.assert_array_equal(labels_big[:500], labels_small)
    np.testing.assert_array_equal(testing.labels(n), labels_big)


def test_points_sit_near_their_centre() -> None:
    x, labels = _all(2000, k=50)
    centres = testing.centres(50)
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), 1.0, rtol=1e-5)
    nearest = np.argmax(x @ centres.T, axis=1)
    assert (nearest == labels).mean() > 0.99
    # noise 0.18 in 32 dims: cos(point, centre) ~ 1 / sqrt(1 + 32 * 0.18^2) ~ 0.70
    cosine = np.einsum("ij,ij->i", x, centres[labels])
    assert 0.67 < cosine.mean() < 0.73


def test_codes_use_the_papers_quantizer() -> None:
    ((codes, _),) = testing.codes(10)
    ((x, _),) = testing.embeddings(10)
    np.testing.assert_array_equal(codes, FixedRangeQuantizer().quantize(x))


def test_make_catalog(tmp_path: Path) -> None:
    catalog = testing.make_catalog(tmp_path / "syn", 3000, k=20)
    assert (len(catalog), catalog.dim) == (3000, 32)
    assert catalog.items["label"].to_list() == testing.labels(3000, k=20).tolist()
    assert catalog.encoder == {"name": "synthetic", "k": 20, "noise": 0.18, "seed": 0}
    ((codes, _),) = testing.codes(3000, k=20)
    np.testing.assert_array_equal(catalog.codes, codes)


def test_bad_arguments() -> None:
    with pytest.raises(InvalidArgumentError, match="n must be >= 0"):
        next(testing.embeddings(-1))
    with pytest.raises(InvalidArgumentError, match="k >= 1"):
        testing.centres(0)
