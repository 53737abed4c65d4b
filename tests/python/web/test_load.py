"""Load test: a real ``clipbranches serve`` (a subprocess on 127.0.0.1) over a 1M-item synthetic
catalog, and :data:`CLIENTS` clients at once, each in its own session, each running
:data:`LOOPS` loops of search (by item) -> label -> refine -> page 1.

1. The single-client answers first: every client's script, one client after another, through
   the same HTTP API on the same server.
2. Those answers equal the in-process engine's (``SearchEngine.open(catalog)``: the same
   searches, and refine rounds on the labels the server holds, with the same model and seed).
3. Then all clients at once (threads started together, each with its own connection): every
   answer (ids, scores, total of the round's first page and of its page 1, the labels the
   server holds) equals that client's single-client answer, and every request is 2xx.
4. Sessions stay isolated: after every label change, on every page and at the end, a session
   holds exactly its own client's labels. Clients 2j and 2j+1 search the same items and label
   the item at rank 3 oppositely, so a label leaking from one session to another shows.
5. At its end each client asks again for page 1 of its first refine round, which the server
   may have dropped from memory by then and makes again from the round's seed: the same page.

Bounded: :data:`CLIENTS` threads, :data:`LOOPS` loops each, each client within
:data:`CLIENT_SECONDS` and each request within :data:`REQUEST_SECONDS`.

A second test deletes a session while a refine round of it runs: the server must go on
answering (it deadlocked until the session's lock and the store's were taken in one order).
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from clipbranches import Results, SearchEngine
from clipbranches.learn import DEFAULT_MODEL

CLIENTS = 8
LOOPS = 3
#: Loop i's refine options: the default model, then box models (one with other options).
ROUNDS: tuple[dict[str, Any], ...] = (
    {"model": DEFAULT_MODEL},
    {"model": "branch"},
    {"model": "ensemble", "random_negatives": 200, "negative_weight": 2},
)
K = 100  # nearest items of each search
SIZE = 20  # items per page
CLIENT_SECONDS = 120.0
REQUEST_SECONDS = 60.0
NAME = "load"


def query_item(client: int, loop: int, items: int) -> int:
    """The item client ``client`` searches by in loop ``loop``: clients 2j and 2j+1 share it."""
    return (7_919 + (client // 2) * 249_989 + loop * 100_003) % items


def picks(client: int, ids: list[int]) -> tuple[list[int], list[int]]:
    """The positives and negatives a client labels from a search's first page: the item at rank
    3 is a positive for even clients and a negative for odd ones."""
    return (ids[:3], ids[3:5]) if client % 2 == 0 else (ids[:2], ids[2:5])


def seed_of(client: int, loop: int) -> int:
    return 1_000 + 10 * client + loop


@dataclass(frozen=True)
class Shown:
    """A page as compared: the round, its items' ids and scores, the answer's total."""

    round: int
    ids: tuple[int, ...]
    scores: tuple[float, ...]
    total: int


@dataclass(frozen=True)
class Loop:
    """What one loop of a client saw."""

    item: int
    search: Shown
    positives: tuple[int, ...]  # the session's labels after the loop's label requests
    negatives: tuple[int, ...]
    refine: Shown
    page1: Shown


@dataclass
class Client:
    """One client's run: its session and what each loop saw."""

    client: int
    session: str = ""
    loops: list[Loop] = field(default_factory=list)


@dataclass
class Log:
    """Every request of a run: (status, method, path, seconds), and what went wrong."""

    requests: list[tuple[int, str, str, float]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, entry: tuple[int, str, str, float]) -> None:
        with self.lock:
            self.requests.append(entry)

    def problem(self, text: str) -> None:
        with self.lock:
            self.problems.append(text)


class Problem(Exception):
    """A client's run cannot go on (its message says why)."""


def shown(page: Mapping[str, Any]) -> Shown:
    items = page["items"]
    return Shown(page["round"], tuple(i["id"] for i in items), tuple(i["score"] for i in items), page["total"])


def engine_page(results: Results, n: int) -> tuple[tuple[int, ...], tuple[float, ...], int]:
    """Page ``n`` of an in-process answer as the server shows it (a non-finite score as 0.0)."""
    part = results.page(n, SIZE)
    scores = tuple(float(s) if math.isfinite(s) else 0.0 for s in part.scores)
    return tuple(int(i) for i in part.ids), scores, int(results.total)


def run_client(url: str, client: int, items: int, log: Log) -> Client:
    """One client's script: a session, then :data:`LOOPS` loops. Raises :class:`Problem` on a
    non-2xx answer, a session holding labels it was not given, or running out of time."""
    deadline = time.monotonic() + CLIENT_SECONDS
    run = Client(client)
    own: dict[int, str] = {}

    def call(method: str, path: str, **kwargs: Any) -> Any:
        if time.monotonic() > deadline:
            raise Problem(f"client {client}: not done after {CLIENT_SECONDS:.0f} s")
        start = time.perf_counter()
        answer = http.request(method, path, **kwargs)
        log.add((answer.status_code, method, path, time.perf_counter() - start))
        if not answer.is_success:
            raise Problem(f"client {client}: {method} {path} answered {answer.status_code}: {answer.text[:300]}")
        return answer.json()

    def check_labels(info: Mapping[str, Any], where: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
        pos = tuple(info["positives"])
        neg = tuple(info["negatives"])
        mine = (
            tuple(sorted(i for i, s in own.items() if s == "positive")),
            tuple(sorted(i for i, s in own.items() if s == "negative")),
        )
        if (pos, neg) != mine:
            raise Problem(f"client {client} ({where}): the session holds {pos} / {neg}, its own labels are {mine}")
        return pos, neg

    def check_page(page: Mapping[str, Any], where: str) -> None:
        for item in page["items"]:
            if item["label"] != own.get(item["id"], "unlabeled"):
                raise Problem(f"client {client} ({where}): item {item['id']} shows {item['label']!r}")

    with httpx.Client(base_url=url, timeout=REQUEST_SECONDS) as http:
        sid = call("POST", "/api/sessions", json={"catalog": NAME})["id"]
        run.session = sid
        for loop in range(LOOPS):
            item = query_item(client, loop, items)
            search = call("POST", f"/api/sessions/{sid}/search", json={"item": item, "k": K, "size": SIZE})
            check_page(search, f"loop {loop}, search")
            pos, neg = picks(client, [i["id"] for i in search["items"]])
            call("POST", f"/api/sessions/{sid}/labels", json={"ids": pos, "label": "positive"})
            own.update(dict.fromkeys(pos, "positive"))
            info = call("POST", f"/api/sessions/{sid}/labels", json={"ids": neg, "label": "negative"})
            own.update(dict.fromkeys(neg, "negative"))
            positives, negatives = check_labels(info, f"loop {loop}, labels")
            body = {**ROUNDS[loop % len(ROUNDS)], "seed": seed_of(client, loop), "size": SIZE}
            refine = call("POST", f"/api/sessions/{sid}/refine", json=body)
            check_page(refine, f"loop {loop}, refine")
            page1 = call("GET", f"/api/sessions/{sid}/rounds/{refine['round']}", params={"page": 1, "size": SIZE})
            check_page(page1, f"loop {loop}, page 1")
            run.loops.append(Loop(item, shown(search), positives, negatives, shown(refine), shown(page1)))
        # the first refine round again, after this client's later rounds (and others'): by then the
        # server may have dropped its answer from memory and makes it again from its seed
        again = call("GET", f"/api/sessions/{sid}/rounds/1", params={"page": 1, "size": SIZE})
        if shown(again) != run.loops[0].page1:
            raise Problem(f"client {client}: page 1 of round 1 changed when asked again")
        final = call("GET", f"/api/sessions/{sid}")
        check_labels(final, "at the end")
        if final["rounds"] != 2 * LOOPS:
            raise Problem(f"client {client}: its session has {final['rounds']} rounds, not {2 * LOOPS}")
    return run


def run_together(url: str, items: int, log: Log) -> dict[int, Client]:
    """Every client at once (threads released together); a client's :class:`Problem` or error is
    logged and ends that client only."""
    barrier = threading.Barrier(CLIENTS)
    runs: dict[int, Client] = {}

    def client(c: int) -> None:
        try:
            barrier.wait(timeout=30)
            runs[c] = run_client(url, c, items, log)
        except Exception as e:  # every kind of failure is reported by the test, not lost in a thread
            log.problem(f"client {c}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=client, args=(c,), name=f"load-client-{c}") for c in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=CLIENT_SECONDS + REQUEST_SECONDS)
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"clients still running after {CLIENT_SECONDS + REQUEST_SECONDS:.0f} s: {stuck}"
    return runs


def check_in_process(engine: SearchEngine, run: Client) -> None:
    """The single-client answers equal the in-process engine's for the same items, labels, seeds."""
    for loop, seen in enumerate(run.loops):
        search = engine.search_image(seen.item, K)
        assert engine_page(search, 0) == (seen.search.ids, seen.search.scores, seen.search.total), (run.client, loop)
        options = {**ROUNDS[loop % len(ROUNDS)], "seed": seed_of(run.client, loop)}
        results = engine.refine(list(seen.positives), list(seen.negatives), **options)
        for n, page in ((0, seen.refine), (1, seen.page1)):
            assert engine_page(results, n) == (page.ids, page.scores, page.total), (run.client, loop, n)


def latency_summary(log: Log) -> str:
    seconds = sorted(s for *_, s in log.requests)
    return f"{len(seconds)} requests, p50 {statistics.median(seconds) * 1000:.0f} ms, max {seconds[-1] * 1000:.0f} ms"


def test_concurrent_clients_get_the_single_client_answers(
    catalog_1m: Any,  # conftest.BuiltCatalog
    live_server: Callable[[Mapping[str, Path]], str],
    record_property: Callable[[str, object], None],
) -> None:
    record_property("catalog_build_seconds", round(catalog_1m.seconds, 1))
    url = live_server({NAME: catalog_1m.path})

    # 1. one client after another: the reference answers
    alone = Log()
    start = time.perf_counter()
    reference = {c: run_client(url, c, catalog_1m.items, alone) for c in range(CLIENTS)}
    sequential = time.perf_counter() - start
    assert all(status // 100 == 2 for status, *_ in alone.requests)
    sessions = {run.session for run in reference.values()}
    assert len(sessions) == CLIENTS, "every client got a session of its own"
    # the pairs' labels really differ (the isolation check below would see a leak)
    assert reference[0].loops[0].search.ids == reference[1].loops[0].search.ids
    assert reference[0].loops[0].positives != reference[1].loops[0].positives

    # 2. the reference equals the in-process engine
    engine = SearchEngine.open(catalog_1m.path)
    for run in reference.values():
        check_in_process(engine, run)
    del engine

    # 3. every client at once: no error, the same answers, each session its own labels
    together = Log()
    start = time.perf_counter()
    runs = run_together(url, catalog_1m.items, together)
    concurrent = time.perf_counter() - start
    assert not together.problems, "\n".join(together.problems)
    failed = [entry for entry in together.requests if entry[0] // 100 != 2]
    assert not failed, failed
    assert sorted(runs) == list(range(CLIENTS))
    for c, run in runs.items():
        assert run.session not in sessions, "a new session for every run"
        for loop, (got, expected) in enumerate(zip(run.loops, reference[c].loops, strict=True)):
            assert got == expected, f"client {c}, loop {loop}: the concurrent answer differs from the single-client one"

    record_property("sequential_seconds", round(sequential, 1))
    record_property("concurrent_seconds", round(concurrent, 1))
    print(
        f"\nload: 1M catalog made in {catalog_1m.seconds:.1f} s; {CLIENTS} clients x {LOOPS} loops: "
        f"one after another {sequential:.1f} s ({latency_summary(alone)}), "
        f"at once {concurrent:.1f} s ({latency_summary(together)})"
    )


def status_of(answers: dict[str, int | str], key: str, request: Callable[[], httpx.Response]) -> None:
    """``answers[key]``: the status of ``request()``, or the error it raised (e.g. a timeout)."""
    try:
        answers[key] = request().status_code
    except httpx.HTTPError as e:
        answers[key] = repr(e)


def test_deleting_a_session_during_its_refine_leaves_the_server_answering(
    catalog_1m: Any, live_server: Callable[[Mapping[str, Path]], str], tmp_path: Path
) -> None:
    url = live_server({NAME: catalog_1m.path})
    with httpx.Client(base_url=url, timeout=30.0) as http:
        other = http.post("/api/sessions", json={"catalog": NAME}).json()["id"]
        for attempt in range(2):
            sid = http.post("/api/sessions", json={"catalog": NAME}).json()["id"]
            near = http.post(f"/api/catalogs/{NAME}/search", json={"item": query_item(0, attempt, catalog_1m.items)})
            positives = [item["id"] for item in near.json()["items"][:10]]
            assert http.post(f"/api/sessions/{sid}/labels", json={"ids": positives, "label": "positive"}).is_success
            answers: dict[str, int | str] = {}
            # a round of the default model with 10,000 random negatives on 1M items takes about a
            # second: the delete comes while it runs
            body = {"random_negatives": 10_000, "seed": attempt}
            refine = partial(httpx.post, f"{url}/api/sessions/{sid}/refine", json=body, timeout=30.0)
            during = threading.Thread(target=status_of, args=(answers, "refine", refine), daemon=True)
            during.start()
            time.sleep(0.3)
            status_of(answers, "delete", partial(http.delete, f"/api/sessions/{sid}"))
            # the server still answers, for other sessions too
            assert http.get(f"/api/sessions/{other}", timeout=10.0).status_code == 200, (attempt, answers)
            during.join(timeout=35)
            assert answers["delete"] == 204, (attempt, answers)
            assert answers["refine"] in (200, 404), (attempt, answers)  # 404: the delete came first
            assert http.get(f"/api/sessions/{sid}").status_code == 404, (attempt, answers)
            # and its file is gone for good: a restarted server would not offer it again
            assert not list(tmp_path.glob(f"server-*/{sid}.json")), (attempt, answers)
