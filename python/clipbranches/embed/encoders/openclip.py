"""open_clip towers."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from clipbranches.embed.encoders.base import Encoder, pick_device
from clipbranches.embed.encoders.files import flatten_on_white
from clipbranches.exceptions import EncoderError

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["OpenClipEncoder"]


class OpenClipEncoder(Encoder):
    """CLIP image and text towers from open_clip.

    Parameters
    ----------
    model
        An open_clip architecture name (``open_clip.list_models()``), e.g. ``"ViT-B-32"``.
    pretrained
        A pretrained tag (``"openai"``, ``"laion2b_s34b_b79k"``, ...: downloaded on first use
        where the hub is reachable), a path to a local checkpoint file, or ``None`` for random
        weights (tests and throughput only; the identity says so).
    device
        ``"cuda"``, ``"cpu"``...; default: CUDA when available.

    Raises
    ------
    EncoderError
        The weights cannot be loaded (no hub access, a wrong tag or path); the message says what
        to pass instead. There is no silent fallback to other weights.
    """

    def __init__(
        self,
        model: str = "ViT-B-32",
        pretrained: str | os.PathLike[str] | None = "openai",
        *,
        device: str | None = None,
    ) -> None:
        import open_clip
        import torch

        self.model_name = model
        self.pretrained = None if pretrained is None else os.fspath(pretrained)
        if model not in open_clip.list_models():
            raise EncoderError(f"unknown open_clip model {model!r}; see open_clip.list_models()")
        # A path (not a tag such as "openai") must name an existing file.
        looks_like_path = self.pretrained is not None and ("/" in self.pretrained or Path(self.pretrained).suffix)
        if looks_like_path and not Path(str(self.pretrained)).is_file():
            raise EncoderError(f"checkpoint {self.pretrained!r} does not exist")
        self.device = pick_device(device)
        try:
            net, _, preprocess = open_clip.create_model_and_transforms(
                model, pretrained=self.pretrained, device=self.device
            )
        except Exception as e:  # open_clip raises RuntimeError/OSError/ValueError/HF errors
            raise EncoderError(
                f"could not load open_clip weights {self.pretrained!r} for {model} ({type(e).__name__}: {e}). "
                "Without hub access pass a local checkpoint: OpenClipEncoder(model, pretrained='/path/to/"
                "open_clip_pytorch_model.bin'), or use the offline towers: OfflineEncoder()"
            ) from e
        self._net = net.eval()
        self._preprocess = preprocess
        self._tokenizer = open_clip.get_tokenizer(model)
        self._torch = torch
        self.image_dim = self.text_dim = int(net.visual.output_dim)

    @property
    def identity(self) -> dict[str, Any]:
        weights = "random" if self.pretrained is None else self.pretrained
        return {"kind": "open_clip", "model": self.model_name, "weights": weights, "dim": self.image_dim}

    def encode_images(self, images: Sequence[Image.Image]) -> NDArray[np.float32]:
        torch = self._torch
        if not images:
            return np.zeros((0, self.image_dim), np.float32)
        batch = torch.stack([self._preprocess(flatten_on_white(im)) for im in images]).to(self.device)
        with torch.inference_mode(), torch.autocast(self.device.split(":")[0], enabled=self.device.startswith("cuda")):
            features = self._net.encode_image(batch)
        return features.float().cpu().numpy()

    def encode_texts(self, texts: Sequence[str]) -> NDArray[np.float32]:
        torch = self._torch
        if not texts:
            return np.zeros((0, self.text_dim), np.float32)
        tokens = self._tokenizer(list(texts)).to(self.device)
        with torch.inference_mode(), torch.autocast(self.device.split(":")[0], enabled=self.device.startswith("cuda")):
            features = self._net.encode_text(tokens)
        return features.float().cpu().numpy()
