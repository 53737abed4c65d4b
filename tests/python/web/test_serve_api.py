"""The HTTP API through FastAPI's test client: every route, and every typed error as its status
with a clear message (never a path or a traceback)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from clipbranches import SearchEngine, testing  # noqa: E402
from clipbranches.web import create_app  # noqa: E402

LOCAL = "http://127.0.0.1"


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """5,000 synthetic items in 50 clusters, indexed; no towers (item queries only)."""
    path = tmp_path_factory.mktemp("web") / "syn"
    testing.make_catalog(path, 5000, k=50).build_index()
    return path


@pytest.fixture
def client(synthetic: Path, tmp_path: Path) -> TestClient:
    return TestClient(create_app({"syn": synthetic}, state_dir=tmp_path / "state"), base_url=LOCAL)


@pytest.fixture
def sid(client: TestClient) -> str:
    answer = client.post("/api/sessions", json={"catalog": "syn"})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def error(answer: Any, status: int, kind: str) -> str:
    """The message of an error answer, after checking its status, type and shape."""
    assert answer.status_code == status, answer.text
    body = answer.json()["error"]
    assert body["type"] == kind, body
    assert body["status"] == status
    assert "Traceback" not in body["message"]
    return str(body["message"])


# -- server, models, catalogs, items -----------------------------------------------------------


def test_server_models_and_catalogs(client: TestClient, synthetic: Path) -> None:
    about = client.get("/api").json()
    assert about["catalogs"] == ["syn"]
    assert about["version"]
    models = client.get("/api/models").json()
    assert models["default"] in models["models"]
    assert "branch" in models["models"]
    assert models["random_negatives"] == {"min": 0, "max": 10_000, "default": 500}
    assert models["rules"] == ["branch", "ensemble"]
    (info,) = client.get("/api/catalogs").json()
    assert info == client.get("/api/catalogs/syn").json()
    assert info["items"] == 5000
    assert info["shards"] == 1
    assert info["has_index"] is True
    assert "label" in info["columns"]
    assert info["encoder"] == "synthetic"
    assert "'nope'" in error(client.get("/api/catalogs/nope"), 404, "NotFound")
    assert str(synthetic) not in client.get("/api/catalogs").text  # no server path is shown


def test_item_metadata_and_missing_pictures(client: TestClient) -> None:
    engine = SearchEngine.open(client.app.state.engines["syn"].catalog.path)  # type: ignore[attr-defined]
    item = client.get("/api/catalogs/syn/items/7").json()
    assert item["id"] == 7
    assert item["label"] == int(engine.catalog.items["label"][7])
    assert "[123456789]" in error(client.get("/api/catalogs/syn/items/123456789"), 404, "UnknownItemError")
    error(client.get("/api/catalogs/syn/items/seven"), 422, "InvalidArgumentError")
    assert "thumbnail" in error(client.get("/api/catalogs/syn/items/7/thumbnail"), 404, "NotFound")
    assert "not a file" in error(client.get("/api/catalogs/syn/items/7/image"), 404, "NotFound")
    error(client.get("/api/catalogs/nope/items/7"), 404, "NotFound")


def test_openapi_documents_every_api_route(client: TestClient) -> None:
    schema = client.get("/api/openapi.json").json()
    routes = {r.path for r in client.app.routes if getattr(r, "path", "").startswith("/api")}  # type: ignore[attr-defined]
    routes.discard("/api/openapi.json")
    assert routes <= set(schema["paths"]), routes - set(schema["paths"])
    assert {"SearchRequest", "RefineRequest", "Page", "SessionInfo"} <= set(schema["components"]["schemas"])
    assert client.get("/docs").status_code == 404  # its script would come from a CDN


def test_page_is_served_with_a_strict_content_security_policy(client: TestClient) -> None:
    page = client.get("/")
    assert client.head("/").status_code == 200
    assert page.status_code == 200
    assert "<html" in page.text.lower()
    assert "default-src 'self'" in page.headers["content-security-policy"]


# -- one-off searches and rounds ---------------------------------------------------------------


def test_search_by_item_matches_the_engine(client: TestClient, synthetic: Path) -> None:
    engine = SearchEngine.open(synthetic)
    answer = client.post("/api/catalogs/syn/search", json={"item": 11, "k": 30, "size": 10}).json()
    expected = engine.search_image(11, k=30)
    assert answer["total"] == 30
    assert answer["pages"] == 3
    assert answer["kind"] == "image"
    assert [i["id"] for i in answer["items"]] == expected.ids[:10].tolist()
    assert [i["score"] for i in answer["items"]] == expected.scores[:10].tolist()
    assert [i["rank"] for i in answer["items"]] == list(range(1, 11))
    assert answer["items"][0]["thumbnail"] == f"/api/catalogs/syn/items/{expected.ids[0]}/thumbnail"


def test_search_errors(client: TestClient, synthetic: Path) -> None:
    message = error(client.post("/api/catalogs/syn/search", json={"query": "a cat"}), 422, "EncoderError")
    assert "search by item" in message
    assert str(synthetic.parent) not in message
    assert "exactly one" in error(client.post("/api/catalogs/syn/search", json={}), 400, "InvalidArgumentError")
    both = client.post("/api/catalogs/syn/search", json={"query": "x", "item": 1})
    error(both, 400, "InvalidArgumentError")
    assert "k" in error(client.post("/api/catalogs/syn/search", json={"item": 1, "k": 0}), 422, "InvalidArgumentError")
    assert "k" in error(
        client.post("/api/catalogs/syn/search", json={"item": 1, "k": 10**6}), 422, "InvalidArgumentError"
    )
    error(client.post("/api/catalogs/syn/search", json={"item": 10**9}), 404, "UnknownItemError")
    error(client.post("/api/catalogs/syn/search", json={"item": "one"}), 422, "InvalidArgumentError")
    error(client.post("/api/catalogs/syn/search", content=b"{not json", headers=_JSON), 422, "InvalidArgumentError")
    assert "kk" in error(
        client.post("/api/catalogs/syn/search", json={"item": 1, "kk": 2}), 422, "InvalidArgumentError"
    )
    error(client.post("/api/catalogs/nope/search", json={"item": 1}), 404, "NotFound")
    error(client.get("/api/catalogs/syn/search"), 405, "MethodNotAllowed")


_JSON = {"content-type": "application/json"}


def test_refine_matches_the_engine_and_checks_its_options(client: TestClient, synthetic: Path) -> None:
    engine = SearchEngine.open(synthetic)
    labels = {"positives": [3, 1964, 2651], "negatives": [5, 6], "seed": 7}
    for model in ("hybrid", "branch"):
        answer = client.post("/api/catalogs/syn/refine", json={**labels, "model": model, "size": 20}).json()
        expected = engine.refine([3, 1964, 2651], [5, 6], model=model, seed=7)
        assert answer["total"] == expected.total
        assert answer["params"]["model"] == model
        assert [i["id"] for i in answer["items"]] == expected.ids[:20].tolist()
        assert [i["pinned"] for i in answer["items"][:3]] == [True] * 3
    refine = "/api/catalogs/syn/refine"
    assert "positives" in error(client.post(refine, json={"positives": []}), 422, "InvalidArgumentError")
    error(client.post(refine, json={"positives": [10**9]}), 404, "UnknownItemError")
    assert "unknown model" in error(
        client.post(refine, json={"positives": [1], "model": "x"}), 400, "InvalidArgumentError"
    )
    out_of_range = client.post(refine, json={"positives": [1], "random_negatives": 10**6})
    assert "random_negatives" in error(out_of_range, 400, "InvalidArgumentError")
    both = client.post(refine, json={"positives": [1], "negatives": [1]})
    error(both, 400, "InvalidArgumentError")


# -- sessions ----------------------------------------------------------------------------------


def test_labels_undo_redo(client: TestClient, sid: str) -> None:
    base = f"/api/sessions/{sid}"
    info = client.post(f"{base}/labels", json={"ids": [1, 2, 3], "label": "positive"}).json()
    assert info["positives"] == [1, 2, 3]
    assert info["can_undo"]
    assert not info["can_redo"]
    info = client.post(f"{base}/labels", json={"ids": [3, 4], "label": "negative"}).json()
    assert info["positives"] == [1, 2]
    assert info["negatives"] == [3, 4]
    assert "[99999999]" in error(
        client.post(f"{base}/labels", json={"ids": [5, 99999999], "label": "positive"}), 404, "UnknownItemError"
    )
    assert client.get(base).json()["positives"] == [1, 2]  # a refused change changes nothing
    error(client.post(f"{base}/labels", json={"ids": [5], "label": "maybe"}), 422, "InvalidArgumentError")
    error(client.post(f"{base}/labels", json={"ids": [], "label": "positive"}), 422, "InvalidArgumentError")
    info = client.post(f"{base}/undo").json()
    assert info["positives"] == [1, 2, 3]
    assert info["negatives"] == []
    assert info["can_redo"]
    info = client.post(f"{base}/redo").json()
    assert info["negatives"] == [3, 4]
    assert not info["can_redo"]
    client.post(f"{base}/labels", json={"ids": [3], "label": "unlabeled"})
    assert client.get(base).json()["negatives"] == [4]
    client.post(f"{base}/undo")
    client.post(f"{base}/undo")
    assert client.post(f"{base}/undo").json()["positives"] == []
    assert client.post(f"{base}/undo").json()["can_undo"] is False  # nothing left: unchanged


def test_rounds_pages_export_and_rules(client: TestClient, sid: str, synthetic: Path, tmp_path: Path) -> None:
    base = f"/api/sessions/{sid}"
    first = client.post(f"{base}/search", json={"item": 3, "k": 40, "size": 8}).json()
    assert first["round"] == 0
    assert first["total"] == 40
    assert len(first["items"]) == 8
    positives = [i["id"] for i in first["items"][:4]]
    client.post(f"{base}/labels", json={"ids": positives, "label": "positive"})
    client.post(f"{base}/labels", json={"ids": [9], "label": "negative"})
    page0 = client.get(f"{base}/rounds/0?size=8").json()
    assert [i["label"] for i in page0["items"][:4]] == ["positive"] * 4  # labels show on any page
    answer = client.post(f"{base}/refine", json={"model": "branch", "seed": 3, "size": 10}).json()
    expected = SearchEngine.open(synthetic).refine(positives, [9], model="branch", seed=3)
    assert answer["round"] == 1
    assert answer["total"] == expected.total
    assert [i["id"] for i in answer["items"]] == expected.ids[:10].tolist()
    page2 = client.get(f"{base}/rounds/1?page=2&size=5").json()
    assert expected.total > 15
    assert [i["id"] for i in page2["items"]] == expected.ids[10:15].tolist()
    assert [i["rank"] for i in page2["items"]] == list(range(11, 16))
    past = client.get(f"{base}/rounds/1?page=100000&size=10").json()
    assert past["items"] == []
    assert past["total"] == expected.total
    rounds = client.get(f"{base}/rounds").json()
    assert [r["kind"] for r in rounds] == ["image", "refine"]
    assert rounds[1]["params"]["seed"] == 3
    assert "has no round 2" in error(client.get(f"{base}/rounds/2"), 404, "NotFound")
    error(client.get(f"{base}/rounds/-1"), 404, "NotFound")
    error(client.get(f"{base}/rounds/1?size=0"), 422, "InvalidArgumentError")
    # export: the whole answer, as the engine writes it
    expected.export(tmp_path / "expected.parquet")
    parquet = client.get(f"{base}/rounds/1/export?format=parquet")
    assert parquet.status_code == 200
    assert "round-1.parquet" in parquet.headers["content-disposition"]
    assert pl.read_parquet(io.BytesIO(parquet.content)).equals(pl.read_parquet(tmp_path / "expected.parquet"))
    csv = client.get(f"{base}/rounds/1/export?format=csv")
    assert pl.read_csv(io.BytesIO(csv.content))["id"].to_list() == expected.ids.tolist()
    error(client.get(f"{base}/rounds/1/export?format=xlsx"), 422, "InvalidArgumentError")
    # rules: box models only
    rules = client.get(f"{base}/rounds/1/rules?format=sql")
    assert rules.status_code == 200
    assert rules.text.startswith("SELECT")
    assert rules.text == expected.rules().sql()
    assert client.get(f"{base}/rounds/1/rules").text == str(expected.rules())
    assert "no rules" in error(client.get(f"{base}/rounds/0/rules"), 400, "InvalidArgumentError")


def test_refine_needs_a_positive(client: TestClient, sid: str) -> None:
    assert "positive" in error(client.post(f"/api/sessions/{sid}/refine", json={}), 400, "InvalidArgumentError")
    error(client.post(f"/api/sessions/{sid}/refine", json={"seed": -1}), 422, "InvalidArgumentError")


def test_session_errors_and_delete(client: TestClient, sid: str) -> None:
    error(client.post("/api/sessions", json={"catalog": "nope"}), 404, "NotFound")
    error(client.post("/api/sessions", json={}), 422, "InvalidArgumentError")
    error(client.get("/api/sessions/AAAAAAAAAAAAAAAAAAAAAA"), 404, "SessionNotFound")
    error(client.get("/api/sessions/..%2F..%2Fetc"), 404, "NotFound")
    error(client.get("/api/sessions/....................etc"), 404, "SessionNotFound")
    error(client.get("/api/sessions/x/rounds/0"), 404, "SessionNotFound")
    assert client.delete(f"/api/sessions/{sid}").status_code == 204
    error(client.get(f"/api/sessions/{sid}"), 404, "SessionNotFound")
    error(client.delete(f"/api/sessions/{sid}"), 404, "SessionNotFound")


def test_sessions_are_isolated(client: TestClient) -> None:
    a, b = (client.post("/api/sessions", json={"catalog": "syn"}).json()["id"] for _ in range(2))
    assert a != b
    client.post(f"/api/sessions/{a}/labels", json={"ids": [1], "label": "positive"})
    client.post(f"/api/sessions/{b}/labels", json={"ids": [2], "label": "negative"})
    assert client.get(f"/api/sessions/{a}").json()["negatives"] == []
    assert client.get(f"/api/sessions/{b}").json()["positives"] == []
    client.post(f"/api/sessions/{b}/undo")
    assert client.get(f"/api/sessions/{a}").json()["positives"] == [1]


def test_sessions_survive_a_restart(synthetic: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    before = TestClient(create_app({"syn": synthetic}, state_dir=state), base_url=LOCAL)
    sid = before.post("/api/sessions", json={"catalog": "syn"}).json()["id"]
    before.post(f"/api/sessions/{sid}/labels", json={"ids": [3, 1964], "label": "positive"})
    before.post(f"/api/sessions/{sid}/labels", json={"ids": [8], "label": "negative"})
    first = before.post(f"/api/sessions/{sid}/refine", json={"size": 25}).json()  # a drawn seed
    (state / "garbage.json").write_text("{")  # not a session id: ignored
    (state / ("B" * 22 + ".json")).write_text("{")  # a session id, unreadable: skipped, reported
    after_app = create_app({"syn": synthetic}, state_dir=state)
    assert len(after_app.state.store.skipped) == 1
    assert "B" * 22 in after_app.state.store.skipped[0]
    after = TestClient(after_app, base_url=LOCAL)
    info = after.get(f"/api/sessions/{sid}").json()
    assert info["positives"] == [3, 1964]
    assert info["negatives"] == [8]
    assert info["rounds"] == 1
    again = after.get(f"/api/sessions/{sid}/rounds/0?size=25").json()  # redone with the round's seed
    assert [i["id"] for i in again["items"]] == [i["id"] for i in first["items"]]
    assert [i["score"] for i in again["items"]] == [i["score"] for i in first["items"]]
    assert again["total"] == first["total"]
    assert after.post(f"/api/sessions/{sid}/undo").json()["negatives"] == []  # undo history kept too
    # a session of a catalog no longer served is kept on disk, not offered
    testing.make_catalog(tmp_path / "other", 100, k=5)
    elsewhere = create_app({"other": tmp_path / "other"}, state_dir=state)
    assert any(sid in line and "is not served" in line for line in elsewhere.state.store.skipped)
    error(TestClient(elsewhere, base_url=LOCAL).get(f"/api/sessions/{sid}"), 404, "SessionNotFound")
    assert (state / f"{sid}.json").is_file()


def test_internal_errors_say_nothing_of_the_server(synthetic: Path, tmp_path: Path) -> None:
    app = create_app({"syn": synthetic}, state_dir=tmp_path / "state")
    engine = app.state.engines["syn"]

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"boom in {tmp_path}/secret.py")

    engine.refine = broken
    client = TestClient(app, base_url=LOCAL, raise_server_exceptions=False)
    answer = client.post("/api/catalogs/syn/refine", json={"positives": [1]})
    message = error(answer, 500, "InternalError")
    assert "incident" in message
    assert str(tmp_path) not in answer.text
    assert "boom" not in answer.text


def test_catalog_names_must_fit_in_a_url(synthetic: Path, tmp_path: Path) -> None:
    from clipbranches import InvalidArgumentError

    for bad in ("", "a/b", ".hidden", "a b"):
        with pytest.raises(InvalidArgumentError, match="name"):
            create_app({bad: synthetic}, state_dir=tmp_path)
    with pytest.raises(InvalidArgumentError, match="at least one catalog"):
        create_app({}, state_dir=tmp_path)


# -- a catalog set -----------------------------------------------------------------------------


def test_a_catalog_set_serves_like_a_catalog(tmp_path: Path) -> None:
    from clipbranches import Catalog, CatalogSet

    codes = np.concatenate([block for block, _ in testing.codes(900, k=20, seed=2)])
    parts = []
    for i, (lo, hi) in enumerate(((0, 400), (400, 900))):
        Catalog.create(tmp_path / f"p{i}", codes[lo:hi], pl.DataFrame({"id": np.arange(lo, hi)}), encoder={"name": "s"})
        parts.append(tmp_path / f"p{i}")
    CatalogSet.create(tmp_path / "set", parts, move=True)
    Catalog.create(tmp_path / "one", codes, pl.DataFrame({"id": np.arange(900)}), encoder={"name": "s"})
    client = TestClient(create_app({"set": tmp_path / "set"}, state_dir=tmp_path / "state"), base_url=LOCAL)
    assert client.get("/api/catalogs/set").json()["shards"] == 2
    sid = client.post("/api/sessions", json={"catalog": "set"}).json()["id"]
    client.post(f"/api/sessions/{sid}/labels", json={"ids": [1, 2, 450], "label": "positive"})
    answer = client.post(f"/api/sessions/{sid}/refine", json={"seed": 5, "size": 50}).json()
    expected = SearchEngine.open(tmp_path / "one").refine([1, 2, 450], seed=5)
    assert answer["total"] == expected.total
    assert [i["id"] for i in answer["items"]] == expected.ids[:50].tolist()


def test_evicted_answers_are_made_again(
    client: TestClient, sid: str, synthetic: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from clipbranches.web import sessions

    monkeypatch.setattr(sessions, "MAX_CACHED_ITEMS", 1)  # keep only the newest answer
    base = f"/api/sessions/{sid}"
    client.post(f"{base}/labels", json={"ids": [3, 1964], "label": "positive"})
    first = client.post(f"{base}/refine", json={"seed": 1, "size": 30}).json()
    client.post(f"{base}/refine", json={"seed": 2, "size": 30, "model": "branch"})
    store = client.app.state.store  # type: ignore[attr-defined]
    assert [key[1] for key in store._results] == [1]
    again = client.get(f"{base}/rounds/0?size=30").json()
    assert [i["id"] for i in again["items"]] == [i["id"] for i in first["items"]]
    assert again["total"] == first["total"]


def test_encoder_labels() -> None:
    from clipbranches.web.app import encoder_label

    offline = {"image": "efficientnet-lite0/imagenet", "kind": "offline", "text": "wordllama/l2_supercat-256"}
    assert encoder_label(offline) == "offline efficientnet-lite0/imagenet + wordllama/l2_supercat-256"
    clip = {"kind": "open_clip", "model": "ViT-B-32", "weights": "openai", "dim": 512}
    assert encoder_label(clip) == "open_clip ViT-B-32 (openai)"
    assert encoder_label({"name": "synthetic", "k": 3}) == "synthetic"


def test_deleting_a_session_while_a_round_holds_it(
    synthetic: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    from clipbranches.web.sessions import SessionNotFound

    app = create_app({"syn": synthetic}, state_dir=tmp_path / "state")
    store = app.state.store
    web = store.create("syn")
    results = app.state.engines["syn"].search_image(3, k=5)
    holding = threading.Event()

    def a_round() -> None:  # a round holds the session, then keeps its answer in the store
        with store.hold(web.id):
            holding.set()
            time.sleep(0.3)
            store.remember(web, 0, results)

    working = threading.Thread(target=a_round)
    working.start()
    holding.wait()
    deleting = threading.Thread(target=store.delete, args=(web.id,))
    deleting.start()
    for thread in (working, deleting):
        thread.join(timeout=10)
        assert not thread.is_alive(), "deadlock"
    with pytest.raises(SessionNotFound):
        store.get(web.id)
    assert not (tmp_path / "state" / f"{web.id}.json").exists()
    assert not store._results
    # a request that found the session before the delete and waited for it: not found, not saved
    monkeypatch.setattr(store, "get", lambda sid: web)
    with pytest.raises(SessionNotFound), store.hold(web.id):
        store.save(web)
    assert not (tmp_path / "state" / f"{web.id}.json").exists()


def test_sessions_follow_their_catalog_to_another_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    testing.make_catalog(tmp_path / "a", 300, k=5)
    state = tmp_path / "state"
    monkeypatch.chdir(tmp_path)
    first = TestClient(create_app({"a": "a"}, state_dir=state), base_url=LOCAL)  # a relative path
    sid = first.post("/api/sessions", json={"catalog": "a"}).json()["id"]
    first.post(f"/api/sessions/{sid}/labels", json={"ids": [4], "label": "positive"})
    again = TestClient(create_app({"a": tmp_path / "a"}, state_dir=state), base_url=LOCAL)  # absolute
    assert again.get(f"/api/sessions/{sid}").json()["positives"] == [4]
    (tmp_path / "a").rename(tmp_path / "moved")  # moved: found by its codes
    moved = TestClient(create_app({"m": tmp_path / "moved"}, state_dir=state), base_url=LOCAL)
    info = moved.get(f"/api/sessions/{sid}").json()
    assert info["catalog"] == "m"
    assert info["positives"] == [4]
