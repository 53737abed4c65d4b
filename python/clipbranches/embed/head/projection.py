"""Heads without training: a fixed linear projection to the 32-d space, for towers that already
share a space (open_clip: CLIP's two towers), or that are joined to one without captions (the
offline towers through ConSE: an image becomes the probability-weighted mean of the text
embeddings of its image classifier's most likely ImageNet classes, Norouzi et al. 2014).

The projection is PCA to ``out_dim`` fitted on unit vectors of the shared space (the catalog's
images, or the ImageNet class prompts: see ``fit_projection_heads``). Each side is centred on its
own mean before projecting: CLIP-like spaces put images and texts in two separate cones (the
"modality gap"), and centring both on one mean would add the same offset to every query.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from numpy.typing import NDArray
from torch import nn

from clipbranches.exceptions import DimensionMismatchError, InvalidArgumentError

__all__ = ["JOINS", "ProjectionConfig", "ProjectionHeads", "fit_projection_heads", "pca_components"]

#: How the image tower's features reach the shared space: they are in it already ("shared"), or
#: through the image classifier's class prompts ("conse").
JOINS = ("shared", "conse")


@dataclass(frozen=True)
class ProjectionConfig:
    """Shape of projection heads (``kind`` "projection" in a head file; trained heads are "mlp").

    ``top``: how many of the most likely classes ConSE mixes (its paper's T; 10 here)."""

    image_dim: int
    text_dim: int
    out_dim: int = 32
    join: Literal["shared", "conse"] = "shared"
    classes: int = 0
    top: int = 10
    kind: ClassVar[str] = "projection"

    def __post_init__(self) -> None:
        if any(not isinstance(d, int) or d < 1 for d in (self.image_dim, self.text_dim, self.out_dim, self.top)):
            raise InvalidArgumentError(f"every projection dim must be a positive integer, got {self}")
        if self.join not in JOINS:
            raise InvalidArgumentError(f"join must be one of {JOINS}, got {self.join!r}")
        if self.join == "shared" and self.image_dim != self.text_dim:
            raise DimensionMismatchError(
                f"towers that share a space give features of one dim, got image {self.image_dim}, text {self.text_dim}"
            )
        if self.join == "conse" and self.classes < self.top:
            raise InvalidArgumentError(f"ConSE needs at least top={self.top} classes, got {self.classes}")
        if self.out_dim > self.text_dim:
            raise InvalidArgumentError(f"cannot project {self.text_dim}-d features to {self.out_dim} dims")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored next to the weights)."""
        return {
            "kind": self.kind,
            "image_dim": self.image_dim,
            "text_dim": self.text_dim,
            "out_dim": self.out_dim,
            "join": self.join,
            "classes": self.classes,
            "top": self.top,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProjectionConfig:
        """Inverse of :meth:`to_dict`."""
        try:
            return cls(
                int(d["image_dim"]), int(d["text_dim"]), int(d["out_dim"]), d["join"], int(d["classes"]), int(d["top"])
            )
        except (KeyError, TypeError, ValueError) as e:
            raise InvalidArgumentError(f"not a projection config: {d!r} ({e})") from e


class ProjectionHeads(nn.Module):
    """Image and text sides of a fixed projection; outputs are unit norm. Everything it holds is
    a buffer (saved with the heads, never trained)."""

    components: torch.Tensor
    image_mean: torch.Tensor
    text_mean: torch.Tensor
    class_weight: torch.Tensor
    class_bias: torch.Tensor
    class_texts: torch.Tensor

    def __init__(self, config: ProjectionConfig) -> None:
        super().__init__()
        self.config = config
        space = config.text_dim
        self.register_buffer("components", torch.zeros(space, config.out_dim))
        self.register_buffer("image_mean", torch.zeros(space))
        self.register_buffer("text_mean", torch.zeros(space))
        if config.join == "conse":
            self.register_buffer("class_weight", torch.zeros(config.classes, config.image_dim))
            self.register_buffer("class_bias", torch.zeros(config.classes))
            self.register_buffer("class_texts", torch.zeros(config.classes, config.text_dim))

    def to_space(self, features: torch.Tensor) -> torch.Tensor:
        """Image tower features to unit vectors of the shared (text) space, before projecting."""
        if self.config.join == "conse":
            probabilities = torch.softmax(features.float() @ self.class_weight.T + self.class_bias, dim=-1)
            weights, best = probabilities.topk(self.config.top, dim=-1)
            features = torch.einsum("nt,ntd->nd", weights, self.class_texts[best])
        return F.normalize(features.float(), dim=-1)

    def encode_image(self, features: torch.Tensor) -> torch.Tensor:
        """Image tower features ``(n, image_dim)`` to unit vectors ``(n, out_dim)``."""
        return F.normalize((self.to_space(features) - self.image_mean) @ self.components, dim=-1)

    def encode_text(self, features: torch.Tensor) -> torch.Tensor:
        """Text tower features ``(n, text_dim)`` to unit vectors ``(n, out_dim)``."""
        unit = F.normalize(features.float(), dim=-1)
        return F.normalize((unit - self.text_mean) @ self.components, dim=-1)


def pca_components(unit: NDArray[np.floating], out_dim: int) -> NDArray[np.float32]:
    """The top ``out_dim`` principal directions of the rows ``(dim, out_dim)``, signs fixed (the
    largest loading of each is positive) so that a fit is reproducible."""
    x = np.asarray(unit, np.float64)
    centred = x - x.mean(axis=0)
    eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred)
    top = np.argsort(eigenvalues)[::-1][:out_dim]
    components = eigenvectors[:, top]
    components *= np.sign(components[np.abs(components).argmax(axis=0), np.arange(len(top))])
    return components.astype(np.float32)


def fit_projection_heads(
    prompts: NDArray[np.floating],
    images: NDArray[np.floating] | None = None,
    *,
    image_dim: int | None = None,
    out_dim: int = 32,
    classifier: tuple[NDArray[np.floating], NDArray[np.floating]] | None = None,
    top: int = 10,
    one_mean: bool = False,
) -> ProjectionHeads:
    """Projection heads fitted without captions.

    ``prompts``: text features of the class prompts ("a photo of a {class}", ``(classes,
    text_dim)``); with ``classifier`` (the image tower's ``(weight (classes, image_dim), bias)``)
    they are also ConSE's class texts, in the classifier's order. ``images``: image tower
    features of the catalog, or None to fit on the prompts alone (no data needed: the same
    heads for every catalog). The PCA is fitted on the images' unit vectors in the shared
    space when given, else on the prompts'; each side is centred on its own mean (images: the
    catalog's, or the prompts' when no images are given), or with ``one_mean`` both on the
    images' (right for ConSE, whose images are mixtures of the prompts: there is no gap to
    correct, and the catalog's mean is where its queries should be measured from).
    """
    texts = np.asarray(prompts, np.float32)
    if texts.ndim != 2 or len(texts) < 2:
        raise DimensionMismatchError(f"prompts must be a (classes, dim) array of at least 2 rows, got {texts.shape}")
    if classifier is None:
        config = ProjectionConfig(image_dim or texts.shape[1], texts.shape[1], out_dim)
    else:
        weight, bias = (np.asarray(a, np.float32) for a in classifier)
        if weight.shape[0] != len(texts) or bias.shape != (len(texts),):
            raise DimensionMismatchError(f"{len(texts)} prompts but a classifier of {weight.shape} / {bias.shape}")
        config = ProjectionConfig(weight.shape[1], texts.shape[1], out_dim, "conse", len(texts), top)
    heads = ProjectionHeads(config)
    text_unit = texts / np.linalg.norm(texts, axis=1, keepdims=True)
    if classifier is not None:
        heads.class_weight.copy_(torch.from_numpy(weight))
        heads.class_bias.copy_(torch.from_numpy(bias))
        heads.class_texts.copy_(torch.from_numpy(text_unit))
    fitted = text_unit
    if images is not None:
        with torch.no_grad():
            fitted = heads.to_space(torch.from_numpy(np.asarray(images, np.float32))).numpy()
    heads.components.copy_(torch.from_numpy(pca_components(fitted, out_dim)))
    heads.image_mean.copy_(torch.from_numpy(fitted.mean(axis=0).astype(np.float32)))
    heads.text_mean.copy_(torch.from_numpy((fitted if one_mean else text_unit).mean(axis=0).astype(np.float32)))
    return heads.eval()
