"""Batch scoring on Ray Data (``modelpilot score --executor ray``): the same output as
:func:`~modelpilot.serving.scoring.score_file`, computed by a pool of Ray actors.

``read_parquet`` (or ``read_csv``) streams the input, a streaming ``repartition`` cuts it
into blocks of ``batch_rows`` rows, and ``map_batches`` hands
``batch_rows`` rows at a time to a fixed pool of actors, each of which loaded the model once
in its constructor (:meth:`PackageRef.load`: the package fetched by digest and every file
re-hashed, trust decided by this side exactly as ``mp.load_model`` decides it, never by the
package); the results come back to this process in input order and go through the local
scorer's writer (:func:`~modelpilot.serving.scoring.write_scored`), so the columns, their
order and their types are the local scorer's, and a failure leaves no output file.

Memory: an actor holds one model and one batch at a time; Ray Data's streaming executor
bounds the blocks in flight (its object-store budget) and this process writes each result
as it arrives. Actors are not restarted and batches are not retried: a worker that dies fails
the job (Unavailable), and a bad value fails it at once (InvalidInput naming the column).

>>> cpus_per_actor(cluster_cpus=2, actors=2), cpus_per_actor(cluster_cpus=64, actors=32)
(0.5, 1.0)
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from modelpilot.artifacts.configured import open_artifact_store
from modelpilot.config import Settings
from modelpilot.errors import ModelpilotError, Unavailable
from modelpilot.models import LoadedModel, TrustPolicy, load_package
from modelpilot.ray_cluster import connect, driver_import_path
from modelpilot.serving.app import limit_native_threads
from modelpilot.serving.scoring import (
    check_score_paths,
    empty_output,
    input_schema,
    score_chunk,
    write_scored,
)

OPTION = "--executor ray"


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
    """One Ray actor of the pool: loads the model once, then scores batch after batch."""

    def __init__(self, package: PackageRef) -> None:
        limit_native_threads(1)  # one core per actor, as one thread of the local scorer
        self.model = package.load()

    def __call__(self, batch: pa.Table) -> pa.Table:
        """The batch scored (its rows are not numbered in the file: ``offset`` None)."""
        return score_chunk(self.model, batch, None)


def cpus_per_actor(*, cluster_cpus: float, actors: int) -> float:
    """The CPUs each actor asks Ray for: one, or less when the pool would otherwise take every
    CPU and leave none for the read tasks (which would then never run: a deadlock)."""
    return min(1.0, max(0.01, (cluster_cpus - 1) / actors)) if actors else 1.0


def score_file_on_ray(
    model: LoadedModel,
    package: PackageRef,
    source: Path,
    target: Path,
    *,
    address: str | None = None,
    batch_rows: int = 100_000,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Score ``source`` into ``target`` on Ray; returns the number of rows.

    ``model`` is this side's load of ``package`` (it proves trust before any worker starts
    and gives the columns of an empty output); ``workers`` is the actor pool's size (default:
    the cluster's CPUs)."""
    check_score_paths(source, target)
    ray = connect(address, option=OPTION)
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    cluster_cpus = float(ray.cluster_resources().get("CPU", 1))
    actors = workers or max(1, int(cluster_cpus))
    read = ray.data.read_parquet if source.suffix.lower() == ".parquet" else ray.data.read_csv
    dataset = read(str(source))
    context = dataset.context
    context.execution_options.preserve_order = True  # rows come back in input order
    context.enable_progress_bars = False  # the CLI draws its own
    context.print_on_execution_start = False
    context.raise_original_map_exception = True  # InvalidInput, not "UDF failed"
    # One file is one read task, whose output reaches the next operator as one bundle (one
    # actor's work); a streaming repartition into blocks of one batch each lets every actor
    # share a single large file, holding one batch at a time.
    dataset = dataset.repartition(target_num_rows_per_block=batch_rows)
    with warnings.catch_warnings():
        # Ray 2.60 has no named parameter for max_restarts / max_task_retries and warns
        # about passing them; its default (restart and retry forever) would rerun a batch
        # that kills its worker forever, so they are passed anyway.
        warnings.simplefilter("ignore", ray.util.annotations.RayDeprecationWarning)
        scored = dataset.map_batches(
            ScoreActor,
            fn_constructor_args=(package,),
            batch_size=batch_rows,
            batch_format="pyarrow",
            zero_copy_batch=True,
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=cpus_per_actor(cluster_cpus=cluster_cpus, actors=actors),
            runtime_env={"env_vars": driver_import_path()},  # python_function models' code
            max_restarts=0,
            max_task_retries=0,
        )
    tables: Iterator[pa.Table] = scored.iter_batches(batch_size=None, batch_format="pyarrow")
    try:
        return write_scored(
            target, tables, lambda: empty_output(model, input_schema(source)), progress
        )
    except Exception as exc:
        raise _job_error(exc, source) from exc


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


__all__ = ["PackageRef", "ScoreActor", "cpus_per_actor", "score_file_on_ray"]
