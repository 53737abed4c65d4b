"""Refine rounds through ``clipbranches serve`` (HTTP, a server in its own process) against the
same rounds as in-process engine calls in the same run: requests per second and p50/p99 latency
for 1, 4 and 16 concurrent sessions, and the HTTP overhead per round.

    python benchmarks/serve.py                                  # 1M and 10M items; 1, 4, 16 sessions
    python benchmarks/serve.py --sizes 1000000 --concurrency 1,4 --rounds 2 --trials 1

Each of C clients (threads, one keep-alive HTTP connection each) has its own session, labelled
once as in benchmarks/engine.py (10 positives from one cluster of the synthetic catalog, 10
negatives from others; client c uses run c's labels), then runs refine rounds with the default
model, each with a seed of its own; the clients start together. A round is
``POST /api/sessions/{id}/refine`` answering its first page (60 items with their metadata, as
JSON; the server saves the session before answering). The in-process side runs the same rounds
as ``engine.refine(positives, negatives, seed=...)`` from C threads of this process, with the
same labels and seeds. Each concurrency has ``--trials`` turns of ``--rounds`` rounds per client
on each side, the sides taking turns (a spell of load from other programs falls on both), and
every HTTP answer's first page (ids, total) is checked against the in-process one.

Columns: rounds per second (a turn's rounds / its wall time from the common start to the last
answer; the median over the turns); p50 and p99 of one round's latency (nearest rank over all
of a side's rounds: with few rounds, p99 is the slowest); HTTP overhead = HTTP p50 - in-process
p50 (at 1 session: the cost of the HTTP layer per round: JSON, the page's metadata, saving the
session, the loopback round trip); and the throughput ratio HTTP / in-process. Client and
server share the machine's CPUs (and with whatever else runs: the load average is printed).

Catalogs (``testing.make_catalog``, seed 0, with their index) are kept in ``--cache-dir`` (default
``.cache/serve``) and reused by later runs: 1M items take about 70 MB, 10M about 700 MB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from clipbranches import DEFAULT_K, SearchEngine, testing
from clipbranches.learn import DEFAULT_MODEL
from engine import labels_for
from harness import machine_line

CACHE = Path(__file__).resolve().parent.parent / ".cache" / "serve"


# -- catalogs and the server (the load test uses these too: tests/python/web) ----------------


def cached_catalog(cache_dir: Path, n: int) -> tuple[Path, float]:
    """The synthetic catalog of ``n`` items (seed 0) with its index, in ``cache_dir``: made and
    indexed unless a previous run finished it. Returns its path and the seconds spent making it
    (0 when it was cached)."""
    path = cache_dir / f"synthetic-{n}"
    ready = cache_dir / f"synthetic-{n}.ready"  # written last: a half-made catalog is made again
    if ready.is_file() and path.is_dir():
        return path, 0.0
    cache_dir.mkdir(parents=True, exist_ok=True)
    ready.unlink(missing_ok=True)
    start = time.perf_counter()
    testing.make_catalog(path, n, seed=0, overwrite=True).build_index()
    ready.write_text(f"{n}\n")
    return path, time.perf_counter() - start


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(
    catalogs: Mapping[str, Path], state_dir: Path, *, timeout: float = 120.0, tries: int = 5, settle: bool = False
) -> Iterator[str]:
    """``clipbranches serve`` on ``catalogs`` (name -> path) in a subprocess on a free loopback
    port; yields its base URL once it answers with exactly these catalogs, stops it afterwards.

    The port is found free, then bound by the server: if another program takes it in between,
    the server exits and another port is tried. Its output goes to ``state_dir/server.log``.
    ``settle``: also wait (at most 60 s) until the server is idle: what it does beside its first
    requests (loading the catalogs' towers) is done and will not slow down timed rounds."""
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / "server.log"
    specs = [f"{name}={path}" for name, path in catalogs.items()]
    for _ in range(tries):
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "-m", "clipbranches.cli", "serve", *specs, "--port", str(port)]
        with open(log_path, "ab") as log:
            process = subprocess.Popen([*command, "--state-dir", str(state_dir)], stdout=log, stderr=log)
        try:
            if _wait_ready(process, url, sorted(catalogs), timeout, log_path):
                if settle:
                    _wait_idle(process.pid)
                yield url
                return
        finally:
            _stop(process)
    raise RuntimeError(f"the server did not start in {tries} tries; its log:\n{_tail(log_path)}")


def _wait_ready(process: subprocess.Popen[bytes], url: str, names: list[str], timeout: float, log: Path) -> bool:
    """True once the server at ``url`` answers with ``names``; False if it exited (its port was
    taken); RuntimeError if it does not answer within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            if "address already in use" in _tail(log):
                return False
            raise RuntimeError(f"the server exited with {process.returncode}; its log:\n{_tail(log)}")
        try:
            about = httpx.get(f"{url}/api", timeout=2.0)
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        if about.status_code == 200 and about.json().get("catalogs") == names:
            return True
        time.sleep(0.1)  # another server on this port: ours exits when it cannot bind
    raise RuntimeError(f"the server did not answer in {timeout:.0f} s; its log:\n{_tail(log)}")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _wait_idle(pid: int, timeout: float = 60.0) -> None:
    """Until process ``pid`` uses under 5% of a CPU over half a second (Linux; elsewhere: 5 s)."""
    if not Path(f"/proc/{pid}/stat").is_file():
        time.sleep(5.0)
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = _cpu_seconds(pid)
        time.sleep(0.5)
        if _cpu_seconds(pid) - before < 0.025:
            return


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server: gracefully (SIGINT); a second SIGINT makes uvicorn stop waiting for its
    requests; killed if it still runs (a server stuck in a request)."""
    for wait in (5.0, 3.0):
        if process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=wait)  # a healthy server stops in a second or two
            return
        except subprocess.TimeoutExpired:
            pass
    process.kill()
    process.wait()


def _tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


# -- measuring ---------------------------------------------------------------------------------


def run_clients(clients: int, work: Callable[[int], list[float]]) -> tuple[float, list[float]]:
    """Run ``work(client)`` in ``clients`` threads started together; the wall time from the common
    start to the last one's end, and every latency they returned. An error in a thread is
    raised here."""
    barrier = threading.Barrier(clients + 1)
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []

    def client(c: int) -> None:
        barrier.wait()
        try:
            latencies[c] = work(c)
        except BaseException as e:  # re-raised by the caller's thread
            errors.append(e)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise errors[0]
    return wall, [x for per in latencies for x in per]


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(np.ceil(q * len(ordered))) - 1))]


Answer = tuple[list[int], int]  # a round's first page as compared: its ids, and the total


class Bench:
    """One catalog's rounds: each client's labels and seeds, and both sides' answers to compare."""

    def __init__(self, path: Path, n: int, model: str, rounds: int) -> None:
        self.engine = SearchEngine.open(path)
        self.labels = testing.labels(n, seed=0)
        self.model = model
        self.rounds = rounds
        self.local: dict[tuple[int, int], Answer] = {}
        self.remote: dict[tuple[int, int], Answer] = {}

    def labels_of(self, client: int) -> tuple[list[int], list[int]]:
        pos, neg = labels_for(self.labels, client)
        return [int(i) for i in pos], [int(i) for i in neg]

    def seed(self, client: int, trial: int, r: int) -> int:
        return 100_000 * client + self.rounds * trial + r

    def in_process(self, trial: int) -> Callable[[int], list[float]]:
        def work(client: int) -> list[float]:
            pos, neg = self.labels_of(client)
            times = []
            for r in range(self.rounds):
                seed = self.seed(client, trial, r)
                start = time.perf_counter()
                results = self.engine.refine(pos, neg, model=self.model, seed=seed)
                times.append(time.perf_counter() - start)
                first = results.page(0, DEFAULT_K)
                self.local[(client, seed)] = ([int(i) for i in first.ids], int(results.total))
            return times

        return work

    def over_http(self, url: str, sessions: list[str], trial: int) -> Callable[[int], list[float]]:
        def work(client: int) -> list[float]:
            times = []
            with httpx.Client(base_url=url, timeout=600.0) as http:
                for r in range(self.rounds):
                    seed = self.seed(client, trial, r)
                    body = {"model": self.model, "seed": seed, "size": DEFAULT_K}
                    start = time.perf_counter()
                    answer = http.post(f"/api/sessions/{sessions[client]}/refine", json=body)
                    times.append(time.perf_counter() - start)
                    page = _ok(answer)
                    self.remote[(client, seed)] = ([item["id"] for item in page["items"]], page["total"])
            return times

        return work

    def check(self) -> None:
        """Every HTTP answer equals the in-process one of the same labels and seed."""
        for key, got in self.remote.items():
            if got != self.local[key]:
                raise SystemExit(f"client {key[0]}, seed {key[1]}: the server's answer differs from the engine's")

    def sessions(self, url: str, clients: int, name: str) -> list[str]:
        """``clients`` new sessions, each labelled with its client's labels."""
        ids = []
        with httpx.Client(base_url=url, timeout=60.0) as http:
            for c in range(clients):
                sid = _ok(http.post("/api/sessions", json={"catalog": name}))["id"]
                pos, neg = self.labels_of(c)
                _ok(http.post(f"/api/sessions/{sid}/labels", json={"ids": pos, "label": "positive"}))
                if neg:
                    _ok(http.post(f"/api/sessions/{sid}/labels", json={"ids": neg, "label": "negative"}))
                ids.append(sid)
        return ids


def _ok(answer: httpx.Response) -> Any:
    if not answer.is_success:
        request = answer.request
        raise RuntimeError(f"{request.method} {request.url.path}: {answer.status_code} {answer.text[:500]}")
    return answer.json()


def bench_size(n: int, args: argparse.Namespace, state_root: Path) -> list[str]:
    path, built = cached_catalog(args.cache_dir, n)
    made = f"made and indexed in {built:.1f} s" if built else f"cached in {args.cache_dir}"
    print(f"\n{n:,} items: catalog {made}; load average {_load()}", flush=True)
    bench = Bench(path, n, args.model, args.rounds)
    rows = []
    with running_server({"bench": path}, state_root / f"state-{n}", settle=True) as url:
        # warm both sides (page cache, thread pools, first imports); not timed
        bench.engine.refine(*bench.labels_of(99), model=args.model, seed=0)
        (warm,) = bench.sessions(url, 1, "bench")
        _ok(httpx.post(f"{url}/api/sessions/{warm}/refine", json={"model": args.model, "seed": 0}, timeout=600.0))
        for clients in args.concurrency:
            sessions = bench.sessions(url, clients, "bench")
            rates: dict[str, list[float]] = {"local": [], "http": []}
            times: dict[str, list[float]] = {"local": [], "http": []}
            for trial in range(args.trials):  # the two sides take turns, so both see the same spells of load
                sides = [("local", bench.in_process(trial)), ("http", bench.over_http(url, sessions, trial))]
                for side, work in sides if trial % 2 == 0 else sides[::-1]:
                    wall, latencies = run_clients(clients, work)
                    rates[side].append(clients * args.rounds / wall)
                    times[side].extend(latencies)
            bench.check()
            local_rps, http_rps = statistics.median(rates["local"]), statistics.median(rates["http"])
            l50, l99 = (nearest_rank(times["local"], q) * 1000 for q in (0.5, 0.99))
            h50, h99 = (nearest_rank(times["http"], q) * 1000 for q in (0.5, 0.99))
            rows.append(
                f"| {n:,} | {clients} | {len(times['http'])} | {http_rps:,.2f} | {h50:,.1f} | {h99:,.1f} | "
                f"{local_rps:,.2f} | {l50:,.1f} | {l99:,.1f} | {h50 - l50:+,.1f} ms | {http_rps / local_rps:.2f} |"
            )
            print(f"  {clients} sessions: {http_rps:.2f} rounds/s over HTTP, {local_rps:.2f} in process", flush=True)
    return rows


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,10000000", help="catalog sizes, comma-separated")
    parser.add_argument("--concurrency", default="1,4,16", help="concurrent sessions, comma-separated")
    parser.add_argument("--rounds", type=int, default=4, help="refine rounds per client and trial (default 4)")
    parser.add_argument("--trials", type=int, default=3, help="turns of each side per concurrency (default 3)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"refine model (default {DEFAULT_MODEL})")
    parser.add_argument("--cache-dir", type=Path, default=CACHE, help=f"where catalogs are kept (default {CACHE})")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c]
    if min(args.rounds, args.trials) < 1 or args.rounds * args.trials > 100_000 or not sizes:
        parser.error("--rounds and --trials need positive values (and at most 100,000 rounds per client)")
    if not args.concurrency or min(args.concurrency) < 1:
        parser.error("--concurrency needs positive values")

    import fastapi
    import uvicorn

    print(
        f"serve benchmark: refine rounds ({args.model}) over HTTP vs in process, "
        f"{args.trials} trials of {args.rounds} rounds per session"
    )
    print(f"{machine_line()}, fastapi {fastapi.__version__}, uvicorn {uvicorn.__version__}, httpx {httpx.__version__}")
    state_root = Path(tempfile.mkdtemp(prefix="cb-serve-bench-"))
    try:
        rows = [row for n in sizes for row in bench_size(n, args, state_root)]
    finally:
        shutil.rmtree(state_root, ignore_errors=True)
    columns = [
        "items",
        "sessions",
        "rounds",
        "HTTP rounds/s",
        "HTTP p50 ms",
        "HTTP p99 ms",
        "in-process rounds/s",
        "in-process p50 ms",
        "in-process p99 ms",
        "HTTP overhead p50",
        "throughput HTTP / in-process",
    ]
    print()
    print("| " + " | ".join(columns) + " |")
    print("|---" * len(columns) + "|")
    for row in rows:
        print(row)
    print(f"\n(load average at the end: {_load()})")


if __name__ == "__main__":
    main()
