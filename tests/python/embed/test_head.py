"""Heads: shapes, losses on hand-made batches, a tiny training run, safetensors round trip."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from clipbranches import CatalogFormatError, DimensionMismatchError, InvalidArgumentError  # noqa: E402
from clipbranches.embed.head import (  # noqa: E402
    HeadConfig,
    Heads,
    TrainConfig,
    clip_loss,
    koleo_loss,
    load_heads,
    save_heads,
    train_heads,
)


def test_heads_give_unit_vectors_of_out_dim() -> None:
    heads = Heads(HeadConfig(image_dim=12, text_dim=7, out_dim=32, hidden=(16, 8))).eval()
    zi = heads.encode_image(torch.randn(5, 12))
    zt = heads.encode_text(torch.randn(5, 7))
    assert zi.shape == zt.shape == (5, 32)
    assert zi.dtype == torch.float32
    torch.testing.assert_close(zi.norm(dim=1), torch.ones(5))


def test_koleo_is_low_for_spread_points_and_high_for_collapsed_ones() -> None:
    spread = torch.eye(8)  # 8 orthonormal points: nearest distance sqrt(2)
    assert float(koleo_loss(spread)) == pytest.approx(-math.log(math.sqrt(2)), abs=1e-5)
    collapsed = torch.ones(8, 8) / math.sqrt(8) + 1e-4 * torch.eye(8)
    assert float(koleo_loss(collapsed)) > 8.0


def test_clip_loss_is_small_for_matching_pairs_and_log_n_for_uninformative_ones() -> None:
    x = torch.eye(16)
    scale = torch.tensor(math.log(100.0))
    assert float(clip_loss(x, x, scale)) < 1e-3
    same = torch.ones(16, 16) / 4.0
    assert float(clip_loss(same, same, scale)) == pytest.approx(math.log(16), abs=1e-5)


def _pairs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Image and text features that share 10 latent classes through two random linear maps."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((10, 6))[rng.integers(10, size=n)] + 0.1 * rng.standard_normal((n, 6))
    return (latent @ rng.standard_normal((6, 40))).astype(np.float32), (latent @ rng.standard_normal((6, 24))).astype(
        np.float32
    )


def test_a_tiny_training_run_lowers_the_loss_and_is_deterministic() -> None:
    images, texts = _pairs(600)
    config = TrainConfig(epochs=8, batch_size=128, lr=3e-3, patience=8, device="cpu")
    head = HeadConfig(40, 24, out_dim=8, hidden=(32,))
    result = train_heads(images, texts, head, config)
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < losses[0] * 0.8
    assert result.val_recall_at_1 > 0.1
    again = train_heads(images, texts, head, config)
    assert [h["loss"] for h in again.history] == losses


def test_every_epoch_is_reported_and_the_stop_has_a_reason() -> None:
    images, texts = _pairs(200)
    head = HeadConfig(40, 24, out_dim=8, hidden=(32,))
    seen: list[dict[str, float]] = []
    full = train_heads(images, texts, head, TrainConfig(epochs=3, patience=3, device="cpu"), on_epoch=seen.append)
    assert [r["epoch"] for r in seen] == [0, 1, 2]
    assert seen == full.history
    assert full.stop_reason.startswith("reached the epoch limit (3)")
    assert f"kept epoch {full.best_epoch}" in full.stop_reason
    # lr so small that nothing improves after the first epoch: patience ends the run.
    stalled = train_heads(images, texts, head, TrainConfig(epochs=40, lr=1e-12, patience=1, device="cpu"))
    assert len(stalled.history) < 40
    assert stalled.stop_reason.startswith("early stop: validation R@1 (ties: loss) has not improved for 1 epochs")


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    heads = Heads(HeadConfig(6, 5, out_dim=4, hidden=(8,))).eval()
    path = tmp_path / "head.safetensors"
    save_heads(heads, path)
    loaded = load_heads(path)
    x = torch.randn(3, 6)
    torch.testing.assert_close(loaded.encode_image(x), heads.encode_image(x))
    assert loaded.config == heads.config
    assert [p.name for p in tmp_path.iterdir()] == ["head.safetensors"], "no temporary file left"


def test_bad_inputs_are_typed_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError):
        HeadConfig(0, 5)
    with pytest.raises(InvalidArgumentError):
        TrainConfig(val_fraction=1.5)
    images, texts = _pairs(50)
    with pytest.raises(DimensionMismatchError):
        train_heads(images, texts[:-1])
    with pytest.raises(DimensionMismatchError):
        train_heads(images.astype(np.int64), texts)
    bad = images.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InvalidArgumentError, match="NaN"):
        train_heads(bad, texts)
    with pytest.raises(CatalogFormatError, match="no head weights"):
        load_heads(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CatalogFormatError):
        load_heads(tmp_path / "junk.safetensors")
