"""Heads on disk: safetensors weights with the config in the file's metadata."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from clipbranches.embed.head.model import HeadConfig, Heads
from clipbranches.exceptions import CatalogFormatError

__all__ = ["load_heads", "save_heads"]

_FORMAT = "clipbranches-heads"


def save_heads(heads: Heads, path: str | os.PathLike[str]) -> None:
    """Write ``heads`` to ``path`` (a temporary sibling renamed into place: never half-written)."""
    from safetensors.torch import save_file

    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    state = {k: v.detach().cpu().contiguous() for k, v in heads.state_dict().items()}
    metadata = {"format": _FORMAT, "version": "1", "config": json.dumps(heads.config.to_dict())}
    try:
        save_file(state, str(tmp), metadata=metadata)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_heads(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Heads:
    """Read heads written by :func:`save_heads` (in eval mode)."""
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
        heads = Heads(HeadConfig.from_dict(json.loads(metadata["config"])))
        heads.load_state_dict(load_file(str(path), device=str(device)))
    except (OSError, ValueError, RuntimeError, KeyError, SafetensorError) as e:
        raise CatalogFormatError(f"{path}: unreadable head file ({e})") from e
    return heads.to(device).eval()
