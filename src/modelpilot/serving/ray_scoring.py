"""Batch scoring on Ray (``modelpilot score --executor ray``): the local scorer's output,
with the model's predictions computed by a pool of Ray actors.

This process reads the input in chunks (the local scorer's reader), sends each chunk's
model columns to the least busy actor, and attaches the predictions that come back to the
chunk it kept, in input order, through the local scorer's writer
(:func:`~modelpilot.serving.scoring.write_scored`). So the output is the local scorer's,
column for column, and a failure leaves no output file. Each actor loaded the model once in
its constructor (:meth:`PackageRef.load`: the package fetched by digest and every file
re-hashed, trust decided by this side exactly as ``mp.load_model`` decides it, never by the
package). This process never loads the model: the registry's signature says which columns
to send and which come back, so it neither imports the model's framework nor runs its code
(on 2 cores that load, competing with the actors' own, cost ~1.5 s of a job's start).

Why Ray actors and not Ray Data's ``map_batches``: measured on 2 cores with 2,000,000 rows
(benchmarks/scoring.py), Ray Data returned the rows of a multi-row-group file out of order
despite ``preserve_order`` (the second half first), ran at 0.22x of the local scorer (every
row crossed the object store both ways, plus a read task and a repartition), and waits
forever on a dead actor of its fixed pool after other jobs on the cluster (ray-project/ray
#62746). Here only the model's columns go out and three columns come back, the order is this
process's, and a dead actor fails the job at once.

One actor per node, running as many threads as the node has CPUs (the local scorer's threads
sharing one model): one Ray worker start and one model load per node rather than per CPU.
Measured on 2 cores, each actor's start (worker boot, modelpilot and the model's framework
imported, the package loaded) costs ~4.5 CPU-seconds; two of them competing with this process
for the same cores were most of the job's fixed cost. Each node keeps one copy of the model.

Memory: at most two chunks per thread are in flight; an actor holds its model and the chunks
its threads work on. Actors are not restarted and calls are not retried: a worker that dies
fails the job (Unavailable), and a bad value fails it at once (InvalidInput naming the column
and the file row).

>>> threads_per_node([2.0, 0.0, 4.0], workers=None)
[2, 0, 4]
>>> threads_per_node([2.0, 4.0], workers=3)
[1, 2]
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from modelpilot.artifacts.configured import open_artifact_store
from modelpilot.config import Settings
from modelpilot.errors import ModelpilotError, Unavailable
from modelpilot.models import LoadedModel, TrustPolicy, load_package
from modelpilot.models.signature import Signature
from modelpilot.ray_cluster import (
    connect,
    driver_folders,
    refuse_unshared_artifacts,
    use_folders,
)
from modelpilot.serving.scoring import (
    attach_predictions,
    check_score_paths,
    empty_output,
    input_schema,
    missing_text_of,
    model_inputs,
    predict_columns,
    read_chunks,
    write_scored,
)
from modelpilot.serving.threads import limit_native_threads

OPTION = "--executor ray"
IN_FLIGHT_PER_THREAD = 2  # one chunk computing, one waiting: a thread never idles on the driver


@dataclass(frozen=True)
class PackageRef:
    """What a worker needs to load a registered version itself: the settings that say where
    the blobs are, the package digest, and the trust the caller's side decided (the version's
    recorded types plus the caller's flags)."""

    settings: Settings
    digest: str
    trust: TrustPolicy
    name: str
    version: int

    def load(self) -> LoadedModel:
        """Fetch (or reuse this machine's verified copy of) the package and load it."""
        return load_package(
            open_artifact_store(self.settings),
            self.digest,
            trust=self.trust,
            cache_dir=self.settings.home / "cache" / "packages",
            name=self.name,
            version=self.version,
        )


class ScoreActor:
    """One Ray actor of the pool, one per node: loads the model once, then predicts chunks on
    as many threads as Ray gives it (``max_concurrency``), like the local scorer's threads."""

    def __init__(self, package: PackageRef, folders: list[str]) -> None:
        use_folders(folders)  # the caller's import path: python_function models' code
        limit_native_threads(1)  # one core per thread, as one thread of the local scorer
        self.model: LoadedModel | None = None
        self.load_error: ModelpilotError | None = None
        try:
            refuse_unshared_artifacts(package.settings)
            self.model = package.load()
        except ModelpilotError as exc:
            # kept for the first call: Ray reports a constructor's error as ActorDiedError
            # with its text only, and the caller must see UnsafeModel, CorruptArtifact, ...
            self.load_error = exc

    def predict(self, inputs: pa.Table, offset: int, missing_text: float | None) -> pa.Table:
        """The prediction columns for ``inputs`` (the file's rows from ``offset``)."""
        if self.model is None:
            raise self.load_error or Unavailable("The scoring actor has no model.")
        return predict_columns(self.model, inputs, offset, missing_text)


def threads_per_node(node_cpus: list[float], *, workers: int | None) -> list[int]:
    """How many scoring threads each node runs: its whole CPUs by default, or ``workers``
    threads in all, shared out in proportion to the nodes' CPUs (largest remainders first).
    A node with no whole CPU (a head started with ``--num-cpus 0``) gets none."""
    whole = [int(cpus) for cpus in node_cpus]
    total = sum(whole)
    if not workers or not total:
        return whole
    shares = [workers * cpus / total for cpus in whole]
    threads = [int(share) for share in shares]
    by_remainder = sorted(range(len(whole)), key=lambda i: threads[i] - shares[i])
    for index in by_remainder[: workers - sum(threads)]:
        threads[index] += 1
    return threads


@dataclass
class ScoringPool:
    """The actors of one scoring job (one per node) and the threads each runs, loading the
    model under the caller's trust (an untrusted or altered package fails the job with the
    error ``mp.load_model`` raises); :meth:`close` kills them."""

    ray: Any
    actors: list[Any]
    threads: list[int]

    def close(self) -> None:
        """Kill the pool's actors (idempotent: Ray ignores an actor already gone)."""
        for actor in self.actors:
            self.ray.kill(actor)


@dataclass(frozen=True)
class NodeShare:
    """One actor of the plan: the node it is pinned to, its threads and the CPUs it asks for."""

    node_id: str
    threads: int
    cpus: int


def plan_actors(nodes: list[dict[str, Any]], *, workers: int | None) -> list[NodeShare]:
    """One actor per alive node that gets threads (``ray.nodes()``'s records); Unavailable
    when no node has a whole CPU, rather than actors that would wait for CPUs forever.

    >>> nodes = [{"NodeID": "head", "Alive": True, "Resources": {}},
    ...          {"NodeID": "w1", "Alive": True, "Resources": {"CPU": 2.0}}]
    >>> plan_actors(nodes, workers=None)
    [NodeShare(node_id='w1', threads=2, cpus=2)]
    """
    alive = [node for node in nodes if node.get("Alive")]
    cpus = [float(node.get("Resources", {}).get("CPU", 0)) for node in alive]
    plan = threads_per_node(cpus, workers=workers)
    if not any(plan):
        raise Unavailable(
            f"The Ray cluster has no node with a whole CPU to score on (CPUs per alive node: "
            f"{cpus}). Start a node with CPUs (`ray start --address ... --num-cpus N`) or "
            "score without --executor ray."
        )
    return [
        NodeShare(node["NodeID"], count, min(count, int(node_cpus)))
        for node, node_cpus, count in zip(alive, cpus, plan, strict=True)
        if count
    ]


def start_pool(package: PackageRef, *, address: str | None, workers: int | None) -> ScoringPool:
    """Join (or start) the cluster and start one actor per node with CPUs, pinned to it and
    asking for the CPUs its threads use (``workers`` threads in all, default one per CPU of
    the cluster); returns at once, the actors load in the background."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    ray = connect(address, option=OPTION)
    shares = plan_actors(ray.nodes(), workers=workers)
    actors = [
        ray.remote(ScoreActor)
        .options(
            num_cpus=share.cpus,
            max_concurrency=share.threads,
            scheduling_strategy=NodeAffinitySchedulingStrategy(share.node_id, soft=False),
            max_restarts=0,
            max_task_retries=0,
        )
        .remote(package, driver_folders())
        for share in shares
    ]
    return ScoringPool(ray, actors, [share.threads for share in shares])


def score_file_on_ray(
    signature: Signature,
    pool: ScoringPool,
    source: Path,
    target: Path,
    *,
    batch_rows: int = 100_000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Score ``source`` into ``target`` with ``pool``'s actors; returns the number of rows,
    and closes the pool either way. ``signature`` is the version's (the registry's copy):
    the columns sent to the actors and those of an empty output."""
    try:
        check_score_paths(source, target)
        chunks, _total = read_chunks(source, batch_rows, signature)
        return write_scored(
            target,
            _scored(pool, chunks, signature, missing_text_of(source)),
            lambda: empty_output(signature, input_schema(source, signature)),
            progress,
        )
    except Exception as exc:
        raise _job_error(exc, source) from exc
    finally:
        pool.close()


def _scored(
    pool: ScoringPool, chunks: Iterator[pa.Table], signature: Signature, missing: float | None
) -> Iterator[pa.Table]:
    """Scored chunks in input order; each chunk goes to the actor with the most free threads."""
    busy = [0] * len(pool.actors)
    in_flight: deque[tuple[pa.Table, Any, int]] = deque()  # (chunk, its call, the actor)
    capacity = IN_FLIGHT_PER_THREAD * sum(pool.threads)

    def oldest() -> pa.Table:
        chunk, call, index = in_flight.popleft()
        predictions = pool.ray.get(call)
        busy[index] -= 1
        return attach_predictions(chunk, predictions)

    offset = 0
    for chunk in chunks:
        index = min(range(len(busy)), key=lambda i: busy[i] / pool.threads[i])
        call = pool.actors[index].predict.remote(model_inputs(signature, chunk), offset, missing)
        in_flight.append((chunk, call, index))
        busy[index] += 1
        offset += chunk.num_rows
        while len(in_flight) >= capacity:
            yield oldest()
    while in_flight:
        yield oldest()


def _job_error(exc: BaseException, source: Path) -> BaseException:
    """The error to show for a failed Ray job: our own error when a worker raised one (a bad
    value: InvalidInput), else Unavailable saying a worker or the cluster failed."""
    seen: list[BaseException] = []
    current: Any = exc
    while current is not None and current not in seen:
        seen.append(current)
        if isinstance(current, ModelpilotError):  # Ray's copy subclasses it: rebuild ours
            ours = next(c for c in type(current).__mro__ if c.__module__ == "modelpilot.errors")
            rebuilt: BaseException = ours(current.message, field=current.field)
            return rebuilt
        current = getattr(current, "cause", None) or current.__cause__
    names = " <- ".join(type(e).__name__ for e in seen)
    return Unavailable(
        f"Scoring {source} on Ray failed: a worker or the cluster failed ({names}: "
        f"{str(seen[-1])[:300]}). No output was written; run it again (or without "
        "--executor ray)."
    )


__all__ = [
    "NodeShare",
    "PackageRef",
    "ScoreActor",
    "ScoringPool",
    "plan_actors",
    "score_file_on_ray",
    "start_pool",
    "threads_per_node",
]
