"""Learning: the training set of a round, the learners, and the registry a round picks from.

- :mod:`~clipbranches.learn.training`: the user's labels plus random negatives.
- :mod:`~clipbranches.learn.branches`: decision branches and their ensemble (box models).
- :mod:`~clipbranches.learn.logistic`, :mod:`~clipbranches.learn.selftrain`,
  :mod:`~clipbranches.learn.hybrid`: the linear and hybrid scan models.
- :mod:`~clipbranches.learn.registry`: every model behind one interface, by name.
- :mod:`~clipbranches.learn.ranking`: what applying a model to a catalog returns.
"""

from clipbranches.learn.branches import BranchEnsemble, DecisionBranch, original_subsets
from clipbranches.learn.hybrid import HybridModel
from clipbranches.learn.ranking import Ranked
from clipbranches.learn.registry import DEFAULT_MODEL, MODELS, Model, make_model
from clipbranches.learn.selftrain import SelfTrainedLinear
from clipbranches.learn.training import TrainingSet, build_training_set

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "BranchEnsemble",
    "DecisionBranch",
    "HybridModel",
    "Model",
    "Ranked",
    "SelfTrainedLinear",
    "TrainingSet",
    "build_training_set",
    "make_model",
    "original_subsets",
]
