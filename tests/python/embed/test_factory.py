"""The one encoder factory: specs and recorded identities give the same encoders; bad ones are
typed errors. The towers' classes are replaced by recorders, so no weights load here."""

from __future__ import annotations

from typing import Any

import pytest

from clipbranches import EncoderError, InvalidArgumentError
from clipbranches.embed.encoders import factory, make_encoder


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    calls: list[tuple[str, dict[str, Any]]] = []

    class Recorder:
        def __init__(self, name: str) -> None:
            self.name = name

        def __call__(self, *args: Any, **kwargs: Any) -> str:
            calls.append((self.name, {"args": args, **kwargs}))
            return self.name

    import clipbranches.embed.encoders.offline as offline
    import clipbranches.embed.encoders.openclip as openclip

    monkeypatch.setattr(offline, "OfflineEncoder", Recorder("offline"))
    monkeypatch.setattr(openclip, "OpenClipEncoder", Recorder("open_clip"))
    return calls


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("offline", ("offline", {"args": (), "device": "cpu"})),
        ({"kind": "offline", "image": "x"}, ("offline", {"args": (), "device": "cpu"})),
        ("open_clip:ViT-B-32", ("open_clip", {"args": ("ViT-B-32",), "pretrained": "openai", "device": "cpu"})),
        (
            "open_clip:ViT-B-32:laion2b",
            ("open_clip", {"args": ("ViT-B-32",), "pretrained": "laion2b", "device": "cpu"}),
        ),
        ("open_clip:RN50:random", ("open_clip", {"args": ("RN50",), "pretrained": None, "device": "cpu"})),
        (
            {"kind": "open_clip", "model": "RN50", "weights": "random", "dim": 1024},
            ("open_clip", {"args": ("RN50",), "pretrained": None, "device": "cpu"}),
        ),
    ],
)
def test_specs_and_identities(
    made: list[tuple[str, dict[str, Any]]], spec: str | dict[str, Any], expected: tuple[str, dict[str, Any]]
) -> None:
    make_encoder(spec, device="cpu")
    assert made == [expected]


@pytest.mark.parametrize("spec", ["", "clip", "open_clip", "open_clip:", "Offline"])
def test_bad_specs_say_what_a_spec_looks_like(spec: str) -> None:
    with pytest.raises(InvalidArgumentError, match=f"unknown encoder.*{factory.SPEC_HELP.split()[0]}"):
        make_encoder(spec)


def test_an_unknown_identity_or_type_is_refused() -> None:
    with pytest.raises(EncoderError, match="does not know"):
        make_encoder({"kind": "siglip"})
    with pytest.raises(InvalidArgumentError, match="string or an identity mapping"):
        make_encoder(42)  # type: ignore[arg-type]
