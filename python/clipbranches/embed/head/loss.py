"""The head's training losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812

__all__ = ["clip_loss", "koleo_loss"]


def clip_loss(image: torch.Tensor, text: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over a batch of matching pairs (row i of ``image`` goes with row i of
    ``text``), both unit norm, logits scaled by ``exp(logit_scale)``."""
    logits = logit_scale.exp() * image @ text.T
    target = torch.arange(len(image), device=image.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def koleo_loss(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """KoLeo (Sablayrolles et al., 2019): the mean over the batch of minus the log of each
    vector's distance to its nearest other vector. Low when points spread out, large when they
    collapse."""
    if len(x) < 2:
        return x.new_zeros(())
    distances = torch.cdist(x.float(), x.float())
    distances = distances + torch.eye(len(x), device=x.device) * torch.finfo(distances.dtype).max
    nearest = distances.min(dim=1).values
    return -torch.log(nearest + eps).mean()
