"""The model registry end to end on a small synthetic catalog (every model fits and ranks a
cluster), the self-trained linear model, and the default model without scikit-learn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clipbranches import Catalog, InvalidArgumentError, testing
from clipbranches.learn import build_training_set
from clipbranches.learn.registry import DEFAULT_MODEL, MODELS, make_model


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    cat = testing.make_catalog(tmp_path_factory.mktemp("models") / "cat", 8000, k=20)
    cat.build_index(block_items=512)
    return cat


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_fits_and_ranks_the_cluster(catalog: Catalog, name: str) -> None:
    labels = catalog.items["label"].to_numpy()
    members = np.flatnonzero(labels == 4)
    positives = np.random.default_rng(0).choice(members, size=32, replace=False)
    training = build_training_set(catalog.codes, positives, random_negatives=500, seed=0)
    ranked = make_model(name, seed=0).fit(training).apply(catalog)
    assert len(ranked.rows) == len(np.unique(ranked.rows))
    assert np.all(np.diff(ranked.scores) <= 0), "best first"
    if len(ranked):
        precision = np.isin(ranked.rows, members).mean()
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
    np.testing.assert_array_equal(a.rows, b.rows)
    with pytest.raises(InvalidArgumentError, match="not fitted"):
        make_model("linear").apply(catalog)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 300), st.data())
def test_pseudo_negatives_are_distinct_rows_outside_the_accepted(n: int, data: st.DataObject) -> None:
    from clipbranches.learn.selftrain import _sample_outside

    inside = np.array(sorted(data.draw(st.sets(st.integers(0, n - 1)))), np.int64)
    size = data.draw(st.integers(0, n + 5))
    seed = data.draw(st.integers(0, 2**32 - 1))
    drawn = _sample_outside(np.random.default_rng(seed), n, inside, size)
    outside = np.setdiff1d(np.arange(n), inside)
    assert len(drawn) == min(size, len(outside))
    assert len(np.unique(drawn)) == len(drawn)
    assert np.isin(drawn, outside).all()
    assert (np.diff(drawn) > 0).all()


_NO_SKLEARN = """
import sys, json
import numpy as np
sys.modules["sklearn"] = None  # as if scikit-learn were not installed
from clipbranches import MissingDependencyError, testing
from clipbranches.learn import build_training_set
from clipbranches.learn.registry import DEFAULT_MODEL, make_model

cat = testing.make_catalog(sys.argv[1], 3000, k=10)
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
