"""Storage: catalogs of quantized codes on disk, their block index and box queries.

- :class:`Catalog`: the memory-mapped codes plus item metadata (the native core owns the format).
- :class:`CatalogSet`: ordinary catalogs as the shards of one collection (``catalogset.json``).
- :class:`Index`: the block index (k-d tree leaves, column-major blocks with bounds).
- :class:`Box`, :class:`BoxHits`: box queries and their answers.
- Quantizers: float embeddings to the uint8 codes a catalog stores.
"""

from clipbranches.store.boxes import Box, BoxHits
from clipbranches.store.catalog import Catalog
from clipbranches.store.catalog_set import CatalogSet, is_catalog_set
from clipbranches.store.index import Index
from clipbranches.store.quantize import CalibratedQuantizer, FixedRangeQuantizer, Quantizer, quantizer_from_params

__all__ = [
    "Box",
    "BoxHits",
    "CalibratedQuantizer",
    "Catalog",
    "CatalogSet",
    "FixedRangeQuantizer",
    "Index",
    "Quantizer",
    "is_catalog_set",
    "quantizer_from_params",
]
