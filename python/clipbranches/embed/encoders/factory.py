"""The one encoder factory: from a command-line spec or from a catalog's recorded identity."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from clipbranches._optional import require
from clipbranches.embed.encoders.base import Encoder
from clipbranches.exceptions import EncoderError, InvalidArgumentError

__all__ = ["SPEC_HELP", "make_encoder"]

#: What a spec looks like (for help texts and errors).
SPEC_HELP = "offline | open_clip:MODEL[:PRETRAINED|random]"


def make_encoder(spec: str | Mapping[str, Any], *, device: str | None = None) -> Encoder:
    """The encoder a spec or an identity names.

    ``spec`` is either a string, ``offline`` or ``open_clip:MODEL[:PRETRAINED]`` (PRETRAINED: a
    tag, a checkpoint path, or ``random``; default ``openai``), or an encoder identity as a
    catalog's manifest records it (``{"kind": "offline"}``, ``{"kind": "open_clip", "model": ...,
    "weights": ...}``): the encoder that made the catalog, so queries land in its space.

    Raises
    ------
    InvalidArgumentError
        A spec string of another form.
    EncoderError
        An identity this version does not know (or weights that cannot be loaded).
    """
    if isinstance(spec, str):
        prefix, _, rest = spec.partition(":")
        if spec == "offline":
            identity: dict[str, Any] = {"kind": "offline"}
        elif prefix == "open_clip" and rest:
            model, _, pretrained = rest.partition(":")
            identity = {"kind": "open_clip", "model": model, "weights": pretrained or "openai"}
        else:
            raise InvalidArgumentError(f"unknown encoder {spec!r}: use {SPEC_HELP}")
    elif isinstance(spec, Mapping):
        identity = dict(spec)
    else:
        raise InvalidArgumentError(f"an encoder spec is a string or an identity mapping, not {type(spec).__name__}")
    kind = identity.get("kind")
    if kind == "offline":
        require("the offline towers", "offline")
        from clipbranches.embed.encoders.offline import OfflineEncoder

        return OfflineEncoder(device=device)
    if kind == "open_clip":
        require("the open_clip towers", "openclip")
        from clipbranches.embed.encoders.openclip import OpenClipEncoder

        weights = identity.get("weights")
        return OpenClipEncoder(
            str(identity.get("model")), pretrained=None if weights == "random" else weights, device=device
        )
    raise EncoderError(f"the catalog names an encoder this version does not know: {identity}")
