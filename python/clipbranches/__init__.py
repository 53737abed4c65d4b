"""clipbranches: interactive text-to-image search with box classifiers over 32-byte codes.

The public API is here: :class:`SearchEngine` (search, refine), :class:`Results`,
:class:`Session` (labels, rounds, undo), :class:`Catalog`, :class:`CatalogSet` (catalogs as the
shards of one collection; ``SearchEngine.open`` searches a set like a catalog), :class:`RefineOptions`,
:class:`Rules` and the exceptions. The layers beneath are subpackages: :mod:`clipbranches.store`
(catalogs, index, boxes, quantizers), :mod:`clipbranches.learn` (training sets, learners, the
model registry) and :mod:`clipbranches.embed` (towers, heads, ingest).

Importing this package is light: numpy, polars and the native core only. torch, open_clip
and textual load lazily, in the modules that need them.
"""

from clipbranches import exceptions as _exceptions
from clipbranches._core import __version__
from clipbranches.engine import SearchEngine
from clipbranches.exceptions import *  # noqa: F403 (the exception tree, listed once in exceptions.__all__)
from clipbranches.options import DEFAULT_K, RefineOptions
from clipbranches.results import Results
from clipbranches.rules import Rules
from clipbranches.session import Session
from clipbranches.store.catalog import Catalog
from clipbranches.store.catalog_set import CatalogSet

__all__ = [
    "DEFAULT_K",
    "Catalog",
    "CatalogSet",
    "RefineOptions",
    "Results",
    "Rules",
    "SearchEngine",
    "Session",
    "__version__",
    *_exceptions.__all__,
]
