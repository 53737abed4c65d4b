"""The heads a catalog gets when nobody trained any: text search on an uncaptioned folder.

- open_clip (CLIP's towers share a space already): a PCA-32 projection of that space, fitted on
  the text tower's embeddings of the 1,000 ImageNet class prompts ("a photo of a {class}"),
  each side centred on its own mean.
- the offline towers (EfficientNet-Lite0 + WordLlama, two unrelated spaces): ConSE joins the
  image tower to WordLlama's space through its own ImageNet classifier, then the same PCA-32 of
  the class prompts. No file ships and nothing is trained: the heads follow from the towers.

Why the prompts and not the catalog's images: on Table 1's uncaptioned rows
(``benchmarks/table1.py --uncaptioned``) the two fits score within noise of each other, and a fit
on the prompts needs no pass over the images before ingest starts, gives every catalog of an
encoder the same heads, and cannot be skewed by a folder of near-identical photos.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clipbranches.embed.encoders.imagenet import PROMPT, imagenet_classes, lite0_classifier
from clipbranches.embed.head.projection import ProjectionHeads, fit_projection_heads
from clipbranches.exceptions import InvalidArgumentError

if TYPE_CHECKING:
    from clipbranches.embed.encoders import Encoder

__all__ = ["default_heads"]


def default_heads(encoder: Encoder) -> ProjectionHeads:
    """Heads for ``encoder`` that need no captions (see the module docstring).

    Raises
    ------
    InvalidArgumentError
        An encoder of another kind: train heads for it with ``train-head``.
    """
    kind = encoder.identity.get("kind")
    if kind == "open_clip":
        prompts = encoder.encode_texts([PROMPT.format(c) for c in imagenet_classes("open_clip")])
        return fit_projection_heads(prompts, image_dim=encoder.image_dim)
    if kind == "offline":
        prompts = encoder.encode_texts([PROMPT.format(c) for c in imagenet_classes()])
        return fit_projection_heads(prompts, classifier=lite0_classifier())
    raise InvalidArgumentError(
        f"no default heads for the {kind!r} encoder: train heads on captioned images with "
        "`clipbranches train-head` and pass them (--head)"
    )
