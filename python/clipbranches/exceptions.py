"""The exception tree of clipbranches, rooted at :class:`ClipBranchesError`.

The classes the native core raises are defined there, so that Rust and Python code raise the
very same types; the errors only Python code raises are defined here, on those bases. This
module is the public home of all of them (``__all__`` is the one list of names).

::

    ClipBranchesError
    ├── CatalogError
    │   ├── CatalogNotFoundError    the catalog directory (or its parent) does not exist
    │   │   └── ShardMissingError   a shard a catalog set lists is not there
    │   ├── CatalogExistsError      the target exists and overwrite was not requested
    │   ├── CatalogFormatError      a file is missing, truncated or in an unsupported format
    │   │   └── ShardCorruptError   a shard of a set that does not open or is not the one recorded
    │   ├── ChecksumError           a data file does not match its recorded checksum
    │   ├── CatalogIOError          the operating system refused a read or write
    │   ├── IndexNotFoundError      no index built yet (catalog.build_index())
    │   ├── IndexFormatError        an index file is truncated, corrupt or of another version
    │   ├── StaleIndexError         the index belongs to another catalog (or another version)
    │   └── CatalogChangedError     the catalog was replaced on disk after this handle opened it
    ├── DimensionMismatchError      data whose shape does not fit
    ├── DatasetNotFoundError        a data set a benchmark or the demo needs is not installed
    ├── EncoderError                an encoder cannot be loaded (weights missing: says what to pass)
    │   └── EncoderMismatchError    the query encoder's space is not the catalog's
    ├── MissingDependencyError      an optional package a feature needs is not installed
    ├── OutputError                 a file could not be written (disk full, ...); nothing changed
    ├── SessionFormatError          a saved session that cannot be read
    └── InvalidArgumentError        an argument that cannot be right (dtype, parameter)
        ├── InvalidQueryError       a box query that cannot be right (lo > hi, bad dims, no boxes)
        └── UnknownItemError        an item id the catalog does not have

Defined here (Python-only): IndexNotFoundError, CatalogChangedError, DatasetNotFoundError,
EncoderError, EncoderMismatchError, MissingDependencyError, OutputError, SessionFormatError,
UnknownItemError, ShardMissingError, ShardCorruptError; the others natively.
"""

from clipbranches._core import (
    CatalogError,
    CatalogExistsError,
    CatalogFormatError,
    CatalogIOError,
    CatalogNotFoundError,
    ChecksumError,
    ClipBranchesError,
    DimensionMismatchError,
    IndexFormatError,
    InvalidArgumentError,
    InvalidQueryError,
    StaleIndexError,
)


class IndexNotFoundError(CatalogError):
    """The catalog has no index yet: build it with catalog.build_index()."""


class CatalogChangedError(CatalogError):
    """The catalog was replaced on disk after this handle opened it: open it again."""


class DatasetNotFoundError(ClipBranchesError):
    """A data set a benchmark or the demo needs is not installed (the message says how)."""


class EncoderError(ClipBranchesError):
    """An encoder cannot be loaded (missing weights, unknown model); the message says what to pass."""


class EncoderMismatchError(EncoderError):
    """A query encoder whose space differs from the one that encoded the catalog."""


class OutputError(ClipBranchesError):
    """A file could not be written (disk full, read-only, permissions); nothing was changed."""


class MissingDependencyError(ClipBranchesError):
    """An optional package a feature needs is not installed; the message has the install line."""


class SessionFormatError(ClipBranchesError):
    """A saved search session that cannot be read (not JSON, wrong format or version)."""


class UnknownItemError(InvalidArgumentError):
    """An item id that the catalog does not have."""


class ShardMissingError(CatalogNotFoundError):
    """A shard that a catalog set's manifest lists is not there (``shard``: its name in the set)."""

    def __init__(self, message: str, shard: str = "") -> None:
        super().__init__(message)
        self.shard = shard


class ShardCorruptError(CatalogFormatError):
    """A shard of a catalog set that does not open, or is not the shard the set recorded (its
    manifest changed, another count or identity); ``shard``: its name in the set."""

    def __init__(self, message: str, shard: str = "") -> None:
        super().__init__(message)
        self.shard = shard


__all__ = [
    "CatalogChangedError",
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
    "OutputError",
    "SessionFormatError",
    "ShardCorruptError",
    "ShardMissingError",
    "StaleIndexError",
    "UnknownItemError",
]
