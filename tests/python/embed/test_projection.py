"""Projection heads (no training): against a numpy twin, on hand-made shared spaces, through a
head file, and the defaults ingest uses when no heads are given."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from clipbranches import CatalogFormatError, DimensionMismatchError, InvalidArgumentError  # noqa: E402
from clipbranches.embed.head import (  # noqa: E402
    ProjectionConfig,
    ProjectionHeads,
    fit_projection_heads,
    load_heads,
    save_heads,
)
from clipbranches.embed.head.defaults import default_heads  # noqa: E402
from clipbranches.embed.head.projection import pca_components  # noqa: E402
from clipbranches.testing import MeanColourEncoder  # noqa: E402


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _twin_image(heads: ProjectionHeads, features: np.ndarray) -> np.ndarray:
    """ConSE then the centred projection, written out in numpy (the brute-force twin)."""
    x = features.astype(np.float64)
    if heads.config.join == "conse":
        logits = x @ heads.class_weight.double().numpy().T + heads.class_bias.double().numpy()
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        best = np.argsort(-p, axis=1, kind="stable")[:, : heads.config.top]
        texts = heads.class_texts.double().numpy()
        x = np.einsum("nt,ntd->nd", np.take_along_axis(p, best, axis=1), texts[best])
    z = (_unit(x) - heads.image_mean.double().numpy()) @ heads.components.double().numpy()
    return _unit(z)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 6), st.booleans())
def test_encode_image_matches_its_numpy_twin(seed: int, out_dim: int, conse: bool) -> None:
    rng = np.random.default_rng(seed)
    prompts = rng.normal(size=(12, 8)).astype(np.float32)
    classifier = (rng.normal(size=(12, 5)), rng.normal(size=12)) if conse else None
    images = rng.normal(size=(30, 5 if conse else 8)).astype(np.float32)
    heads = fit_projection_heads(prompts, images, out_dim=out_dim, classifier=classifier, top=3)
    with torch.no_grad():
        got = heads.encode_image(torch.from_numpy(images)).numpy()
        text = heads.encode_text(torch.from_numpy(prompts)).numpy()
    np.testing.assert_allclose(got, _twin_image(heads, images), atol=2e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    twin_text = _unit((_unit(prompts) - _unit(prompts).mean(0)) @ heads.components.numpy())
    np.testing.assert_allclose(text, twin_text, atol=2e-5)


def test_pca_components_are_orthonormal_and_ordered_by_variance() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 6)) * np.array([5.0, 4.0, 3.0, 2.0, 1.0, 0.5])
    c = pca_components(x, 3)
    np.testing.assert_allclose(c.T @ c, np.eye(3), atol=1e-5)
    assert list(np.abs(c).argmax(axis=0)) == [0, 1, 2]
    assert (c[np.abs(c).argmax(axis=0), np.arange(3)] > 0).all()  # signs fixed


def test_a_shared_space_with_a_modality_gap_still_finds_each_images_text() -> None:
    rng = np.random.default_rng(1)
    concepts = rng.normal(size=(40, 64))
    gap = rng.normal(size=64) * 3  # texts sit in another cone than images
    images = concepts + rng.normal(size=concepts.shape) * 0.1
    texts = concepts + gap + rng.normal(size=concepts.shape) * 0.1
    heads = fit_projection_heads(texts.astype(np.float32), images.astype(np.float32), out_dim=32)
    with torch.no_grad():
        zi = heads.encode_image(torch.from_numpy(images.astype(np.float32))).numpy()
        zt = heads.encode_text(torch.from_numpy(texts.astype(np.float32))).numpy()
    assert (np.argmax(zt @ zi.T, axis=1) == np.arange(40)).mean() >= 0.95


def test_conse_sends_an_image_to_its_most_likely_class_text() -> None:
    rng = np.random.default_rng(2)
    class_texts = rng.normal(size=(20, 16)).astype(np.float32)
    weight, bias = np.eye(20, 10) * 8.0, np.zeros(20)  # class c fires on feature c (c < 10)
    images = np.eye(10, dtype=np.float32)
    heads = fit_projection_heads(class_texts, classifier=(weight, bias), out_dim=8, top=3)
    with torch.no_grad():
        zi = heads.encode_image(torch.from_numpy(images)).numpy()
        zt = heads.encode_text(torch.from_numpy(class_texts)).numpy()
    assert list(np.argmax(zi @ zt.T, axis=1)) == list(range(10))


def test_a_head_file_round_trips_projection_heads(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    classifier = (rng.normal(size=(12, 5)), rng.normal(size=12))
    heads = fit_projection_heads(rng.normal(size=(12, 8)), classifier=classifier, out_dim=4)
    save_heads(heads, tmp_path / "h.safetensors")
    again = load_heads(tmp_path / "h.safetensors")
    assert isinstance(again, ProjectionHeads)
    assert again.config == heads.config
    x = torch.from_numpy(rng.normal(size=(4, 5)).astype(np.float32))
    with torch.no_grad():
        assert torch.equal(again.encode_image(x), heads.encode_image(x))


def test_bad_projection_inputs_are_typed_errors(tmp_path: Path) -> None:
    with pytest.raises(DimensionMismatchError, match="share a space"):
        ProjectionConfig(10, 8)
    with pytest.raises(InvalidArgumentError, match="join"):
        ProjectionConfig(8, 8, join="magic")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="cannot project"):
        ProjectionConfig(8, 8, out_dim=9)
    with pytest.raises(InvalidArgumentError, match="at least top"):
        ProjectionConfig(5, 8, join="conse", classes=3)
    with pytest.raises(DimensionMismatchError, match="prompts"):
        fit_projection_heads(np.zeros(8))
    with pytest.raises(DimensionMismatchError, match="classifier"):
        fit_projection_heads(np.ones((12, 8)), classifier=(np.ones((11, 5)), np.ones(11)))
    # A head file whose stored config names a kind this version does not know.
    from safetensors.torch import save_file

    save_file(
        {"x": torch.zeros(1)},
        tmp_path / "odd.safetensors",
        metadata={"format": "clipbranches-heads", "version": "1", "config": '{"kind": "quantum"}'},
    )
    with pytest.raises(CatalogFormatError, match="unknown kind"):
        load_heads(tmp_path / "odd.safetensors")


def test_default_heads_need_a_known_encoder() -> None:
    with pytest.raises(InvalidArgumentError, match="train-head"):
        default_heads(MeanColourEncoder())


def test_the_offline_default_is_conse_over_the_imagenet_prompts() -> None:
    pytest.importorskip("wordllama")
    from clipbranches.embed.encoders import OfflineEncoder

    heads = default_heads(OfflineEncoder(device="cpu"))
    assert heads.config == ProjectionConfig(1280, 256, 32, "conse", 1000, 10)
    assert heads.config.to_dict()["kind"] == "projection"


def test_the_open_clip_default_is_a_pca_of_its_shared_space(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("open_clip")
    from clipbranches.embed.encoders import OpenClipEncoder
    from clipbranches.embed.encoders.imagenet import imagenet_classes
    from clipbranches.embed.head import defaults

    # 64 of the 1,000 prompts: the text tower on a CPU takes minutes for all of them.
    assert len(imagenet_classes("open_clip")) == 1000
    monkeypatch.setattr(defaults, "imagenet_classes", lambda source: imagenet_classes(source)[:64])
    encoder = OpenClipEncoder("ViT-B-32", pretrained=None, device="cpu")
    heads = default_heads(encoder)
    assert heads.config == ProjectionConfig(512, 512, 32, "shared", 0, 10)
    rng = np.random.default_rng(0)
    from PIL import Image

    images = [Image.fromarray(rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)) for _ in range(3)]
    with torch.no_grad():
        z = heads.encode_image(torch.from_numpy(encoder.encode_images(images))).numpy()
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-5)


def test_default_heads_fit_on_enough_images_and_sample_many(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("wordllama")
    from clipbranches.embed.encoders import OfflineEncoder
    from clipbranches.embed.head import defaults

    encoder = OfflineEncoder(device="cpu")
    rng = np.random.default_rng(4)
    images = np.abs(rng.normal(size=(40, 1280))).astype(np.float32)
    on_prompts = default_heads(encoder)
    assert torch.equal(default_heads(encoder, images).components, on_prompts.components)  # 40 < MIN_FIT_IMAGES
    monkeypatch.setattr(defaults, "MIN_FIT_IMAGES", 20)
    fitted = default_heads(encoder, images)
    assert not torch.equal(fitted.components, on_prompts.components)
    monkeypatch.setattr(defaults, "MAX_FIT_IMAGES", 20)  # an evenly spaced sample of 20 rows
    sampled = default_heads(encoder, images)
    assert torch.equal(
        sampled.components, default_heads(encoder, images[np.linspace(0, 39, 20).astype(int)]).components
    )
