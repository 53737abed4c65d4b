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
    DimensionMismatchError,
    IndexFormatError,
    IndexNotFoundError,
    InvalidArgumentError,
    InvalidQueryError,
    StaleIndexError,
)
from clipbranches.index import Index
from clipbranches.quantize import (
    CalibratedQuantizer,
    FixedRangeQuantizer,
    Quantizer,
    quantizer_from_params,
)

__all__ = [
    "Box",
    "BoxHits",
    "CalibratedQuantizer",
    "Catalog",
    "CatalogError",
    "CatalogExistsError",
    "CatalogFormatError",
    "CatalogIOError",
    "CatalogNotFoundError",
    "ChecksumError",
    "ClipBranchesError",
    "DimensionMismatchError",
    "FixedRangeQuantizer",
    "Index",
    "IndexFormatError",
    "IndexNotFoundError",
    "InvalidArgumentError",
    "InvalidQueryError",
    "Quantizer",
    "StaleIndexError",
    "__version__",
    "quantizer_from_params",
    "synthetic",
]
