"""The benchmarks' feature recipe (benchmarks/evaluation.py): PCA, Lite0 features, ConSE."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))

from evaluation import conse, lite0_features, pca_unit  # noqa: E402


def test_pca_unit_rows_are_unit_and_components_ordered() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 20)) * np.linspace(10, 1, 20)
    out = pca_unit(x.astype(np.float32), dim=4)
    assert out.shape == (500, 4)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)


def test_lite0_features_shape_and_determinism() -> None:
    pytest.importorskip("torch")

    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    a = lite0_features(images, device="cpu", progress=False)
    b = lite0_features(images[:2], device="cpu", progress=False)
    assert a.shape == (3, 1280)
    assert a.dtype == np.float32
    assert np.isfinite(a).all()
    np.testing.assert_allclose(a[:2], b, rtol=1e-4, atol=1e-4)


def test_conse_mixes_the_top_classes_by_probability() -> None:

    texts = np.eye(4, dtype=np.float32)  # class c's text embedding is the unit vector e_c
    logits = np.log(np.array([[0.6, 0.3, 0.1, 0.0001], [0.0001, 0.0001, 0.0001, 1.0]]))
    mixed = conse(logits, texts, top=2)
    # top 2 of the first image: classes 0 and 1 weighted 0.6 : 0.3, then unit norm
    np.testing.assert_allclose(mixed[0], np.array([2, 1, 0, 0]) / np.sqrt(5), atol=1e-3)
    np.testing.assert_allclose(mixed[1], [0, 0, 0, 1], atol=1e-3)
