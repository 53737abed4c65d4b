"""The API over a real ingested catalog (scikit-image's photos through the offline towers and the
default heads): text search, search by an uploaded image, thumbnails and full-size images."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("torch")
pytest.importorskip("wordllama")
data = pytest.importorskip("skimage.data")

from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from clipbranches import SearchEngine, testing  # noqa: E402
from clipbranches.cli import main  # noqa: E402
from clipbranches.web import create_app  # noqa: E402

PHOTOS = ("chelsea", "coffee", "rocket", "astronaut", "camera", "horse", "clock", "moon")
LOCAL = "http://127.0.0.1"


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("photos")
    testing.photo_views(folder, PHOTOS, views=2)
    return folder


@pytest.fixture(scope="module")
def catalog(photos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cat") / "photos"
    assert main(["ingest", str(photos), str(path), "--device", "cpu", "--quiet"]) == 0
    return path


@pytest.fixture(scope="module")
def client(catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    engine = SearchEngine.open(catalog, device="cpu")
    state = tmp_path_factory.mktemp("state")
    return TestClient(create_app({"photos": engine}, state_dir=state, max_upload=200_000), base_url=LOCAL)


def test_text_search_answers_like_the_engine(client: TestClient, catalog: Path) -> None:
    answer = client.post("/api/catalogs/photos/search", json={"query": "a cat", "k": 5}).json()
    expected = SearchEngine.open(catalog, device="cpu").search_text("a cat", k=5)
    assert [i["id"] for i in answer["items"]] == expected.ids.tolist()
    assert answer["params"] == {"kind": "text", "query": "a cat", "k": 5}
    assert all(i["name"].endswith(".jpg") and "/" not in i["name"] for i in answer["items"])
    assert answer["items"][0]["width"] > 0


def test_thumbnails_and_full_images(client: TestClient, photos: Path) -> None:
    item = client.get("/api/catalogs/photos/items/0").json()
    assert "/" not in item["uri"]  # the file's name, not where it lives on the server
    thumb = client.get("/api/catalogs/photos/items/0/thumbnail")
    assert thumb.status_code == 200
    assert thumb.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumb.content)).size[0] <= 512
    full = client.get("/api/catalogs/photos/items/0/image")
    assert full.status_code == 200
    assert full.headers["content-type"] == "image/jpeg"
    assert full.content == (photos / item["uri"]).read_bytes()


def test_search_by_an_uploaded_image(client: TestClient, photos: Path) -> None:
    jpeg = (photos / "horse_0.jpg").read_bytes()
    answer = client.post("/api/catalogs/photos/search/upload", files={"file": ("q.jpg", jpeg)}, data={"k": "3"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["items"][0]["name"] in ("horse_0.jpg", "horse_1.jpg")
    assert answer.json()["params"]["path"].endswith(".upload")  # its name, not the server's folder
    sid = client.post("/api/sessions", json={"catalog": "photos"}).json()["id"]
    first = client.post(f"/api/sessions/{sid}/search/upload", files={"file": ("q.jpg", jpeg)}).json()
    assert first["round"] == 0
    again = client.get(f"/api/sessions/{sid}/rounds/0").json()
    assert [i["id"] for i in again["items"]] == [i["id"] for i in first["items"]]


def test_upload_errors(client: TestClient) -> None:
    upload = "/api/catalogs/photos/search/upload"
    empty = client.post(upload, files={"file": ("q.jpg", b"")})
    assert empty.status_code == 400
    assert "empty" in empty.json()["error"]["message"]
    text = client.post(upload, files={"file": ("q.jpg", b"not an image at all")})
    assert text.status_code == 400
    assert text.json()["error"]["type"] == "InvalidArgumentError"
    big = client.post(upload, files={"file": ("q.jpg", b"\xff" * 300_000)})
    assert big.status_code == 413
    assert "200,000 bytes" in big.json()["error"]["message"]
    missing = client.post(upload, data={"k": "3"})
    assert missing.status_code == 422
    assert "file" in missing.json()["error"]["message"]
    bad_k = client.post(upload, files={"file": ("q.jpg", b"x")}, data={"k": "0"})
    assert bad_k.status_code == 422
