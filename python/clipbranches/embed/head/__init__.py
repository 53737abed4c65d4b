"""The 32-d heads that map frozen tower features into one shared, quantizable space.

Two MLPs (image, text) from the towers' dims to ``out_dim`` (32), batch norm + ReLU between
layers, unit-norm outputs, trained on cached tower features with the symmetric CLIP loss over a
learnable temperature plus ``lambda x`` KoLeo. torch loads when this package is imported, never
with ``import clipbranches``.
"""

from clipbranches._optional import require

# torch and safetensors come with either tower extra; without them the heads are a typed error.
require("the 32-d heads (text and image queries, ingest, train-head)", "offline", ("torch", "safetensors"))

from clipbranches.embed.head.loss import clip_loss, koleo_loss  # noqa: E402
from clipbranches.embed.head.model import HeadConfig, Heads  # noqa: E402
from clipbranches.embed.head.projection import ProjectionConfig, ProjectionHeads, fit_projection_heads  # noqa: E402
from clipbranches.embed.head.store import load_heads, save_heads  # noqa: E402
from clipbranches.embed.head.train import TrainConfig, TrainResult, train_heads  # noqa: E402

#: Either kind of heads: trained (:class:`Heads`) or a fixed projection (:class:`ProjectionHeads`).
AnyHeads = Heads | ProjectionHeads

__all__ = [
    "AnyHeads",
    "HeadConfig",
    "Heads",
    "ProjectionConfig",
    "ProjectionHeads",
    "fit_projection_heads",
    "TrainConfig",
    "TrainResult",
    "clip_loss",
    "koleo_loss",
    "load_heads",
    "save_heads",
    "train_heads",
]
