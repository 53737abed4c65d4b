"""The offline image tower's backends: ONNX Runtime gives torch's features (up to float rounding)
on real images, its exported graph is cached atomically, and a missing or failing fast backend
falls back to torch with one warning (or an error when it was asked for by name)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch")
pytest.importorskip("wordllama")

from PIL import Image  # noqa: E402

from clipbranches.datasets import OPENCLIPART_DIR  # noqa: E402
from clipbranches.embed.encoders import OfflineEncoder  # noqa: E402
from clipbranches.embed.encoders import lite0_backends as backends  # noqa: E402
from clipbranches.embed.encoders.offline import image_pixels  # noqa: E402
from clipbranches.exceptions import EncoderError, InvalidArgumentError  # noqa: E402

#: Largest abs feature difference allowed between the backends (measured: ~1e-5, features ~O(1)).
ATOL = 1e-4


@pytest.fixture(scope="module")
def torch_encoder() -> OfflineEncoder:
    return OfflineEncoder(device="cpu", backend="torch")


@pytest.fixture(scope="module")
def onnx_encoder() -> OfflineEncoder:
    pytest.importorskip("onnxruntime")
    encoder = OfflineEncoder(device="cpu")
    assert encoder.backend == "onnx", "the default on a CPU"
    return encoder


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    """Real photos (scikit-image's) and clip art (OpenClipArt's, transparency on white) where
    installed, else seeded noise in a few sizes."""
    from clipbranches.embed.encoders.files import open_image

    images: list[Image.Image] = []
    try:
        from skimage import data

        images += [Image.fromarray(getattr(data, name)()) for name in ("astronaut", "coffee", "camera")]
    except ImportError:
        pass
    clip_art = sorted((OPENCLIPART_DIR / "png").rglob("*.png"))  # empty without the Debian package
    for path in clip_art[:: max(1, len(clip_art) // 3)][:3]:
        image = open_image(path)
        if not isinstance(image, str):
            images.append(image)
    rng = np.random.default_rng(0)
    images += [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in [(40, 30), (300, 500)]]
    return images


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache folder of this test's own."""
    monkeypatch.setenv("CLIPBRANCHES_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_onnx_features_equal_torch_on_real_images(
    torch_encoder: OfflineEncoder, onnx_encoder: OfflineEncoder, photos: list[Image.Image]
) -> None:
    reference = torch_encoder.encode_images(photos)
    features = onnx_encoder.encode_images(photos)
    assert features.shape == reference.shape == (len(photos), 1280)
    assert features.dtype == np.float32
    np.testing.assert_allclose(features, reference, rtol=0, atol=ATOL)
    cosine = (features * reference).sum(1) / np.linalg.norm(features, axis=1) / np.linalg.norm(reference, axis=1)
    assert cosine.min() >= 0.9999
    assert onnx_encoder.identity == torch_encoder.identity, "equal features: one identity"
    assert onnx_encoder.encode_images([]).shape == (0, 1280)


def test_an_unknown_backend_is_refused_before_loading() -> None:
    with pytest.raises(InvalidArgumentError, match="unknown image backend 'bogus'"):
        OfflineEncoder(device="cpu", backend="bogus")


def test_without_onnxruntime_the_default_falls_back_to_torch_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, torch_encoder: OfflineEncoder, photos: list[Image.Image]
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime -> ImportError
    with pytest.warns(RuntimeWarning, match="onnxruntime is not installed.*runs on torch"):
        encoder = OfflineEncoder(device="cpu")
    assert encoder.backend == "torch"
    np.testing.assert_array_equal(encoder.encode_images(photos[:2]), torch_encoder.encode_images(photos[:2]))
    with pytest.raises(EncoderError, match="needs onnxruntime"):
        OfflineEncoder(device="cpu", backend="onnx")


def test_a_failing_self_check_falls_back_or_raises(monkeypatch: pytest.MonkeyPatch, photos: list[Image.Image]) -> None:
    pytest.importorskip("onnxruntime")
    monkeypatch.setattr(backends, "self_check", lambda fast, reference: 0.5)
    encoder = OfflineEncoder(device="cpu")
    with pytest.warns(RuntimeWarning, match="differ from torch's by 0.5"):
        encoder.encode_images(photos[:1])
    assert encoder.backend == "torch"
    with pytest.raises(EncoderError, match="differ from torch's"):
        OfflineEncoder(device="cpu", backend="onnx").encode_images(photos[:1])


def test_the_export_is_cached_atomically_and_read_back(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    exports: list[int] = []

    def export(net: object) -> bytes:
        exports.append(1)
        return b"graph"

    monkeypatch.setattr(backends, "export_onnx", export)
    assert backends._onnx_model(None) == b"graph"
    assert backends._onnx_model(None) == b"graph"
    assert len(exports) == 1, "the second process reads the cache"
    (cached,) = cache.iterdir()
    assert cached.name.startswith("efficientnet-lite0-features-")
    assert cached.suffix == ".onnx"
    assert cached.read_bytes() == b"graph", "no temporary file left beside it"


def test_a_damaged_cache_file_is_exported_again(
    monkeypatch: pytest.MonkeyPatch, cache: Path, onnx_encoder: OfflineEncoder, photos: list[Image.Image]
) -> None:
    monkeypatch.delenv("CLIPBRANCHES_CACHE_DIR")
    graph = backends._onnx_model(onnx_encoder._net)  # the user cache, filled by onnx_encoder
    monkeypatch.setenv("CLIPBRANCHES_CACHE_DIR", str(cache))
    monkeypatch.setattr(backends, "export_onnx", lambda net: graph)
    assert backends._onnx_model(None) == graph
    (cached,) = cache.iterdir()
    cached.write_bytes(graph[: len(graph) // 2])  # e.g. a disk error
    run = backends.onnx_runner(onnx_encoder._net)
    assert cached.read_bytes() == graph, "repaired"
    expected = onnx_encoder.encode_images(photos[:2])
    np.testing.assert_allclose(run(image_pixels(photos[:2])), expected, rtol=0, atol=1e-6)


def test_an_unwritable_cache_keeps_the_graph_in_memory(monkeypatch: pytest.MonkeyPatch, cache: Path) -> None:
    cache.parent.mkdir(exist_ok=True)
    cache.write_text("a file where the folder should be")
    monkeypatch.setattr(backends, "export_onnx", lambda net: b"graph")
    assert backends._onnx_model(None) == b"graph"


def test_the_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("CLIPBRANCHES_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert backends.cache_dir() == tmp_path / "clipbranches"
    monkeypatch.setenv("CLIPBRANCHES_CACHE_DIR", str(tmp_path / "mine"))
    assert backends.cache_dir() == tmp_path / "mine"


def test_text_queries_never_load_the_image_network() -> None:
    encoder = OfflineEncoder(device="cpu")
    assert encoder.encode_texts(["a cat"]).shape == (1, 256)
    assert encoder._loaded_net is None  # a text query pays for WordLlama only
    assert encoder.encode_images([Image.new("RGB", (32, 32), "red")]).shape == (1, 1280)
    assert encoder._loaded_net is not None
