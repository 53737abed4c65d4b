"""The two heads and their configuration."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from clipbranches.exceptions import InvalidArgumentError

__all__ = ["HeadConfig", "Heads"]


@dataclass(frozen=True)
class HeadConfig:
    """Shape of the heads.

    Attributes
    ----------
    image_dim, text_dim
        Output dims of the image and text towers.
    out_dim
        The shared space (32 in the paper: one byte per dim after quantization).
    hidden
        Hidden layer widths of each MLP (the original used one of 8192; on Table 1 a width of
        1024 matched it, R@1 0.960 both, at a sixth of the time per epoch).
    """

    image_dim: int
    text_dim: int
    out_dim: int = 32
    hidden: tuple[int, ...] = field(default=(1024,))

    def __post_init__(self) -> None:
        dims = (self.image_dim, self.text_dim, self.out_dim, *self.hidden)
        if any(not isinstance(d, int) or d < 1 for d in dims):
            raise InvalidArgumentError(f"every head dim must be a positive integer, got {self}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored next to the weights)."""
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HeadConfig:
        """Inverse of :meth:`to_dict`."""
        try:
            return cls(int(d["image_dim"]), int(d["text_dim"]), int(d["out_dim"]), tuple(int(h) for h in d["hidden"]))
        except (KeyError, TypeError, ValueError) as e:
            raise InvalidArgumentError(f"not a head config: {d!r} ({e})") from e


def _mlp(in_dim: int, hidden: tuple[int, ...], out_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = in_dim
    for h in hidden:
        layers += [nn.Linear(width, h), nn.BatchNorm1d(h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class Heads(nn.Module):
    """Image and text heads; outputs are unit norm. ``logit_scale`` is the learnable log inverse
    temperature of the CLIP loss (initialised to log(1/0.07) as in CLIP)."""

    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.config = config
        self.image = _mlp(config.image_dim, config.hidden, config.out_dim)
        self.text = _mlp(config.text_dim, config.hidden, config.out_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_image(self, features: torch.Tensor) -> torch.Tensor:
        """Image tower features ``(n, image_dim)`` to unit vectors ``(n, out_dim)``."""
        return F.normalize(self.image(features), dim=-1)

    def encode_text(self, features: torch.Tensor) -> torch.Tensor:
        """Text tower features ``(n, text_dim)`` to unit vectors ``(n, out_dim)``."""
        return F.normalize(self.text(features), dim=-1)
