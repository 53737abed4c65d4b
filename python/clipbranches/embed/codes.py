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
from clipbranches.store.catalog import HEAD_FILE, THUMBS_DIR, Catalog
from clipbranches.store.quantize import FixedRangeQuantizer, Quantizer

if TYPE_CHECKING:
    from clipbranches.embed.head import AnyHeads

__all__ = ["project", "write_catalog"]


def project(
    heads: AnyHeads, features: NDArray[np.float32], side: Literal["image", "text"], quantizer: Quantizer
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
    overwrite: bool = False,
) -> Catalog:
    """Write a catalog of ``codes`` (made by :func:`project` with the paper's fixed-range
    quantizer) that carries its heads (``head.safetensors``: queries are encoded exactly like
    its items) and thumbnails, all appearing together atomically.

    ``thumbnails``: ``(folder, positions)``, the work folder's ``<position>.jpg`` files of the
    items kept (position ``positions[i]`` becomes item ``i``).
    """
    from clipbranches.embed.head import save_heads

    def attach(staging: Path) -> None:
        save_heads(heads, staging / HEAD_FILE)
        if thumbnails is not None:
            stage_thumbnails(thumbnails[0], thumbnails[1], staging / THUMBS_DIR)

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
