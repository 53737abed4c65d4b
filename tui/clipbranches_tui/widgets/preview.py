"""Image previews through textual-image: Kitty graphics protocol, Sixel, half blocks or
Unicode, picked automatically or forced by the ``renderer`` setting.

textual-image detects what the terminal supports when ``textual_image.renderable`` is first
imported, which must happen before Textual takes over the terminal; importing this module
(which :mod:`clipbranches_tui` does at import time) does it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual.widget import Widget
from textual.widgets import Static
from textual_image.widget import HalfcellImage, SixelImage, TGPImage, UnicodeImage
from textual_image.widget import Image as AutoImage

__all__ = ["make_preview", "set_preview"]

_IMAGES: dict[str, Callable[..., Widget]] = {
    "auto": AutoImage,
    "kitty": TGPImage,
    "sixel": SixelImage,
    "halfcell": HalfcellImage,
    "unicode": UnicodeImage,
}


def make_preview(thumbnail: Path | None, renderer: str) -> Widget:
    """The preview of one card: the thumbnail drawn by ``renderer`` (a canonical name of
    :data:`clipbranches_tui.state.RENDERERS`), or a text stand-in when there is no thumbnail
    or previews are off (``none``)."""
    if thumbnail is None or renderer == "none":
        return Static("no preview" if thumbnail is None else "", classes="preview -empty")
    return _IMAGES[renderer](thumbnail, classes="preview")


def set_preview(preview: Widget, thumbnail: Path | None, renderer: str) -> bool:
    """Show ``thumbnail`` in an existing ``preview``; False when that preview cannot (an image
    preview with no thumbnail to draw, or a text stand-in for a thumbnail to draw): make a new
    one then."""
    if isinstance(preview, Static):
        if thumbnail is not None and renderer != "none":
            return False
        preview.update("no preview" if thumbnail is None else "")
        return True
    if thumbnail is None:
        return False
    preview.image = thumbnail  # type: ignore[attr-defined]
    return True
