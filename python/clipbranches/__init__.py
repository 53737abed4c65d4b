"""clipbranches: interactive text-to-image search with box classifiers over 32-byte codes.

Importing this package is light: numpy, polars and the native core only. torch, open_clip
and textual load lazily, in the modules that need them.
"""

from clipbranches import synthetic
from clipbranches._core import __version__
from clipbranches.boxes import Box, BoxHits
from clipbranches.catalog import Catalog
from clipbranches.exceptions import (
    CatalogError,
    CatalogExistsError,
    CatalogFormatError,
    CatalogIOError,
    CatalogNotFoundError,
    ChecksumError,
    ClipBranchesError,
    DatasetNotFoundError,
    DimensionMismatchError,
    EncoderError,
    EncoderMismatchError,
    IndexFormatError,
    IndexNotFoundError,
    InvalidArgumentError,
    InvalidQueryError,
    MissingDependencyError,
    SessionFormatError,
    StaleIndexError,
    UnknownItemError,
)
from clipbranches.index import Index
from clipbranches.learn import BranchEnsemble, DecisionBranch, Ranked, original_subsets
from clipbranches.quantize import (
    CalibratedQuantizer,
    FixedRangeQuantizer,
    Quantizer,
    quantizer_from_params,
)
from clipbranches.training import TrainingSet, build_training_set

__all__ = [
    "Box",
    "BoxHits",
    "BranchEnsemble",
    "CalibratedQuantizer",
    "Catalog",
    "CatalogError",
    "CatalogExistsError",
    "CatalogFormatError",
    "CatalogIOError",
    "CatalogNotFoundError",
    "ChecksumError",
    "ClipBranchesError",
    "DatasetNotFoundError",
    "DecisionBranch",
    "DimensionMismatchError",
    "EncoderError",
    "EncoderMismatchError",
    "FixedRangeQuantizer",
    "Index",
    "IndexFormatError",
    "IndexNotFoundError",
    "InvalidArgumentError",
    "InvalidQueryError",
    "MissingDependencyError",
    "SessionFormatError",
    "Quantizer",
    "Ranked",
    "StaleIndexError",
    "UnknownItemError",
    "TrainingSet",
    "__version__",
    "build_training_set",
    "original_subsets",
    "quantizer_from_params",
    "synthetic",
]
