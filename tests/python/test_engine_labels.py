"""Labels are honoured by every model: a round returns every labelled positive, first and
marked, and never a labelled negative, whatever the model and the labels (property test)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clipbranches import Catalog, testing
from clipbranches.engine import SearchEngine
from clipbranches.learn.registry import MODELS

N = 4000


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> SearchEngine:
    codes = np.concatenate([c for c, _ in testing.codes(N, k=20, seed=5)])
    items = pl.DataFrame({"id": np.arange(N) * 3 + 7})
    path = tmp_path_factory.mktemp("labels") / "cat"
    Catalog.create(path, codes, items)
    return SearchEngine.open(path, build_index=True)


labels_strategy = st.lists(st.integers(0, N - 1), min_size=1, max_size=40, unique=True).flatmap(
    lambda rows: st.tuples(st.just(rows), st.integers(1, len(rows)), st.integers(1, 100), st.integers(0, 2**16))
)


@pytest.mark.parametrize("model", sorted(MODELS))
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=labels_strategy)
def test_every_model_honours_the_labels(
    engine: SearchEngine, model: str, drawn: tuple[list[int], int, int, int]
) -> None:
    rows, n_pos, weight, seed = drawn
    ids = engine.catalog.item_ids[np.array(rows)]
    positives, negatives = ids[:n_pos], ids[n_pos:]
    results = engine.refine(positives, negatives, model=model, negative_weight=weight, seed=seed)
    assert set(results.ids[:n_pos].tolist()) == set(positives.tolist()), "every positive, first"
    assert results.labelled[:n_pos].all()
    assert not results.labelled[n_pos:].any()
    assert not np.isin(results.ids, negatives).any(), "no labelled negative"
    assert results.total == len(results.ids)
    page = results.page(0, 7)
    assert page.labelled.tolist() == results.labelled[:7].tolist()
    assert page.to_polars()["labelled"].to_list() == results.labelled[:7].tolist()
