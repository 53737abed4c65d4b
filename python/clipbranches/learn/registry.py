"""The model registry: every learner a refine round can use, behind one interface.

A model is fitted on a :class:`~clipbranches.learn.training.TrainingSet` and applied to a whole
catalog, returning :class:`~clipbranches.learn.Ranked` (every accepted item, best first):

- ``branch``, ``ensemble``: the decision-branch box models, applied through the index.
- ``tree``, ``forest``: scikit-learn's DecisionTree / RandomForest(25), applied by a full scan
  of the codes in chunks (the slow baselines the original's UI offers for contrast).
- ``logreg``: class-balanced logistic regression on the codes, applied by the native linear
  scan (:mod:`clipbranches.learn.selftrain` without its refit).
- ``linear``: ``logreg`` refitted once with pseudo-labels from the catalog
  (:mod:`clipbranches.learn.selftrain`).
- ``hybrid``: a linear score plus the distance to the nearest positive, cut at an estimate of
  the class's size (:mod:`clipbranches.learn.hybrid`): :data:`DEFAULT_MODEL`, chosen on OpenClipArt,
  where its F1 beats both oracle nearest-neighbour baselines from 32 positives (16 on the
  held-out Fashion-MNIST and digits) and ``linear`` never does; its ranking has the best
  average precision of all models on every data set of `benchmarks/quality.py` from a few
  positives on.

The default model and ``linear``/``logreg`` fit natively (numpy, no scikit-learn); scikit-learn
is imported only when ``tree`` or ``forest`` is fitted, and its absence is a typed error.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from numpy.typing import NDArray

from clipbranches.exceptions import DimensionMismatchError, InvalidArgumentError, MissingDependencyError
from clipbranches.learn.branches import BranchEnsemble, DecisionBranch
from clipbranches.learn.hybrid import HybridModel
from clipbranches.learn.ranking import Ranked
from clipbranches.learn.selftrain import SelfTrainedLinear

if TYPE_CHECKING:
    from clipbranches.learn.training import TrainingSet
    from clipbranches.store.catalog import Catalog

__all__ = ["DEFAULT_MODEL", "MODELS", "BoxModel", "Model", "ScanModel", "make_model"]

#: Rows per chunk of a full scan.
SCAN_CHUNK = 1 << 18


class Model(Protocol):
    """What a refine round needs from a learner: ``accept`` finds every accepted item
    (unranked, so the engine can time ranking apart), ``apply`` ranks them too."""

    name: str

    def fit(self, training: TrainingSet) -> Model: ...

    def accept(self, catalog: Catalog) -> Ranked: ...

    def apply(self, catalog: Catalog) -> Ranked: ...

    def score(self, codes: NDArray[np.uint8]) -> NDArray[np.float64]:
        """The model's score of each row of ``codes`` ``(n, dim)``, on the scale of ``accept``'s
        scores (after ``accept``: models that calibrate on the catalog do it there)."""
        ...


class BoxModel:
    """A decision-branch model or ensemble, applied through the catalog's index."""

    def __init__(self, name: str, learner: DecisionBranch | BranchEnsemble) -> None:
        self.name = name
        self.learner = learner

    def fit(self, training: TrainingSet) -> BoxModel:
        self.learner.fit(training.codes, training.labels, training.weights)
        return self

    def accept(self, catalog: Catalog) -> Ranked:
        return self.learner.accept(catalog)

    def apply(self, catalog: Catalog) -> Ranked:
        return self.learner.apply(catalog)

    def score(self, codes: NDArray[np.uint8]) -> NDArray[np.float64]:
        return self.learner.score_samples(codes)


class ScanModel:
    """A scikit-learn classifier applied to every catalog item by a chunked, threaded scan.

    Accepted: predicted probability of the positive class above 0.5; ranked by it.
    """

    def __init__(self, name: str, make: Callable[[], Any]) -> None:
        self.name = name
        self.make = make
        self.estimator: Any = None

    @staticmethod
    def _features(codes: NDArray[np.uint8]) -> NDArray[np.float32]:
        return codes.astype(np.float32)

    def fit(self, training: TrainingSet) -> ScanModel:
        self.estimator = self.make()
        self.estimator.fit(self._features(training.codes), training.labels, sample_weight=training.weights)
        return self

    def apply(self, catalog: Catalog) -> Ranked:
        return self.accept(catalog).ranked()

    def score(self, codes: NDArray[np.uint8]) -> NDArray[np.float64]:
        """Predicted probability of the positive class."""
        if self.estimator is None:
            raise InvalidArgumentError(f"model {self.name!r} is not fitted yet")
        fitted = int(self.estimator.n_features_in_)
        if codes.ndim != 2 or codes.shape[1] != fitted:
            raise DimensionMismatchError(f"codes of shape {codes.shape}; the {self.name} model was fitted on {fitted}")
        if len(codes) == 0:
            return np.zeros(0)
        positive = list(self.estimator.classes_).index(True)
        return np.asarray(self.estimator.predict_proba(self._features(codes))[:, positive], np.float64)

    def accept(self, catalog: Catalog) -> Ranked:
        if self.estimator is None:
            raise InvalidArgumentError(f"model {self.name!r} is not fitted yet")
        codes = catalog.codes

        def chunk(start: int) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
            proba = self.score(codes[start : start + SCAN_CHUNK])
            keep = np.flatnonzero(proba > 0.5)
            return keep + start, proba[keep]

        with ThreadPoolExecutor() as pool:
            parts = list(pool.map(chunk, range(0, len(codes), SCAN_CHUNK)))
        rows = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
        scores = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0)
        return Ranked(rows, scores, np.zeros(len(rows), np.uint16))


def _sklearn(model: str) -> Any:
    """The scikit-learn module of the scan baselines, or a typed error with the install line."""
    try:
        import sklearn.ensemble
        import sklearn.tree
    except ImportError as e:
        raise MissingDependencyError(
            f"the {model} model needs scikit-learn: pip install 'clipbranches[models]' ({e})"
        ) from e
    return sklearn


def _tree() -> Any:
    return _sklearn("tree").tree.DecisionTreeClassifier(random_state=0)


def _forest() -> Any:
    return _sklearn("forest").ensemble.RandomForestClassifier(n_estimators=25, n_jobs=-1, random_state=0)


#: Model name -> factory taking the round's seed.
MODELS: dict[str, Callable[[int], Model]] = {
    "branch": lambda seed: BoxModel("branch", DecisionBranch(seed=seed)),
    "ensemble": lambda seed: BoxModel("ensemble", BranchEnsemble(seed=seed)),
    "tree": lambda seed: ScanModel("tree", _tree),
    "forest": lambda seed: ScanModel("forest", _forest),
    "logreg": lambda seed: SelfTrainedLinear(seed, pseudo_rows=0, name="logreg"),
    "linear": lambda seed: SelfTrainedLinear(seed),
    "hybrid": lambda seed: HybridModel(seed),
}
#: The default model (chosen on OpenClipArt by `benchmarks/quality.py`; see the module docstring).
DEFAULT_MODEL = "hybrid"


def make_model(name: str, seed: int = 0) -> Model:
    """A fresh model by registry name."""
    if name not in MODELS:
        raise InvalidArgumentError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name](seed)
