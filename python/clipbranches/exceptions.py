"""The exception tree of clipbranches, rooted at :class:`ClipBranchesError`.

The classes the native core raises are defined there, so that Rust and Python code raise the
very same types; this module is their public home and defines the Python-only ones.

::

    ClipBranchesError
    ├── CatalogError
    │   ├── CatalogNotFoundError    the catalog directory (or its parent) does not exist
    │   ├── CatalogExistsError      the target exists and overwrite was not requested
    │   ├── CatalogFormatError      a file is missing, truncated or in an unsupported format
    │   ├── ChecksumError           a data file does not match its recorded checksum
    │   ├── CatalogIOError          the operating system refused a read or write
    │   ├── IndexNotFoundError      no index built yet (catalog.build_index())
    │   ├── IndexFormatError        an index file is truncated, corrupt or of another version
    │   └── StaleIndexError         the index belongs to another catalog (or another version)
    ├── DimensionMismatchError      data whose shape does not fit
    ├── DatasetNotFoundError        a data set a benchmark or the demo needs is not installed
    ├── EncoderError                an encoder cannot be loaded (weights missing: says what to pass)
    │   └── EncoderMismatchError    the query encoder's space is not the catalog's
    ├── MissingDependencyError      an optional package a feature needs is not installed
    ├── SessionFormatError          a saved session that cannot be read
    └── InvalidArgumentError        an argument that cannot be right (dtype, parameter)
        ├── InvalidQueryError       a box query that cannot be right (lo > hi, bad dims, no boxes)
        └── UnknownItemError        an item id the catalog does not have
"""

from clipbranches._core import (
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
    SessionFormatError,
    StaleIndexError,
    UnknownItemError,
)


class MissingDependencyError(ClipBranchesError):
    """An optional package a feature needs is not installed; the message has the install line."""


__all__ = [
    "CatalogError",
    "CatalogExistsError",
    "CatalogFormatError",
    "CatalogIOError",
    "CatalogNotFoundError",
    "ChecksumError",
    "ClipBranchesError",
    "DatasetNotFoundError",
    "DimensionMismatchError",
    "EncoderError",
    "EncoderMismatchError",
    "IndexFormatError",
    "IndexNotFoundError",
    "InvalidArgumentError",
    "InvalidQueryError",
    "MissingDependencyError",
    "SessionFormatError",
    "StaleIndexError",
    "UnknownItemError",
]
