"""open_clip towers."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Sequence
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

#: Seconds to wait for the hub's (or its proxy's) address and a connection to it: past this the
#: weights are looked up in the local cache alone (the hub client would otherwise retry for
#: about a minute before giving up).
HUB_PROBE_SECONDS = 3.0


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
        # A tag is fetched from the hub: where it cannot be reached, only the local cache is used.
        offline = self.pretrained is not None and not looks_like_path and not _hub_reachable()
        try:
            with _hub_offline() if offline else contextlib.nullcontext(), _quiet_load_errors():
                net, _, preprocess = open_clip.create_model_and_transforms(
                    model, pretrained=self.pretrained, device=self.device
                )
        except Exception as e:  # open_clip raises RuntimeError/OSError/ValueError/HF errors
            why = (
                "the hub cannot be reached and they are not in the local cache"
                if offline
                else f"{type(e).__name__}: {e}"
            )
            raise EncoderError(
                f"could not load open_clip weights {self.pretrained!r} for {model} ({why}). "
                f"Without hub access pass a local checkpoint: --encoder open_clip:{model}:/path/to/"
                f"open_clip_pytorch_model.bin on the command line (OpenClipEncoder({model!r}, "
                "pretrained='/path/to/open_clip_pytorch_model.bin') in Python), or use the offline towers: "
                "--encoder offline (OfflineEncoder())"
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


def _hub_reachable(seconds: float = HUB_PROBE_SECONDS) -> bool:
    """Whether a connection to the Hugging Face hub (or the proxy for it) opens within
    ``seconds``, name lookup included; True when the hub client is missing or told to stay
    offline already (then open_clip's own behaviour stands)."""
    import socket
    import threading
    import urllib.parse
    import urllib.request

    try:
        from huggingface_hub import constants
    except ImportError:
        return True
    if constants.HF_HUB_OFFLINE:
        return True
    endpoint = urllib.parse.urlsplit(constants.ENDPOINT)
    host = endpoint.hostname or ""
    proxy = urllib.request.getproxies().get(endpoint.scheme or "https")
    where = endpoint
    if proxy and not urllib.request.proxy_bypass(host):
        where = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    try:
        address = (where.hostname or "", where.port or (443 if where.scheme == "https" else 80))
    except ValueError:  # a malformed port: let the hub client say what is wrong
        return True
    opened: list[bool] = []

    def probe() -> None:  # in a thread: a name lookup is not bound by the socket timeout
        with contextlib.suppress(OSError), socket.create_connection(address, timeout=seconds):
            opened.append(True)

    thread = threading.Thread(target=probe, name="clipbranches-hub-probe", daemon=True)
    thread.start()
    thread.join(seconds)
    return bool(opened)


@contextlib.contextmanager
def _hub_offline() -> Iterator[None]:
    """The hub client in offline mode (the local cache only) for the duration."""
    from huggingface_hub import constants

    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before


class _OpenClipErrors:
    """A root-logger filter that drops open_clip's error records (its own copy of the failure
    that the EncoderError raised next reports: the CLI prints one line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno >= logging.ERROR and f"{os.sep}open_clip{os.sep}" in record.pathname)


@contextlib.contextmanager
def _quiet_load_errors() -> Iterator[None]:
    """open_clip logs a failed weights download on the root logger before raising; leave that
    to the error raised from it."""
    quiet = _OpenClipErrors()
    root = logging.getLogger()
    root.addFilter(quiet)
    try:
        yield
    finally:
        root.removeFilter(quiet)
