"""The heads a catalog gets when nobody trained any: text search on an uncaptioned folder.

- open_clip (CLIP's towers share a space already): PCA-32 of that space, fitted on the catalog's
  image embeddings; images centred on their mean, texts on the mean of the 1,000 ImageNet class
  prompts ("a photo of a {class}"): CLIP puts images and texts in two separate cones (the
  modality gap), and one mean for both would add the same offset to every query.
- the offline towers (EfficientNet-Lite0 + WordLlama, two unrelated spaces): ConSE joins the
  image tower to WordLlama's space through its own ImageNet classifier (an image becomes the
  probability-weighted mean of its 10 most likely classes' prompt embeddings), then PCA-32
  fitted on the catalog's joined images, both sides centred on the images' mean (no gap: the
  images are mixtures of the prompts themselves). No file ships and nothing is trained.

Chosen on OpenClipArt, reported on Fashion-MNIST (``benchmarks/table1.py --uncaptioned``; zero-
shot accuracy / class P@10 / caption R@10 through the uint8 codes): fitted on the catalog with
one mean 0.086 / 0.150 / 0.017 against 0.080 / 0.120 / 0.019 with two means and 0.050 / 0.160 /
0.011 fitted on the prompts alone; on Fashion-MNIST 0.178 / 0.270, 0.181 / 0.260 and 0.164 /
0.220. A catalog of fewer than :data:`MIN_FIT_IMAGES` images is fitted on the prompts (a PCA to
32 dims needs many more rows than 32 to be more than noise).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from clipbranches.embed.encoders.imagenet import PROMPT, imagenet_classes, lite0_classifier
from clipbranches.embed.head.projection import ProjectionHeads, fit_projection_heads
from clipbranches.exceptions import InvalidArgumentError

if TYPE_CHECKING:
    from clipbranches.embed.encoders import Encoder

__all__ = ["MAX_FIT_IMAGES", "MIN_FIT_IMAGES", "check_default_heads", "default_heads", "describe"]

#: Below this many images the projection is fitted on the class prompts instead.
MIN_FIT_IMAGES = 1000
#: At most this many images (an evenly spaced sample) go into the fit: enough for a 256-d or
#: 512-d covariance, and a bounded cost for catalogs of any size.
MAX_FIT_IMAGES = 100_000


def check_default_heads(encoder: Encoder) -> str:
    """The encoder's kind if it has default heads (call it before any encoding).

    Raises
    ------
    InvalidArgumentError
        An encoder of another kind: train heads for it with ``train-head``.
    """
    kind = encoder.identity.get("kind")
    if kind not in ("open_clip", "offline"):
        raise InvalidArgumentError(
            f"no default heads for the {kind!r} encoder: train heads on captioned images with "
            "`clipbranches train-head` and pass them (--head)"
        )
    return str(kind)


def default_heads(encoder: Encoder, images: NDArray[np.floating] | None = None) -> ProjectionHeads:
    """Heads for ``encoder`` that need no captions (see the module docstring), fitted on the
    image tower's features of the catalog's ``images`` (None, or fewer than
    :data:`MIN_FIT_IMAGES`: on the class prompts alone)."""
    kind = check_default_heads(encoder)
    if images is not None and len(images) < MIN_FIT_IMAGES:
        images = None
    if images is not None and len(images) > MAX_FIT_IMAGES:
        images = images[np.linspace(0, len(images) - 1, MAX_FIT_IMAGES).astype(np.int64)]
    if kind == "open_clip":
        prompts = encoder.encode_texts([PROMPT.format(c) for c in imagenet_classes("open_clip")])
        return fit_projection_heads(prompts, images, image_dim=encoder.image_dim)
    prompts = encoder.encode_texts([PROMPT.format(c) for c in imagenet_classes()])
    return fit_projection_heads(prompts, images, classifier=lite0_classifier(), one_mean=True)


def describe(heads: ProjectionHeads, images: int | None) -> str:
    """Default heads in words, for a summary: how they join the towers and what they were fitted
    on (``images``: how many catalog images were offered to :func:`default_heads`)."""
    how = "ConSE + PCA-32" if heads.config.join == "conse" else "PCA-32 of the shared space"
    if images is not None and images >= MIN_FIT_IMAGES:
        on = f"fitted on the catalog's {min(images, MAX_FIT_IMAGES):,} images"
    else:
        on = f"fitted on the class prompts: fewer than {MIN_FIT_IMAGES:,} images"
    return f"default, no captions needed ({how}, {on})"
