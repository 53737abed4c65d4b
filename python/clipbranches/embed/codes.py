"""From tower features to a catalog: the heads and the quantizer applied in one place, and the
one writer of a catalog that carries its heads and thumbnails (ingest and the demo use both).

torch loads inside the functions (``import clipbranches.embed.codes`` stays light).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import polars as pl
from numpy.typing import NDArray

from clipbranches.embed.chunks import stage_thumbnails
from clipbranches.exceptions import CatalogFormatError, DimensionMismatchError, InvalidArgumentError
from clipbranches.store.catalog import HEAD_FILE, THUMBS_DIR, Catalog
from clipbranches.store.quantize import FixedRangeQuantizer, Quantizer

if TYPE_CHECKING:
    from clipbranches.embed.head import AnyHeads

__all__ = ["FEATURES_FILE", "load_features", "project", "project_images", "reproject", "write_catalog"]

#: The image tower's features of every item (float16, one row per item id), kept on request so
#: that new heads can re-project a catalog without encoding its images again.
FEATURES_FILE = "features.npy"
#: Rows projected at a time by :func:`reproject` (bounds its memory, not its result).
_BLOCK = 65536


def project(
    heads: AnyHeads, features: NDArray[np.floating[Any]], side: Literal["image", "text"], quantizer: Quantizer
) -> NDArray[np.uint8]:
    """uint8 codes of tower ``features`` ``(n, dim)``: the ``side`` head (on the heads' device,
    without gradients) to unit vectors, then ``quantizer`` (a catalog's, so queries and items
    are quantized alike)."""
    import torch

    # Projection heads hold only buffers, trained heads at least parameters.
    device = next(itertools.chain(heads.parameters(), heads.buffers())).device
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)).to(device)
        z = heads.encode_text(x) if side == "text" else heads.encode_image(x)
    return quantizer.quantize(z.float().cpu().numpy())


def write_catalog(
    target: str | os.PathLike[str],
    codes: NDArray[np.uint8] | Iterable[NDArray[np.uint8]],
    items: pl.DataFrame,
    *,
    encoder: Mapping[str, Any],
    heads: AnyHeads,
    thumbnails: tuple[Path, NDArray[np.int64]] | None = None,
    features: NDArray[np.float16] | None = None,
    overwrite: bool = False,
) -> Catalog:
    """Write a catalog of ``codes`` (made by :func:`project` with the paper's fixed-range
    quantizer) that carries its heads (``head.safetensors``: queries are encoded exactly like
    its items) and thumbnails, all appearing together atomically.

    ``thumbnails``: ``(folder, positions)``, the work folder's ``<position>.jpg`` files of the
    items kept (position ``positions[i]`` becomes item ``i``). ``features``: the image tower's
    features of the items, in id order, kept as ``features.npy`` (float16: half the bytes of the
    tower's float32, and far below the 32-d heads' resolution; see :func:`load_features`).
    """
    from clipbranches.embed.head import save_heads

    if features is not None and len(features) != len(items):
        raise DimensionMismatchError(f"{len(features)} feature rows for {len(items)} items")

    def attach(staging: Path) -> None:
        save_heads(heads, staging / HEAD_FILE)
        if thumbnails is not None:
            stage_thumbnails(thumbnails[0], thumbnails[1], staging / THUMBS_DIR)
        if features is not None:  # the staging folder appears at the target only when complete
            np.save(staging / FEATURES_FILE, np.asarray(features, np.float16), allow_pickle=False)

    return Catalog.create(
        target,
        codes,
        items,
        quantizer=FixedRangeQuantizer(),
        encoder=encoder,
        head=heads.config.to_dict(),
        dim=heads.config.out_dim,
        overwrite=overwrite,
        attach=attach,
    )


def project_images(heads: AnyHeads, features: NDArray[np.floating[Any]]) -> NDArray[np.uint8]:
    """uint8 codes of many image feature rows (float16 or float32), a block at a time."""
    quantizer = FixedRangeQuantizer()
    blocks = [project(heads, features[i : i + _BLOCK], "image", quantizer) for i in range(0, len(features), _BLOCK)]
    return np.concatenate([np.zeros((0, heads.config.out_dim), np.uint8), *blocks])


def load_features(catalog: Catalog) -> NDArray[np.float16]:
    """The tower features a catalog kept (memory-mapped, ``(len(catalog), image_dim)`` float16).

    Raises
    ------
    InvalidArgumentError
        The catalog keeps none (ingest it with ``keep_features=True``, ``--keep-features``).
    CatalogFormatError
        The file is not a float16 matrix with one row per item.
    """
    path = catalog.path / FEATURES_FILE
    if not path.is_file():
        raise InvalidArgumentError(
            f"{catalog.path} keeps no tower features: ingest it with keep_features=True (--keep-features)"
        )
    try:
        features = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as e:
        raise CatalogFormatError(f"{path}: unreadable features ({e})") from e
    if features.dtype != np.float16 or features.ndim != 2 or len(features) != len(catalog):
        raise CatalogFormatError(
            f"{path}: expected float16 features with {len(catalog)} rows, got {features.dtype} {features.shape}"
        )
    return features


def reproject(catalog: Catalog, target: str | os.PathLike[str], heads: AnyHeads, *, overwrite: bool = False) -> Catalog:
    """A copy of ``catalog`` at ``target`` whose codes come from ``heads`` applied to the kept
    features (no image is encoded again); items, thumbnails and features carry over. ``target``
    may be the catalog itself with ``overwrite=True``: it is replaced atomically.

    Raises
    ------
    InvalidArgumentError
        As :func:`load_features`.
    DimensionMismatchError
        ``heads`` take features of another dim.
    """
    features = load_features(catalog)
    if heads.config.image_dim != features.shape[1]:
        raise DimensionMismatchError(
            f"the heads take {heads.config.image_dim}-d image features, the catalog kept {features.shape[1]}-d"
        )
    codes = project_images(heads, features)
    thumbs = catalog.path / THUMBS_DIR
    return write_catalog(
        target,
        codes,
        catalog.items,
        encoder=catalog.encoder or {},
        heads=heads,
        thumbnails=(thumbs, np.arange(len(catalog), dtype=np.int64)) if thumbs.is_dir() else None,
        features=np.array(features),  # read now: the source may be the target being replaced
        overwrite=overwrite,
    )
