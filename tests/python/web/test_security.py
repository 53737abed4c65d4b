"""The server's guards: the token, loopback-only hosts, same-origin changes, body limits, and the
rule that a non-loopback server needs --public and a token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from clipbranches import InvalidArgumentError, testing  # noqa: E402
from clipbranches.cli import main  # noqa: E402
from clipbranches.web import create_app  # noqa: E402
from clipbranches.web.server import catalog_names, serve  # noqa: E402

TOKEN = "s3cret-token-of-the-test"


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sec") / "syn"
    testing.make_catalog(path, 500, k=10)
    return path


def test_token_is_needed_on_every_request(synthetic: Path, tmp_path: Path) -> None:
    app = create_app({"syn": synthetic}, state_dir=tmp_path, token=TOKEN)
    anyone = TestClient(app, base_url="http://192.0.2.7:8000")
    for method, path in (("GET", "/"), ("GET", "/api/catalogs"), ("POST", "/api/sessions"), ("GET", "/static/x")):
        answer = anyone.request(method, path)
        assert answer.status_code == 401, path
        assert answer.json()["error"]["type"] == "Unauthorized"
    wrong = anyone.get("/api/catalogs", headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert anyone.get("/api/catalogs", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert anyone.get("/api/catalogs", headers={"x-clipbranches-token": TOKEN}).status_code == 200
    assert anyone.get("/?token=nope", follow_redirects=False).status_code == 401


def test_the_printed_url_sets_a_strict_cookie(synthetic: Path, tmp_path: Path) -> None:
    app = create_app({"syn": synthetic}, state_dir=tmp_path, token=TOKEN)
    browser = TestClient(app, base_url="http://192.0.2.7:8000")
    opened = browser.get(f"/?token={TOKEN}", follow_redirects=False)
    assert opened.status_code == 303
    assert opened.headers["location"] == "/"  # the token leaves the address bar
    cookie = opened.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert browser.get("/api/catalogs").status_code == 200  # the cookie now goes with every request
    assert browser.get("/").status_code == 200


def test_without_a_token_only_loopback_hosts_are_answered(synthetic: Path, tmp_path: Path) -> None:
    app = create_app({"syn": synthetic}, state_dir=tmp_path)
    for host in ("http://127.0.0.1:8000", "http://localhost", "http://[::1]:9000", "http://127.0.0.2"):
        assert TestClient(app, base_url=host).get("/api").status_code == 200, host
    rebound = TestClient(app, base_url="http://evil.example:8000").get("/api")  # DNS rebinding
    assert rebound.status_code == 403
    assert "loopback" in rebound.json()["error"]["message"]


def test_changes_from_another_site_are_refused(synthetic: Path, tmp_path: Path) -> None:
    client = TestClient(create_app({"syn": synthetic}, state_dir=tmp_path), base_url="http://127.0.0.1:8000")
    forged = client.post("/api/sessions", json={"catalog": "syn"}, headers={"origin": "http://evil.example"})
    assert forged.status_code == 403
    assert "another site" in forged.json()["error"]["message"]
    same = client.post("/api/sessions", json={"catalog": "syn"}, headers={"origin": "http://127.0.0.1:8000"})
    assert same.status_code == 201
    assert client.get("/api", headers={"origin": "http://evil.example"}).status_code == 200  # reads: CORS keeps them


def test_request_bodies_over_the_limit_are_refused(synthetic: Path, tmp_path: Path) -> None:
    client = TestClient(create_app({"syn": synthetic}, state_dir=tmp_path, max_body=1000), base_url="http://127.0.0.1")
    sid = client.post("/api/sessions", json={"catalog": "syn"}).json()["id"]
    big = client.post(f"/api/sessions/{sid}/labels", json={"ids": list(range(400)), "label": "positive"})
    assert big.status_code == 413
    assert "1,000 bytes" in big.json()["error"]["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"ids": ['
        yield b"1, " * 600
        yield b'2], "label": "positive"}'

    streamed = client.post(
        f"/api/sessions/{sid}/labels", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413
    assert client.get(f"/api/sessions/{sid}").json()["positives"] == []  # nothing was applied
    assert client.post(f"/api/sessions/{sid}/labels", json={"ids": [1], "label": "positive"}).status_code == 200


def test_serving_beyond_loopback_needs_public_and_a_long_token(synthetic: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="--public"):
        serve([str(synthetic)], host="0.0.0.0", state_dir=tmp_path)
    with pytest.raises(InvalidArgumentError, match="16 characters"):
        serve([str(synthetic)], host="0.0.0.0", public=True, token="short", state_dir=tmp_path)
    with pytest.raises(InvalidArgumentError, match="port"):
        serve([str(synthetic)], port=70000, state_dir=tmp_path)


def test_cli_serve_refuses_bad_input(synthetic: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", str(synthetic), "--host", "0.0.0.0", "--state-dir", str(tmp_path)]) == 2
    assert "--public" in capsys.readouterr().err
    assert main(["serve", str(tmp_path / "missing"), "--state-dir", str(tmp_path)]) == 2
    assert "missing" in capsys.readouterr().err


def test_catalog_names() -> None:
    assert catalog_names(["/data/cats", "dogs=/x/y/z", "/a/b/"]) == {
        "cats": "/data/cats",
        "dogs": "/x/y/z",
        "b": "/a/b/",
    }
    with pytest.raises(InvalidArgumentError, match="two catalogs would be named 'cats'"):
        catalog_names(["/data/cats", "/other/cats"])
