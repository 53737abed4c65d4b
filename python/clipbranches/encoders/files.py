"""Streaming, batched image encoding from files.

Images are decoded in a worker pool (PIL releases the interpreter while decoding) a few batches
ahead of the encoder; a file that is missing or cannot be decoded is skipped and recorded in a
:class:`DecodeReport`, never raised.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from clipbranches.encoders.base import Encoder

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["DecodeReport", "encode_files", "open_image"]


@dataclass
class DecodeReport:
    """Files that were skipped, as ``(position in the input, path, reason)``."""

    failures: list[tuple[int, str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.failures)


#: Seconds to wait for an image URL.
URL_TIMEOUT = 30.0


def open_image(path: str | os.PathLike[str]) -> Image.Image | str:
    """The decoded RGB image of a file path or an http(s) URL, or the reason it cannot be read."""
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
            return im.convert("RGB")
    except urllib.error.URLError as e:
        return f"cannot fetch: {e}"
    except FileNotFoundError:
        return "file not found"
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        return f"cannot decode: {e}"


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
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(paths), unit="img", desc="encoding")
    with ThreadPoolExecutor(max_workers=workers or min(8, (os.cpu_count() or 2))) as pool:
        decoded = pool.map(open_image, paths)  # lazily ordered, runs ahead of the consumer
        positions: list[int] = []
        images: list[Image.Image] = []
        for i, result in enumerate(decoded):
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
                    bar.update(len(images))
                positions, images = [], []
    if bar is not None:
        bar.close()
