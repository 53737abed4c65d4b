"""Float embeddings to uint8 codes, and back.

Two quantizers, both recorded in the catalog manifest so that queries are quantized exactly
like the catalog:

- :class:`FixedRangeQuantizer`, the paper's: ``trunc(clip(x * 127.5 + 128, 0, 255))``, for
  unit-norm embeddings whose coordinates lie in [-1, 1].
- :class:`CalibratedQuantizer`: a per-dimension range ``[low, high]`` fitted on a sample,
  ``clip(rint((x - low) * 255 / (high - low)), 0, 255)``, which spends all 256 levels on the
  values each dimension actually takes.

``quantize`` runs in the native core (it is on the ingest path of 100M-item catalogs);
:func:`clipbranches.testing.quantize_numpy` is its pure-numpy twin, kept operation for operation
identical and held to it by a property test.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from clipbranches import _core
from clipbranches.exceptions import DimensionMismatchError, InvalidArgumentError

__all__ = ["CalibratedQuantizer", "FixedRangeQuantizer", "Quantizer", "quantizer_from_params"]


@runtime_checkable
class Quantizer(Protocol):
    """What a catalog needs of a quantizer."""

    def quantize(self, x: ArrayLike) -> NDArray[np.uint8]:
        """Codes of float embeddings ``(n, dim)`` (or one ``(dim,)`` vector)."""
        ...

    def dequantize(self, codes: ArrayLike) -> NDArray[np.float32]:
        """Approximate embeddings of codes."""
        ...

    def params(self) -> dict[str, Any]:
        """JSON-ready parameters, as stored under ``"quantizer"`` in the manifest."""
        ...

    def check_dim(self, dim: int) -> None:
        """Raise :class:`DimensionMismatchError` if the quantizer cannot serve ``dim``."""
        ...


def _as_rows(x: ArrayLike, name: str = "embeddings") -> tuple[NDArray[np.float32], bool]:
    """``x`` as a C-contiguous float32 ``(n, dim)`` array, and whether it was one vector."""
    try:
        array = np.asarray(x)
    except (ValueError, TypeError) as err:  # ragged nested lists, objects numpy cannot hold
        raise InvalidArgumentError(f"{name} must be a rectangular numeric array: {err}") from None
    if array.dtype.kind not in "fiu":
        raise InvalidArgumentError(f"{name} must be numeric, got dtype {array.dtype}")
    if array.ndim not in (1, 2):
        raise DimensionMismatchError(f"{name} must be (n, dim) or (dim,), got shape {array.shape}")
    single = array.ndim == 1
    rows = np.ascontiguousarray(array.reshape(1, -1) if single else array, dtype=np.float32)
    return rows, single


def _as_codes(codes: ArrayLike) -> NDArray[np.uint8]:
    try:
        array = np.asarray(codes)
    except (ValueError, TypeError) as err:
        raise InvalidArgumentError(f"codes must be a rectangular uint8 array: {err}") from None
    if array.dtype != np.uint8:
        raise InvalidArgumentError(f"codes must have dtype uint8, got {array.dtype}")
    return array


@dataclass(frozen=True)
class FixedRangeQuantizer:
    """The paper's quantizer: ``trunc(clip(x * scale + offset, 0, 255))``.

    Parameters
    ----------
    scale, offset
        The affine map; the defaults (127.5, 128) send [-1, 1] onto 0..255.
    """

    scale: float = 127.5
    offset: float = 128.0

    def __post_init__(self) -> None:
        for name in ("scale", "offset"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise InvalidArgumentError(f"FixedRangeQuantizer's {name} must be a number, got {value!r}")
        if not (np.isfinite(self.scale) and self.scale > 0 and np.isfinite(self.offset)):
            raise InvalidArgumentError(
                f"FixedRangeQuantizer needs a finite scale > 0 and a finite offset, "
                f"got scale={self.scale}, offset={self.offset}"
            )

    def quantize(self, x: ArrayLike) -> NDArray[np.uint8]:
        """uint8 codes of ``x`` (float ``(n, dim)`` or ``(dim,)``); NaN is an error."""
        rows, single = _as_rows(x)
        codes = _core.quantize_fixed(rows, self.scale, self.offset)
        return codes[0] if single else codes

    def dequantize(self, codes: ArrayLike) -> NDArray[np.float32]:
        """The centre of each code's bucket: truncation puts ``x`` in ``[q, q + 1)``."""
        q = _as_codes(codes).astype(np.float32)
        return ((q + np.float32(0.5) - np.float32(self.offset)) / np.float32(self.scale)).astype(np.float32)

    def params(self) -> dict[str, Any]:
        """``{"kind": "fixed", "scale": ..., "offset": ...}``."""
        return {"kind": "fixed", "scale": float(self.scale), "offset": float(self.offset)}

    def check_dim(self, dim: int) -> None:
        """Any dimension works with a fixed range."""


@dataclass(frozen=True, eq=False)
class CalibratedQuantizer:
    """A per-dimension range quantizer with rounding.

    Parameters
    ----------
    low, high
        float32 ``(dim,)``: the values mapped to codes 0 and 255; ``high > low`` everywhere.
    """

    low: NDArray[np.float32] = field(repr=False)
    high: NDArray[np.float32] = field(repr=False)

    def __post_init__(self) -> None:
        try:
            low = np.ascontiguousarray(self.low, dtype=np.float32)
            high = np.ascontiguousarray(self.high, dtype=np.float32)
        except (ValueError, TypeError) as err:
            raise InvalidArgumentError(f"low and high must be numeric arrays: {err}") from None
        if low.ndim != 1 or low.shape != high.shape or low.size == 0:
            raise DimensionMismatchError(
                f"low and high must be 1-D of equal length, not empty; got shapes {low.shape} and {high.shape}"
            )
        bad = ~(np.isfinite(low) & np.isfinite(high) & (high > low))
        if bad.any():
            d = int(np.flatnonzero(bad)[0])
            raise InvalidArgumentError(f"dimension {d}: need finite low < high, got [{low[d]}, {high[d]}]")
        low.setflags(write=False)
        high.setflags(write=False)
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    @classmethod
    def fit(cls, sample: ArrayLike, quantile: float = 0.001) -> CalibratedQuantizer:
        """Fit the range of each dimension to the ``quantile`` and ``1 - quantile`` of a sample.

        A dimension that is constant in the sample gets a tiny range around its value.
        """
        rows, _ = _as_rows(sample, "sample")
        if rows.shape[0] == 0:
            raise InvalidArgumentError("cannot calibrate a quantizer on an empty sample")
        if not 0.0 <= quantile < 0.5:
            raise InvalidArgumentError(f"quantile must be in [0, 0.5), got {quantile}")
        _reject_nan(rows)
        low = np.quantile(rows, quantile, axis=0).astype(np.float32)
        high = np.quantile(rows, 1.0 - quantile, axis=0).astype(np.float32)
        flat = high <= low
        high = np.where(flat, low + np.float32(1e-3), high).astype(np.float32)
        return cls(low, high)

    @property
    def dim(self) -> int:
        """Number of dimensions the quantizer was fitted on."""
        return int(self.low.shape[0])

    def check_dim(self, dim: int) -> None:
        """Raise :class:`DimensionMismatchError` unless ``dim`` is the fitted one."""
        if dim != self.dim:
            raise DimensionMismatchError(f"the calibrated quantizer has {self.dim} dimensions, data has {dim}")

    def quantize(self, x: ArrayLike) -> NDArray[np.uint8]:
        """uint8 codes of ``x`` (float ``(n, dim)`` or ``(dim,)``); NaN is an error."""
        rows, single = _as_rows(x)
        self.check_dim(rows.shape[1])
        codes = _core.quantize_calibrated(rows, self.low, self.high)
        return codes[0] if single else codes

    def dequantize(self, codes: ArrayLike) -> NDArray[np.float32]:
        """``low + q * (high - low) / 255``: rounding puts ``x`` nearest to that value."""
        q = _as_codes(codes).astype(np.float32)
        step = (self.high - self.low) / np.float32(255.0)
        return (self.low + q * step).astype(np.float32)

    def params(self) -> dict[str, Any]:
        """``{"kind": "calibrated", "low": [...], "high": [...]}``."""
        return {"kind": "calibrated", "low": self.low.tolist(), "high": self.high.tolist()}


def _reject_nan(rows: NDArray[np.float32]) -> None:
    nan = np.isnan(rows)
    if nan.any():
        r, d = (int(i) for i in np.argwhere(nan)[0])
        raise InvalidArgumentError(f"invalid argument: NaN at row {r}, dimension {d}: embeddings must be numbers")


def quantizer_from_params(params: Mapping[str, Any]) -> FixedRangeQuantizer | CalibratedQuantizer:
    """Rebuild the quantizer a manifest's ``"quantizer"`` entry describes."""
    if not isinstance(params, Mapping):
        raise InvalidArgumentError(f"quantizer parameters must be a mapping, got {type(params).__name__}")
    kind = params.get("kind")
    try:
        if kind == "fixed":
            return FixedRangeQuantizer(float(params["scale"]), float(params["offset"]))
        if kind == "calibrated":
            return CalibratedQuantizer(np.asarray(params["low"]), np.asarray(params["high"]))
    except (KeyError, TypeError, ValueError) as err:
        raise InvalidArgumentError(f"quantizer parameters {dict(params)!r} are incomplete: {err}") from err
    raise InvalidArgumentError(f"unknown quantizer kind {kind!r}; expected 'fixed' or 'calibrated'")
