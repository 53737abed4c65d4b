"""Encoders: shapes and dtypes on a randomly initialised open_clip model and on the offline
towers, the weights error, and streaming file encoding with broken inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("open_clip")

from PIL import Image  # noqa: E402

from clipbranches import EncoderError  # noqa: E402
from clipbranches.embed.encoders import DecodeReport, OfflineEncoder, OpenClipEncoder, encode_files  # noqa: E402


@pytest.fixture(scope="module")
def random_clip() -> OpenClipEncoder:
    return OpenClipEncoder("ViT-B-32", pretrained=None, device="cpu")


@pytest.fixture(scope="module")
def offline() -> OfflineEncoder:
    return OfflineEncoder(device="cpu")


def _images(n: int) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)) for _ in range(n)]


def test_open_clip_random_weights_shapes(random_clip: OpenClipEncoder) -> None:
    images = random_clip.encode_images(_images(3))
    texts = random_clip.encode_texts(["a photo of a cat", "a shoe"])
    assert images.shape == (3, 512)
    assert texts.shape == (2, 512)
    assert images.dtype == texts.dtype == np.float32
    assert random_clip.identity == {"kind": "open_clip", "model": "ViT-B-32", "weights": "random", "dim": 512}
    assert random_clip.encode_texts([]).shape == (0, 512)


def test_missing_weights_say_what_to_pass(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import huggingface_hub.constants

    # Fail at once instead of retrying the network (the flag is read when the hub client loads).
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    with pytest.raises(EncoderError, match="pass a local checkpoint"):
        OpenClipEncoder("ViT-B-32", pretrained="openai", device="cpu")
    with pytest.raises(EncoderError, match="does not exist"):
        OpenClipEncoder("ViT-B-32", pretrained=tmp_path / "nope.bin", device="cpu")
    with pytest.raises(EncoderError, match="unknown open_clip model"):
        OpenClipEncoder("ViT-Nope", pretrained=None)


def test_an_unreachable_hub_fails_fast_with_the_cli_syntax(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import socket
    import time

    import huggingface_hub.constants

    with socket.socket() as closed:  # a port nobody listens on: the hub is unreachable
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))  # an empty cache
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    started = time.monotonic()
    with pytest.raises(EncoderError, match="hub cannot be reached") as error:
        OpenClipEncoder("ViT-B-32", pretrained="openai", device="cpu")
    assert time.monotonic() - started < 15, "no minute of retries"
    assert "--encoder open_clip:ViT-B-32:/path/to/open_clip_pytorch_model.bin" in str(error.value)
    assert huggingface_hub.constants.HF_HUB_OFFLINE is False, "offline only for the load"
    assert not [r for r in caplog.records if r.levelname == "ERROR"], "the error alone says it (one line in the CLI)"


def test_offline_towers_shapes(offline: OfflineEncoder) -> None:
    assert offline.encode_images(_images(2)).shape == (2, 1280)
    texts = offline.encode_texts(["a photo of a cat", "a red dress"])
    assert texts.shape == (2, 256)
    assert texts.dtype == np.float32
    assert offline.identity["kind"] == "offline"


def test_encode_files_skips_and_reports_broken_inputs(tmp_path: Path, offline: OfflineEncoder) -> None:
    paths = []
    for i, im in enumerate(_images(5)):
        im.save(tmp_path / f"{i}.png")
        paths.append(tmp_path / f"{i}.png")
    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    paths.insert(2, tmp_path / "corrupt.jpg")
    paths.insert(4, tmp_path / "missing.png")
    report = DecodeReport()
    batches = list(encode_files(offline, paths, batch_size=2, workers=2, report=report))
    positions = np.concatenate([p for p, _ in batches])
    features = np.concatenate([f for _, f in batches])
    assert list(positions) == [0, 1, 3, 5, 6]
    assert features.shape == (5, 1280)
    assert [(i, reason.split(":")[0]) for i, _, reason in report.failures] == [
        (2, "cannot decode"),
        (4, "file not found"),
    ]
    # the same features as encoding the decoded images directly
    np.testing.assert_allclose(features[:2], offline.encode_images(_images(2)), rtol=1e-4, atol=1e-4)


def test_open_image_puts_transparency_on_white_and_shrinks_posters(tmp_path: Path) -> None:
    from clipbranches.embed.encoders.files import MAX_SHORT_SIDE, open_image

    rgba = np.zeros((20, 30, 4), np.uint8)  # fully transparent black ...
    rgba[5:10, 5:10] = (255, 0, 0, 255)  # ... but for an opaque red square
    Image.fromarray(rgba, "RGBA").save(tmp_path / "icon.png")
    icon = open_image(tmp_path / "icon.png")
    assert not isinstance(icon, str)
    pixels = np.asarray(icon)
    assert icon.mode == "RGB"
    assert tuple(pixels[0, 0]) == (255, 255, 255)
    assert tuple(pixels[7, 7]) == (255, 0, 0)

    Image.new("RGB", (3 * MAX_SHORT_SIDE, 2 * MAX_SHORT_SIDE), "blue").save(tmp_path / "poster.png")
    poster = open_image(tmp_path / "poster.png")
    assert not isinstance(poster, str)
    assert poster.size == (MAX_SHORT_SIDE * 3 // 2, MAX_SHORT_SIDE)
    full = open_image(tmp_path / "poster.png", max_short_side=None)
    assert not isinstance(full, str)
    assert full.size == (3 * MAX_SHORT_SIDE, 2 * MAX_SHORT_SIDE)
