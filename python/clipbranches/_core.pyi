# Signatures of the native module (rust/bindings); checked against it by mypy.stubtest.
import os
from pathlib import Path
from typing import Any, Final, final

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "CatalogError",
    "CatalogExistsError",
    "CatalogFormatError",
    "CatalogIOError",
    "CatalogNotFoundError",
    "Catalog",
    "CatalogWriter",
    "ChecksumError",
    "ClipBranchesError",
    "DimensionMismatchError",
    "IndexFormatError",
    "InvalidArgumentError",
    "InvalidQueryError",
    "StaleIndexError",
    "BlockIndex",
    "BoxSet",
    "DEFAULT_BLOCK_ITEMS",
    "Hybrid",
    "linear_accept",
    "nearest",
    "query_boxes",
    "scan_boxes",
    "fit_branch",
    "fit_ensemble",
    "original_subsets",
    "quantize_calibrated",
    "quantize_fixed",
    "__version__",
]

__version__: str
# Items per block of an index unless told otherwise (4096).
DEFAULT_BLOCK_ITEMS: Final[int]

class ClipBranchesError(Exception): ...
class CatalogError(ClipBranchesError): ...
class CatalogNotFoundError(CatalogError): ...
class CatalogExistsError(CatalogError): ...
class CatalogFormatError(CatalogError): ...
class ChecksumError(CatalogError): ...
class CatalogIOError(CatalogError): ...
class IndexFormatError(CatalogError): ...
class StaleIndexError(CatalogError): ...
class DimensionMismatchError(ClipBranchesError): ...
class InvalidArgumentError(ClipBranchesError): ...
class InvalidQueryError(InvalidArgumentError): ...

@final
class Catalog:
    @staticmethod
    def open(path: str | os.PathLike[str]) -> Catalog: ...
    @property
    def path(self) -> Path: ...
    @property
    def count(self) -> int: ...
    @property
    def dim(self) -> int: ...
    def manifest_json(self) -> str: ...
    def verify(self) -> None: ...
    def codes(self) -> NDArray[np.uint8]: ...
    def __len__(self) -> int: ...

@final
class CatalogWriter:
    def __new__(cls, path: str | os.PathLike[str], dim: int, overwrite: bool = False) -> CatalogWriter: ...
    @staticmethod
    def check_target(path: str | os.PathLike[str], overwrite: bool = False) -> None: ...
    @property
    def staging_dir(self) -> Path: ...
    @property
    def dim(self) -> int: ...
    @property
    def count(self) -> int: ...
    def append(self, codes: NDArray[np.uint8]) -> None: ...
    def finish(self, meta_json: str) -> str: ...
    def abort(self) -> None: ...

def quantize_fixed(x: NDArray[np.float32], scale: float, offset: float) -> NDArray[np.uint8]: ...
def quantize_calibrated(
    x: NDArray[np.float32], low: NDArray[np.float32], high: NDArray[np.float32]
) -> NDArray[np.uint8]: ...

# A set's boxes in compressed form: offsets (int64), dims (uint16), lo, hi (uint8), groups (uint32).
_BoxArrays = tuple[NDArray[np.int64], NDArray[np.uint16], NDArray[np.uint8], NDArray[np.uint8], NDArray[np.uint32]]
_Hits = tuple[NDArray[np.uint32], NDArray[np.uint16], NDArray[np.uint16]]

@final
class BoxSet:
    # Any 1-D integer arrays; dim defaults to one more than the largest dim used.
    @staticmethod
    def from_arrays(
        offsets: NDArray[np.integer[Any]],
        dims: NDArray[np.integer[Any]],
        lo: NDArray[np.integer[Any]],
        hi: NDArray[np.integer[Any]],
        groups: NDArray[np.integer[Any]],
        dim: int | None = None,
    ) -> BoxSet: ...
    def __len__(self) -> int: ...
    # Number of distinct groups among the boxes.
    @property
    def groups(self) -> int: ...
    @property
    def dim(self) -> int: ...
    def arrays(self) -> _BoxArrays: ...

@final
class BlockIndex:
    @staticmethod
    def build(codes: NDArray[np.uint8], codes_checksum: str, block_items: int = ...) -> BlockIndex: ...
    @staticmethod
    def open(
        path: str | os.PathLike[str], codes_checksum: str, count: int | None = None, dim: int | None = None
    ) -> BlockIndex: ...
    def save(
        self, path: str | os.PathLike[str], catalog: tuple[str | os.PathLike[str], int, int] | None = None
    ) -> None: ...
    @property
    def count(self) -> int: ...
    @property
    def dim(self) -> int: ...
    @property
    def block_items(self) -> int: ...
    @property
    def nbytes(self) -> int: ...
    @property
    def codes_checksum(self) -> str: ...
    def estimate(self, boxes: BoxSet) -> tuple[float, float]: ...
    def query_boxes(self, boxes: BoxSet) -> _Hits: ...

def scan_boxes(codes: NDArray[np.uint8], boxes: BoxSet) -> _Hits: ...
def query_boxes(codes: NDArray[np.uint8], index: BlockIndex | None, boxes: BoxSet, method: str = "auto") -> _Hits: ...
def nearest(
    codes: NDArray[np.uint8], queries: NDArray[np.uint8], k: int
) -> tuple[NDArray[np.uint32], NDArray[np.uint64]]: ...
def linear_accept(
    codes: NDArray[np.uint8], weights: NDArray[np.float32], bias: float, threshold: float
) -> tuple[NDArray[np.uint32], NDArray[np.float32]]: ...
def fit_branch(
    codes: NDArray[np.uint8],
    labels: NDArray[np.bool_],
    weights: NDArray[np.float64],
    subsets: list[list[int]],
    *,
    max_boxes: int,
    min_pts: int | None,
    max_evals: float,
    open_sides: bool,
    max_failures: int,
    seed: int,
) -> BoxSet: ...
def fit_ensemble(
    codes: NDArray[np.uint8],
    labels: NDArray[np.bool_],
    weights: NDArray[np.float64],
    subsets: list[list[int]],
    *,
    members: int,
    keep_positives: bool,
    max_boxes: int,
    min_pts: int | None,
    max_evals: float,
    open_sides: bool,
    max_failures: int,
    seed: int,
) -> BoxSet: ...
def original_subsets(dim: int, seed: int = 0) -> list[list[int]]: ...

@final
class Hybrid:
    def __new__(
        cls,
        weights: NDArray[np.float32],
        bias: float,
        positives: NDArray[np.uint8],
        negatives: NDArray[np.uint8],
        stats: tuple[float, float, float, float],
        alpha: float,
        negative_weight: float,
    ) -> Hybrid: ...
    def terms(
        self, codes: NDArray[np.uint8]
    ) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]: ...
    def accept(self, codes: NDArray[np.uint8], threshold: float) -> tuple[NDArray[np.uint32], NDArray[np.float32]]: ...
    def accept_indexed(self, index: BlockIndex, threshold: float) -> tuple[NDArray[np.uint32], NDArray[np.float32]]: ...
