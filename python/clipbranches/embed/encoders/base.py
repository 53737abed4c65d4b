"""The encoder interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from clipbranches.exceptions import EncoderError

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["Encoder", "pick_device"]


def pick_device(device: str | None) -> str:
    """``device`` or, when None, CUDA if torch sees a GPU, else CPU.

    Raises :class:`EncoderError` for a device torch does not know, or a CUDA device that this
    machine does not have (rather than a RuntimeError deep inside the model's loading).
    """
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as e:
        raise EncoderError(f"unknown device {device!r} (e.g. cpu, cuda, cuda:1, mps): {e}") from None
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise EncoderError(
                f"device {device!r} asked for, but CUDA is not available on this machine "
                "(no GPU, or torch built without CUDA); use --device cpu or leave the device unset"
            )
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise EncoderError(f"device {device!r} asked for, but this machine has {torch.cuda.device_count()} GPU(s)")
    return device


class Encoder(ABC):
    """Frozen image and text towers.

    ``identity`` is stored in a catalog's manifest: a query must be encoded by an encoder with
    the same identity as the catalog's (the engine checks it).
    """

    image_dim: int
    text_dim: int

    @property
    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """A JSON-ready description that tells two encoders' spaces apart."""

    @abstractmethod
    def encode_images(self, images: Sequence[Image.Image]) -> NDArray[np.float32]:
        """Tower features of RGB images, float32 ``(n, image_dim)``."""

    @abstractmethod
    def encode_texts(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """Tower features of texts, float32 ``(n, text_dim)``."""
