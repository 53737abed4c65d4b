"""What :meth:`Catalog.create` is given, checked before anything is written: the codes (an
array or a stream of chunks), the identities for the manifest, integer arguments."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from clipbranches.exceptions import DimensionMismatchError, InvalidArgumentError
from clipbranches.store.quantize import Quantizer

__all__ = ["MAX_DIM", "CodesInput", "check_int_argument", "code_chunks", "metadata_json"]

#: Largest code width (the native core's limit).
MAX_DIM = 1 << 16

CodesInput = NDArray[np.uint8] | Iterable[NDArray[np.uint8]]


def check_int_argument(name: str, value: object, lo: int, hi: int, expected: str = "") -> int:
    """``value`` as an int in ``lo..=hi``, else an :class:`InvalidArgumentError` naming ``name``."""
    expected = expected or f"an integer in {lo}..{hi}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise InvalidArgumentError(f"{name} must be {expected}, got {value!r} ({type(value).__name__})")
    if not lo <= int(value) <= hi:
        raise InvalidArgumentError(f"{name} must be {expected}, got {int(value)}")
    return int(value)


def code_chunks(codes: CodesInput) -> Iterator[NDArray[np.uint8]]:
    """Chunks of codes, each checked as it comes; the width is the first chunk's."""
    if isinstance(codes, np.ndarray):
        codes_iter: Iterator[Any] = iter((codes,))
    elif isinstance(codes, Iterable) and not isinstance(codes, (str, bytes, Mapping)):
        codes_iter = iter(codes)
    else:
        raise InvalidArgumentError(f"codes must be a uint8 array or an iterable of them, got {type(codes).__name__}")
    first = next(codes_iter, None)
    if first is None:
        return
    first = _check_chunk(first, None)
    yield first
    for chunk in codes_iter:
        yield _check_chunk(chunk, first.shape[1])


def _check_chunk(chunk: object, dim: int | None) -> NDArray[np.uint8]:
    if not isinstance(chunk, np.ndarray):
        raise InvalidArgumentError(f"a codes chunk is a {type(chunk).__name__}; expected a numpy uint8 array (n, dim)")
    if chunk.dtype != np.uint8:
        raise InvalidArgumentError(
            f"codes have dtype {chunk.dtype}; expected uint8 "
            "(quantize float embeddings first, e.g. FixedRangeQuantizer().quantize(x))"
        )
    if chunk.ndim != 2:
        raise DimensionMismatchError(f"codes must be 2-D (n, dim), got shape {chunk.shape}")
    if chunk.shape[1] == 0:
        raise DimensionMismatchError(f"codes must have at least one column, got shape {chunk.shape}")
    if dim is not None and chunk.shape[1] != dim:
        raise DimensionMismatchError(f"a codes chunk has {chunk.shape[1]} columns, earlier chunks have {dim}")
    return np.ascontiguousarray(chunk)


def metadata_json(quantizer: Quantizer, encoder: Mapping[str, Any] | None, head: Mapping[str, Any] | None) -> str:
    for name, value in (("encoder", encoder), ("head", head)):
        if value is not None and not isinstance(value, Mapping):
            raise InvalidArgumentError(f"{name} must be a mapping (JSON object) or None, got {type(value).__name__}")
    meta = {
        "encoder": dict(encoder) if encoder is not None else None,
        "quantizer": quantizer.params(),
        "head": dict(head) if head is not None else None,
    }
    try:
        return json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise InvalidArgumentError(f"encoder/head identities must be JSON-serialisable: {err}") from err
