"""Streaming, batched image encoding from files.

Images are decoded in a worker pool (PIL releases the interpreter while decoding) a few batches
ahead of the encoder; a file that is missing or cannot be decoded is skipped and recorded in a
:class:`DecodeReport`, never raised.
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from clipbranches.embed.encoders.base import Encoder

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["DecodeReport", "encode_files", "flatten_on_white", "open_image"]


@dataclass
class DecodeReport:
    """Files that were skipped, as ``(position in the input, path, reason)``."""

    failures: list[tuple[int, str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.failures)


#: Seconds to wait for an image URL.
URL_TIMEOUT = 30.0
#: Decoded images are shrunk (aspect kept) until their short side is at most this: every tower
#: resizes to 224 and thumbnails are 160 px, and a poster-sized PNG would otherwise hold
#: hundreds of MB while it waits for the encoder.
MAX_SHORT_SIDE = 448
#: Batches decoded ahead of the encoder (bounds memory: decoding is usually faster).
BATCHES_AHEAD = 3


def _quiet_large_images() -> None:
    """Pillow warns about every image over ~89 Mpixel (OpenClipArt has 168-Mpixel posters),
    which floods progress output; such images are shrunk right after decoding, and Pillow still
    refuses real decompression bombs (over twice the limit) with an error we report."""
    import warnings

    from PIL import Image

    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def open_image(path: str | os.PathLike[str], *, max_short_side: int | None = MAX_SHORT_SIDE) -> Image.Image | str:
    """The decoded RGB image of a file path or an http(s) URL (transparency on white, shrunk to
    ``max_short_side`` unless None), or the reason it cannot be read."""
    import io
    import urllib.error
    import urllib.request

    from PIL import Image, UnidentifiedImageError

    try:
        source: str | os.PathLike[str] | io.BytesIO = path
        if isinstance(path, str) and path.startswith(("http://", "https://")):
            with urllib.request.urlopen(path, timeout=URL_TIMEOUT) as response:  # noqa: S310 (scheme checked)
                source = io.BytesIO(response.read())
        with Image.open(source) as im:
            im.load()
            rgb = flatten_on_white(im)
        if max_short_side is not None and min(rgb.size) > max_short_side:
            scale = max_short_side / min(rgb.size)
            size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
            rgb = rgb.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        return rgb
    except urllib.error.URLError as e:
        return f"cannot fetch: {e}"
    except FileNotFoundError:
        return "file not found"
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        return f"cannot decode: {e}"


def flatten_on_white(image: Image.Image) -> Image.Image:
    """RGB of ``image`` with any transparency composited onto white.

    A plain ``convert("RGB")`` keeps whatever colour the transparent pixels happen to hold
    (often black), which turns clip art and icons into dark blobs for the towers.
    """
    from PIL import Image

    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def encode_files(
    encoder: Encoder,
    paths: Sequence[str | os.PathLike[str]],
    *,
    batch_size: int = 64,
    workers: int | None = None,
    report: DecodeReport | None = None,
    progress: bool = False,
    on_images: Callable[[NDArray[np.int64], list[Image.Image]], None] | None = None,
) -> Iterator[tuple[NDArray[np.int64], NDArray[np.float32]]]:
    """Yield ``(positions, features)`` per batch: the input positions that decoded and their
    image features. Skipped files go into ``report``; ``on_images`` sees each batch's decoded
    images (e.g. to write thumbnails without decoding the files again)."""
    report = report if report is not None else DecodeReport()
    _quiet_large_images()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(paths), unit="img", desc="encoding")
    with ThreadPoolExecutor(max_workers=workers or min(8, (os.cpu_count() or 2))) as pool:
        # In order, at most BATCHES_AHEAD batches ahead of the encoder (pool.map would decode
        # everything at once and hold it all in memory when the encoder is the slower side).
        pending: deque[Future[Image.Image | str]] = deque()
        upcoming = iter(paths)
        for path in itertools.islice(upcoming, BATCHES_AHEAD * batch_size):
            pending.append(pool.submit(open_image, path))
        positions: list[int] = []
        images: list[Image.Image] = []
        for i in range(len(paths)):
            result = pending.popleft().result()
            for path in itertools.islice(upcoming, 1):
                pending.append(pool.submit(open_image, path))
            if isinstance(result, str):
                report.failures.append((i, os.fspath(paths[i]), result))
            else:
                positions.append(i)
                images.append(result)
            if len(images) == batch_size or (i == len(paths) - 1 and images):
                batch = np.array(positions, np.int64)
                if on_images is not None:
                    on_images(batch, images)
                yield batch, encoder.encode_images(images)
                if bar is not None:
                    bar.update(i + 1 - bar.n)  # skipped files count as done too
                positions, images = [], []
    if bar is not None:
        bar.close()
