"""The encoder interface."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["Encoder", "pick_device"]


def pick_device(device: str | None) -> str:
    """``device`` or, when None, CUDA if torch sees a GPU, else CPU."""
    if device is not None:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


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
