"""CPU speed of the offline image tower (EfficientNet-Lite0, 1280-d) per backend, and how far
each backend's features are from torch fp32's.

For each option, over the same N OpenClipArt PNGs: model-only images/s (the tower on
preprocessed 224x224 pixels, batches of 64), end-to-end images/s (``encode_files``: decode pool,
shrink, digest, resize and the tower), the speed-up over the torch fp32 baseline measured in the
same run, and the feature differences from that baseline: max abs difference, max relative
difference (per image: the largest abs difference over the largest abs feature), and the lowest
cosine (shown as 1 - cosine). The ``OfflineEncoder()`` row is the encoder as ingest builds it
(its default backend and start-up self-check), end to end only. The "decode only" row is
``encode_files`` with a tower that does nothing: the ceiling of the end-to-end rate.

    python benchmarks/encode_speed.py [--n 256] [--jit]
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from clipbranches.datasets import openclipart_items
from clipbranches.embed.encoders import Encoder, OfflineEncoder, encode_files
from clipbranches.embed.encoders import lite0_backends as backends
from clipbranches.embed.encoders.offline import image_pixels
from harness import machine_line

if TYPE_CHECKING:
    from PIL import Image

BATCH = 64


class RunnerEncoder(Encoder):
    """The offline image tower's preprocessing in front of any runner (``None``: no tower)."""

    image_dim = 1280
    text_dim = 256

    def __init__(self, runner: backends.Runner | None) -> None:
        self.runner = runner

    @property
    def identity(self) -> dict[str, Any]:
        return {"kind": "benchmark"}

    def encode_images(self, images: Sequence[Image.Image]) -> NDArray[np.float32]:
        pixels = image_pixels(images)
        if self.runner is None:
            return np.zeros((len(images), self.image_dim), np.float32)
        return self.runner(pixels)

    def encode_texts(self, texts: Sequence[str]) -> NDArray[np.float32]:
        raise NotImplementedError


def jit_runner(net: Any) -> backends.Runner:
    """torch.jit.trace + freeze + optimize_for_inference (oneDNN fusions), fp32."""
    import torch

    module = backends.features_module(net)
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated
        frozen = torch.jit.optimize_for_inference(
            torch.jit.freeze(torch.jit.trace(module, torch.zeros((1, 224, 224, 3))))  # type: ignore[no-untyped-call]
        )

    def run(pixels: NDArray[np.float32]) -> NDArray[np.float32]:
        with torch.inference_mode():
            return frozen(torch.from_numpy(pixels)).numpy()

    return run


def model_rate(runner: backends.Runner, pixels: NDArray[np.float32]) -> tuple[float, NDArray[np.float32]]:
    runner(pixels[:BATCH])  # warm-up (lazy initialisation, allocations)
    start = time.perf_counter()
    out = np.concatenate([runner(pixels[i : i + BATCH]) for i in range(0, len(pixels), BATCH)])
    return len(pixels) / (time.perf_counter() - start), out


def end_to_end(encoder: Encoder, paths: Sequence[str]) -> tuple[float, NDArray[np.float32]]:
    encoder.encode_images(image_list(paths[:1]))  # warm-up, as a long-lived encoder would be
    start = time.perf_counter()
    batches = list(encode_files(encoder, paths, batch_size=BATCH))
    seconds = time.perf_counter() - start
    return len(paths) / seconds, np.concatenate([f for _, f in batches])


def image_list(paths: Sequence[str]) -> list[Image.Image]:
    from clipbranches.embed.encoders.files import open_image

    images = [open_image(p) for p in paths]
    return [im for im in images if not isinstance(im, str)]


def differences(out: NDArray[np.float32], ref: NDArray[np.float32]) -> tuple[float, float, float]:
    out, ref = out.astype(np.float64), ref.astype(np.float64)
    diff = np.abs(out - ref)
    relative = diff.max(axis=1) / np.abs(ref).max(axis=1)
    cosine = (out * ref).sum(1) / (np.linalg.norm(out, axis=1) * np.linalg.norm(ref, axis=1))
    return float(diff.max()), float(relative.max()), float(cosine.min())


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=256, help="OpenClipArt PNGs (the first N by path)")
    parser.add_argument("--jit", action="store_true", help="also torch.jit frozen (its build takes ~15 s)")
    args = parser.parse_args()
    print(machine_line())
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), ", end="")
    try:
        import onnxruntime

        print(f"onnxruntime {onnxruntime.__version__}")
    except ImportError:
        print("onnxruntime not installed")

    paths = [str(item.path) for item in openclipart_items()][: args.n]
    images = image_list(paths)
    if len(images) != len(paths):
        raise SystemExit(f"{len(paths) - len(images)} of the {len(paths)} PNGs do not decode")
    pixels = image_pixels(images)
    del images

    baseline = OfflineEncoder(device="cpu", backend="torch")
    net = baseline._net
    options: list[tuple[str, Callable[[], backends.Runner]]] = [
        ("torch fp32 (baseline)", lambda: backends.torch_runner(net, "cpu")),
        ("onnxruntime fp32", lambda: backends.onnx_runner(net)),
        ("onnxruntime, spinning", lambda: backends.onnx_runner(net, spin=True)),
        ("onnxruntime, 1 thread", lambda: backends.onnx_runner(net, threads=1)),
    ]
    if args.jit:
        options.append(("torch.jit frozen fp32", lambda: jit_runner(net)))

    decode_rate, _ = end_to_end(RunnerEncoder(None), paths)
    header = (
        f"{'option':<24} {'model img/s':>11} {'e2e img/s':>10} {'speed-up':>14} "
        f"{'max abs':>9} {'max rel':>9} {'1 - min cos':>11}"
    )
    rows = [header, "-" * len(header)]
    base: tuple[float, float, NDArray[np.float32]] | None = None
    for name, build in options:
        runner = build()
        model, _ = model_rate(runner, pixels)
        e2e, features = end_to_end(RunnerEncoder(runner), paths)
        if base is None:
            base = (model, e2e, features)
        up = f"{model / base[0]:.2f}x / {e2e / base[1]:.2f}x"
        abs_diff, rel_diff, cosine = differences(features, base[2])
        rows.append(
            f"{name:<24} {model:>11.1f} {e2e:>10.1f} {up:>14} {abs_diff:>9.2g} {rel_diff:>9.2g} {1 - cosine:>11.1e}"
        )
        print(rows[-1] if len(rows) > 3 else "\n".join(rows), flush=True)
    assert base is not None
    default = OfflineEncoder(device="cpu")  # what ingest uses: the backend it picks, its self-check
    e2e, features = end_to_end(default, paths)
    abs_diff, rel_diff, cosine = differences(features, base[2])
    name = f"OfflineEncoder() ({default.backend})"
    print(
        f"{name:<24} {'':>11} {e2e:>10.1f} {f'- / {e2e / base[1]:.2f}x':>14} "
        f"{abs_diff:>9.2g} {rel_diff:>9.2g} {1 - cosine:>11.1e}"
    )
    print(f"{'decode only (no tower)':<24} {'':>11} {decode_rate:>10.1f}")
    print(f"{len(paths)} OpenClipArt PNGs, batches of {BATCH}; speed-up: model-only / end-to-end")


if __name__ == "__main__":
    main()
