"""The engine over a catalog set on a Ray cluster: one actor per shard, the same answers.

``SearchEngine.open(set_path, cluster="auto")`` (or :meth:`RayEngine.open`) returns a
:class:`RayEngine`: a :class:`~clipbranches.sharded.ShardedEngine` whose shard workers are Ray
actors running :class:`~clipbranches.sharded.ShardWorker`, each opening its shard by path where
it is placed (the set's directory must be visible there: a shared filesystem, or the same path
on every node). The driver keeps what the local engine keeps (the set's manifest, ids and item
tables for the rows it shows, the labels) and merges the shards' answers exactly as the local
engine does, so every model gives the single catalog's ids, scores, totals, pages and exports.

``cluster`` is ``"auto"`` (the cluster ``RAY_ADDRESS`` or ``ray start`` on this machine names),
``"local"`` (a new Ray on this machine), or an address (``"ray://head:10001"``, ``"head:6379"``;
checked to accept a connection within :data:`CONNECT_TIMEOUT_S` first: Ray itself would retry
for minutes). A process already connected to Ray (``ray.init`` called) uses that cluster,
whatever ``cluster`` says.

Placement: the actors ask for little CPU (``num_cpus=0.1`` each by default): a shard's actor is
idle between rounds and its native scans use the node's cores in bursts, so reserving whole cores
would only cap how many shards a node can serve (five shards on a two-core machine would not fit).
They ask for their shard's size in memory (the codes they map must stay in memory) and are spread
over the nodes (``SPREAD``). ``actor_options`` overrides any of that (``num_cpus``, ``resources``
to pin shards to the nodes holding them, ``runtime_env``...).

A round fans out: every shard's call is submitted before any answer is awaited. Faults: a killed
actor is restarted by Ray (``max_restarts``) and its pending calls retried
(``max_task_retries``); a restarted actor has lost its rounds, so a call that needs one
re-applies the round's scorer first (the shard's proxy keeps what each live round applied) and
gets the identical answer. An actor gone for good is started again. A cluster that cannot be
reached (at open, or later: a driver that lost its connection), or an actor that cannot be
placed, is a :class:`ClusterError`; nothing of the caller's session (labels, rounds) changes:
:meth:`~clipbranches.session.Session.refine` records a round only once it succeeded.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pickle
import socket
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from numpy.typing import NDArray

from clipbranches._optional import require
from clipbranches.exceptions import ClipBranchesError, InvalidArgumentError
from clipbranches.learn.ranking import Ranked
from clipbranches.shard_worker import ShardWorker
from clipbranches.sharded import ShardedEngine
from clipbranches.store.catalog_set import CatalogSet, SetCodes

if TYPE_CHECKING:
    from clipbranches.embed.encoders import Encoder

__all__ = ["DEFAULT_ACTOR_CPUS", "ClusterError", "RayEngine", "RayShard"]

#: The CPUs each shard's actor reserves by default (see the module docstring).
DEFAULT_ACTOR_CPUS = 0.1
#: How long opening waits for every shard's actor to be placed and to open its shard.
START_TIMEOUT_S = 120.0
#: How long connecting waits for the cluster's head to answer.
CONNECT_TIMEOUT_S = 10.0
#: How many times one call is tried again after its actor died for good or lost its round.
RETRIES = 3
#: An argument all shards share (the round's scorer) larger than this, pickled, is put in the
#: object store once; a smaller one travels inside each call (measured: a put costs ~3 ms, a
#: 1 KB argument in 8 calls well under one).
INLINE_BYTES = 256 * 1024


class ClusterError(ClipBranchesError):
    """The Ray cluster cannot be reached, or a shard's actor cannot be placed or kept alive."""


class RoundLost(Exception):  # noqa: N818 (a signal between actor and driver, not an error users see)
    """Raised in an actor asked about a round it does not hold (it was restarted since)."""


class ShardActor(ShardWorker):
    """:class:`ShardWorker` as an actor: a round it does not hold is :class:`RoundLost`."""

    def pid(self) -> int:
        return os.getpid()

    def _check(self, round_id: int, kept: Mapping[int, Any]) -> None:
        with self._lock:
            if round_id not in kept:
                raise RoundLost(round_id)

    def top(self, round_id: int, k: int) -> Ranked:
        self._check(round_id, self._rounds)
        return super().top(round_id, k)

    def ranked(self, round_id: int) -> Ranked:
        self._check(round_id, self._rounds)
        return super().ranked(round_id)

    def pseudo_codes(
        self, round_id: int, positions: NDArray[np.int64], ranks: NDArray[np.int64]
    ) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
        self._check(round_id, self._first_pass)
        return super().pseudo_codes(round_id, positions, ranks)


def _ray() -> Any:
    require("Running on a Ray cluster", "cluster")
    import ray

    return ray


def _connected() -> Any:
    """Ray, once checked that this process is still connected (Ray's own calls would quietly
    start a new local cluster, without the shards' actors)."""
    ray = _ray()
    if not ray.is_initialized():
        raise ClusterError(
            "this process is no longer connected to the Ray cluster (ray.shutdown?): open the engine again"
        )
    return ray


@functools.cache
def _actor_class() -> Any:
    """:class:`ShardActor` as a Ray actor class (made once: Ray exports it to the cluster once)."""
    return _ray().remote(ShardActor)


def connect(cluster: str) -> None:
    """Connect this process to ``cluster`` (module docstring) unless it already is."""
    ray = _ray()
    if ray.is_initialized():
        return
    if not isinstance(cluster, str) or not cluster:
        raise InvalidArgumentError(f"cluster must be 'auto', 'local' or a Ray address, got {cluster!r}")
    address = cluster  # "local": a new local Ray, even where one runs already
    if address not in ("auto", "local"):
        _check_reachable(address)
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    except Exception as e:  # ConnectionError, RuntimeError, TimeoutError... by Ray version and address kind
        raise ClusterError(f"cannot reach the Ray cluster at {cluster!r}: {e}") from e


def _check_reachable(address: str) -> None:
    """A :class:`ClusterError` unless ``host:port`` (of ``ray://host:port`` too) accepts a
    connection within :data:`CONNECT_TIMEOUT_S`: Ray itself retries an unreachable head for
    minutes."""
    hostport = address.removeprefix("ray://").rsplit("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        return  # not host:port (Ray's own forms): Ray says what is wrong
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:
        raise ClusterError(f"cannot reach the Ray cluster at {address!r}: {e}") from e


class RayShard:
    """One shard's actor, called as the engine calls a :class:`ShardWorker` (the same methods),
    plus :meth:`submit` / :meth:`resolve` for fan-outs. It keeps, per live round, what the
    round applied (the scorer, or its object reference when large, and the labelled rows) to
    redo it on an actor that was restarted since."""

    def __init__(self, index: int, path: str, options: Mapping[str, Any]) -> None:
        self.index, self.path = index, path
        self._options = dict(options)
        self._applied: dict[int, tuple[Any, ...]] = {}  # round -> apply's arguments
        self._passed: dict[int, tuple[Any, ...]] = {}  # round -> first_pass's arguments
        self._restart = threading.Lock()
        self.actor = self._start()

    def _start(self) -> Any:
        return _actor_class().options(**self._options).remote(self.path)

    # -- calls ---------------------------------------------------------------------------------

    def submit(self, method: str, *args: Any) -> Any:
        _connected()
        if method == "apply":
            self._applied[args[0]] = args
        elif method == "first_pass":
            self._passed[args[0]] = args
        try:
            return getattr(self.actor, method).remote(*args)
        except Exception as e:  # the driver lost the cluster (the error's type varies with Ray's version)
            raise ClusterError(f"shard {self.index}'s actor ({self.path}) cannot be reached: {e}") from e

    def resolve(self, method: str, args: tuple[Any, ...], ref: Any) -> Any:
        """The answer of ``ref`` (``method(*args)`` submitted), through faults (module docstring)."""
        ray = _connected()
        from ray.exceptions import RayActorError, RayError, RayTaskError

        actor = self.actor
        for attempt in range(RETRIES + 1):
            try:
                answer = ray.get(ref)
            except RayTaskError as e:
                cause = getattr(e, "cause", None)
                if not isinstance(cause, RoundLost) and not isinstance(e, RoundLost):
                    if isinstance(cause, ClipBranchesError):
                        raise cause from e
                    raise
                if attempt == RETRIES:
                    raise ClusterError(f"shard {self.index} ({self.path}) keeps losing its rounds") from e
                with contextlib.suppress(RayError):  # the actor died again: the next attempt sees it
                    self._redo(method, args)
            except (RayActorError, RayError) as e:
                if attempt == RETRIES:
                    raise ClusterError(f"shard {self.index}'s actor ({self.path}) cannot be kept alive: {e}") from e
                if isinstance(e, RayActorError):  # dead for good (restarts used up, or killed without restart)
                    with self._restart:
                        if self.actor is actor:  # not started again by another thread meanwhile
                            self.actor = self._start()
            else:
                if method == "pseudo_codes":
                    self._passed.pop(args[0], None)
                return answer
            actor = self.actor
            try:
                ref = getattr(actor, method).remote(*args)
            except Exception as e:  # the driver lost the cluster (the error's type varies with Ray's version)
                raise ClusterError(f"shard {self.index}'s actor ({self.path}) cannot be reached: {e}") from e
        raise AssertionError("unreachable")  # pragma: no cover

    def _redo(self, method: str, args: tuple[Any, ...]) -> None:
        """Give a restarted actor back the round ``method`` needs."""
        ray = _connected()
        round_id = args[0]
        kept = self._passed if method == "pseudo_codes" else self._applied
        if round_id not in kept:
            raise ClusterError(f"shard {self.index} lost round {round_id}, and this driver has no record of it")
        again = kept[round_id]
        ray.get(getattr(self.actor, "first_pass" if method == "pseudo_codes" else "apply").remote(*again))

    def call(self, method: str, *args: Any) -> Any:
        return self.resolve(method, args, self.submit(method, *args))

    # -- ShardWorker's surface -----------------------------------------------------------------

    def count(self) -> int:
        return int(self.call("count"))

    def codes(self, rows: NDArray[np.int64]) -> NDArray[np.uint8]:
        return self.call("codes", rows)

    def nearest(self, code: NDArray[np.uint8], k: int) -> tuple[NDArray[np.uint32], NDArray[np.int64]]:
        return self.call("nearest", code, k)

    def top(self, round_id: int, k: int) -> Ranked:
        return self.call("top", round_id, k)

    def ranked(self, round_id: int) -> Ranked:
        return self.call("ranked", round_id)

    def pid(self) -> int:
        """The process id of the shard's actor (tests kill it)."""
        return int(self.call("pid"))

    def release(self, round_id: int) -> None:
        """Forget a round, here and in the actor (not waited for; a dead actor holds nothing)."""
        self._applied.pop(round_id, None)
        self._passed.pop(round_id, None)
        with contextlib.suppress(Exception):  # the cluster is gone: nothing is held there any more
            if _ray().is_initialized():  # (Ray would start a new local cluster to send it)
                self.actor.release.remote(round_id)

    def kill(self) -> None:
        with contextlib.suppress(Exception):  # already gone
            if _ray().is_initialized():
                _ray().kill(self.actor, no_restart=True)


class RayEngine(ShardedEngine):
    """:class:`~clipbranches.sharded.ShardedEngine` with one Ray actor per shard (module
    docstring). Open it with :meth:`open`; :meth:`close` stops the actors (they also stop
    with the driver)."""

    def __init__(
        self,
        catalog_set: CatalogSet,
        *,
        cluster: str = "auto",
        actor_options: Mapping[str, Any] | None = None,
        encoder: Encoder | None = None,
        device: str | None = None,
    ) -> None:
        connect(cluster)
        self.cluster = cluster
        self.actor_options = dict(actor_options or {})
        super().__init__(catalog_set, encoder=encoder, device=device)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        encoder: Encoder | None = None,
        device: str | None = None,
        build_index: bool = False,
        cluster: str | None = "auto",
        actor_options: Mapping[str, Any] | None = None,
    ) -> RayEngine:
        """Open the catalog set at ``path`` on ``cluster``: every shard is checked here first
        (with ``build_index``, the shards without an index get one), then each shard's actor
        opens it where it is placed."""
        catalog_set = CatalogSet.open(path)
        if build_index:
            catalog_set.build_index()
        return cls(catalog_set, cluster=cluster or "auto", actor_options=actor_options, encoder=encoder, device=device)

    def _start_workers(self) -> list[ShardWorker]:
        ray = _ray()
        from ray.exceptions import GetTimeoutError, RayError

        shards = []
        for i, shard in enumerate(self.catalog_set.shards):
            options: dict[str, Any] = {
                "num_cpus": DEFAULT_ACTOR_CPUS,
                "memory": max(1, shard.codes.nbytes),
                "max_restarts": RETRIES,
                "max_task_retries": RETRIES,
                "scheduling_strategy": "SPREAD",
            }
            options.update(self.actor_options)
            shards.append(RayShard(i, str(shard.path), options))
        try:
            counts = ray.get([s.actor.count.remote() for s in shards], timeout=START_TIMEOUT_S)
        except GetTimeoutError as e:
            for s in shards:
                s.kill()
            raise ClusterError(
                f"the shards' actors were not all placed within {START_TIMEOUT_S:.0f} s: does the cluster have "
                f"{len(shards)} x {options['num_cpus']} CPUs free (actor_options sets what each asks for)?"
            ) from e
        except RayError as e:
            for s in shards:
                s.kill()
            raise ClusterError(f"a shard's actor could not open its shard: {e}") from e
        sizes = np.diff(self.catalog_set.offsets)
        for s, count, size in zip(shards, counts, sizes, strict=True):
            if int(count) != int(size):
                for other in shards:
                    other.kill()
                raise ClusterError(f"shard {s.index} at {s.path} holds {count} items where its actor runs, not {size}")
        return cast("list[ShardWorker]", shards)  # RayShard offers ShardWorker's surface

    def _map(self, method: str, calls: Sequence[tuple[Any, ...] | None]) -> list[Any]:
        """Every shard's call submitted first, then the answers gathered (each through faults)."""
        ray = _connected()
        shards: list[RayShard] = self.workers  # type: ignore[assignment]
        shared: dict[int, Any] = {}  # an argument every call shares (the scorer), as it travels

        def travel(value: Any) -> Any:
            # A large shared argument is put in the object store once; a small one (a fitted
            # model is usually a few KB) travels inside each call: a put costs more than that.
            if isinstance(value, (int, float, str, np.ndarray)):
                return value
            if id(value) not in shared:
                large = len(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)) > INLINE_BYTES
                shared[id(value)] = ray.put(value) if large else value
            return shared[id(value)]

        sent = [None if args is None else tuple(travel(a) for a in args) for args in calls]
        refs = [None if args is None else s.submit(method, *args) for s, args in zip(shards, sent, strict=True)]
        return [
            None if args is None else s.resolve(method, args, ref)
            for s, args, ref in zip(shards, sent, refs, strict=True)
        ]

    def _codes(self) -> SetCodes:
        """The set's codes, each gather asking all the shards it needs at once."""
        return _FannedCodes(self)

    def pids(self) -> list[int]:
        """The process id of each shard's actor."""
        return [int(p) for p in self._map("pid", [()] * len(self.workers))]

    def close(self) -> None:
        """Stop the shards' actors (this engine cannot be used afterwards)."""
        for shard in self.workers:
            shard.kill()  # type: ignore[attr-defined]


class _FannedCodes(SetCodes):
    """:class:`SetCodes` whose gathers ask the shards holding the rows at once (not in turn)."""

    def __init__(self, engine: RayEngine) -> None:
        self._engine = engine
        workers = engine.workers
        super().__init__(engine.catalog_set.offsets, engine.catalog_set.dim, lambda i, rows: workers[i].codes(rows))

    def gather(self, rows: NDArray[np.int64]) -> NDArray[np.uint8]:
        offsets = self._engine.catalog_set.offsets
        out = np.empty((len(rows), self._engine.catalog_set.dim), np.uint8)
        shard = np.searchsorted(offsets, rows, side="right") - 1
        at = {i: np.flatnonzero(shard == i) for i in np.unique(shard).tolist()}
        calls = [(rows[at[i]] - offsets[i],) if i in at else None for i in range(len(offsets) - 1)]
        for i, codes in enumerate(self._engine._map("codes", calls)):
            if codes is not None:
                out[at[i]] = codes
        return out
