"""Heads on disk: safetensors weights with the config in the file's metadata."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from clipbranches._io import atomic_write, check_path
from clipbranches.embed.head.model import HeadConfig, Heads
from clipbranches.embed.head.projection import ProjectionConfig, ProjectionHeads
from clipbranches.exceptions import CatalogFormatError, InvalidArgumentError

__all__ = ["check_heads_path", "load_heads", "save_heads"]

_FORMAT = "clipbranches-heads"


def check_heads_path(path: str | os.PathLike[str]) -> Path:
    """``path`` if heads can be written there: call it before training, so that a bad output
    path fails at once rather than after the work.

    Raises
    ------
    InvalidArgumentError
        A NUL byte in the path, a directory at the path, or a parent folder that does not exist.
    """
    target = check_path(path, "head file")
    if not target.parent.is_dir():
        raise InvalidArgumentError(f"cannot write the head file {target}: the folder {target.parent} does not exist")
    if target.is_dir():
        raise InvalidArgumentError(f"cannot write the head file {target}: it is a directory")
    return target


def save_heads(heads: Heads | ProjectionHeads, path: str | os.PathLike[str]) -> None:
    """Write ``heads`` to ``path`` (:func:`clipbranches._io.atomic_write`: never half-written).

    Raises
    ------
    InvalidArgumentError
        As :func:`check_heads_path` (checked before anything is serialized).
    OutputError
        The operating system refused the write (disk full, ...); any previous file is intact.
    """
    from safetensors.torch import save

    target = check_heads_path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in heads.state_dict().items()}
    metadata = {"format": _FORMAT, "version": "1", "config": json.dumps(heads.config.to_dict())}
    # Serialized here and written by Python, so that a refused write is an OSError (typed below).
    atomic_write(target, save(state, metadata=metadata), "head file")


def load_heads(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Heads | ProjectionHeads:
    """Read heads written by :func:`save_heads` (in eval mode): trained heads, or projection
    heads (``"kind": "projection"`` in the stored config)."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise CatalogFormatError(f"{path}: no head weights here")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        if metadata.get("format") != _FORMAT:
            raise CatalogFormatError(f"{path}: not a clipbranches head file")
        if metadata.get("version") != "1":
            raise CatalogFormatError(f"{path}: head file version {metadata.get('version')} is not supported")
        config = json.loads(metadata["config"])
        kind = config.get("kind", "mlp") if isinstance(config, dict) else None
        if kind not in ("mlp", ProjectionConfig.kind):
            raise CatalogFormatError(f"{path}: heads of an unknown kind {kind!r}")
        heads: Heads | ProjectionHeads = (
            ProjectionHeads(ProjectionConfig.from_dict(config))
            if kind == "projection"
            else Heads(HeadConfig.from_dict(config))
        )
        heads.load_state_dict(load_file(str(path), device=str(device)))
    except (OSError, ValueError, RuntimeError, KeyError, InvalidArgumentError, SafetensorError) as e:
        raise CatalogFormatError(f"{path}: unreadable head file ({e})") from e
    return heads.to(device).eval()
