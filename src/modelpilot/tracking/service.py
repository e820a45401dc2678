"""Tracking operations on the metadata store: experiments, runs, params, tags, metrics.

Every function takes the :class:`~modelpilot.store.Store` explicitly and runs one
transaction, so the SDK, the CLI and the REST API share the same rules.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from modelpilot.clock import now_ms
from modelpilot.errors import Conflict, InvalidInput, NotFound, shown
from modelpilot.store import Store
from modelpilot.store.events import record_event
from modelpilot.store.schema import (
    experiments,
    run_artifacts,
    run_inputs,
    run_latest_metrics,
    run_metric_buckets,
    run_metrics,
    run_params,
    run_tags,
    runs,
)
from modelpilot.tracking import points
from modelpilot.tracking.entities import DatasetInput, Experiment, MetricPoint, Run, RunStatus
from modelpilot.tracking.owner import ProcessOwner, current_owner, is_alive
from modelpilot.tracking.validation import (
    check_artifact_path,
    check_key,
    check_run_prefix,
    check_text,
    param_text,
)

MetricRow = tuple[str, float, int, int]  # key, value, step, timestamp_ms
_SHOWN_MATCHES = 10  # run ids listed when a prefix is ambiguous


def get_or_create_experiment(store: Store, name: str) -> Experiment:
    """The experiment called ``name``, created if it does not exist yet."""
    check_key(name, "experiment")
    with store.read() as conn:  # most calls find it: no write lock for them
        row = conn.execute(select(experiments).where(experiments.c.name == name)).first()
    if row is not None:
        return Experiment(id=row.id, name=row.name, created_ms=row.created_ms)
    try:
        with store.write() as conn:
            row = conn.execute(select(experiments).where(experiments.c.name == name)).first()
            if row is None:
                created = now_ms()
                new_id = conn.execute(
                    insert(experiments).values(name=name, created_ms=created)
                ).inserted_primary_key
                assert new_id is not None  # the database always returns the new key
                return Experiment(id=int(new_id[0]), name=name, created_ms=created)
    except IntegrityError:
        # PostgreSQL (READ COMMITTED) does not serialise writers as SQLite's BEGIN IMMEDIATE
        # does: another process inserted the name after our check, so it exists now.
        with store.read() as conn:
            row = conn.execute(select(experiments).where(experiments.c.name == name)).one()
    return Experiment(id=row.id, name=row.name, created_ms=row.created_ms)


def list_experiments(store: Store) -> list[Experiment]:
    """All experiments, oldest first."""
    with store.read() as conn:
        rows = conn.execute(select(experiments).order_by(experiments.c.id)).all()
    return [Experiment(id=r.id, name=r.name, created_ms=r.created_ms) for r in rows]


def create_run(
    store: Store,
    experiment: Experiment,
    *,
    name: str | None = None,
    parent_run_id: str | None = None,
    tags: Mapping[str, str] | None = None,
    code_revision: str | None = None,
    environment: Mapping[str, Any] | None = None,
    owner: ProcessOwner | None = None,
    actor: str | None = None,
    request_key: str | None = None,
) -> Run:
    """Start a new run in ``experiment`` with status RUNNING.

    ``owner`` is the process that will end the run (the SDK passes its own); a run with an
    owner is marked KILLED by :func:`mark_abandoned_runs` once that process is gone. With an
    ``actor`` (the server's caller) the run records who created it and a ``run.created``
    event. A ``request_key`` seen before returns the run it created (a retried request)."""
    run_id = uuid.uuid4().hex
    start = now_ms()
    run_name = check_text(name, "run name", "name") if name else f"run-{run_id[:8]}"
    with store.write() as conn:
        if request_key is not None and not points.claim_key(conn, request_key, run_id):
            run_id = points.applied_run(conn, request_key) or run_id
            return _assemble(conn, [_require_run(conn, run_id)])[0]
        if parent_run_id is not None:
            _require_run(conn, parent_run_id)
        conn.execute(
            insert(runs).values(
                id=run_id,
                experiment_id=experiment.id,
                name=run_name,
                status=RunStatus.RUNNING.value,
                start_ms=start,
                end_ms=None,
                parent_run_id=parent_run_id,
                code_revision=code_revision,
                environment=dict(environment or {}),
                owner_host=owner.host if owner else None,
                owner_pid=owner.pid if owner else None,
                owner_start_ms=owner.start_ms if owner else None,
                owner_boot_id=owner.boot_id if owner else None,
                owner_start_ticks=owner.start_ticks if owner else None,
                created_by=actor,
            )
        )
        if tags:
            _insert_tags(conn, run_id, tags)
        run = _assemble(conn, [_require_run(conn, run_id)])[0]
        if actor is not None:
            payload = {"experiment": experiment.name, "name": run_name, "parent": parent_run_id}
            record_event(conn, "run.created", f"run:{run_id}", actor, payload)
    return run


def end_run(
    store: Store,
    run_id: str,
    status: RunStatus = RunStatus.FINISHED,
    *,
    actor: str | None = None,
) -> None:
    """Mark a run finished (or failed/killed) and stamp its end time (with an ``actor``, a
    ``run.status`` event records the change)."""
    with store.write() as conn:
        before = _require_run(conn, run_id).status
        conn.execute(
            update(runs).where(runs.c.id == run_id).values(status=status.value, end_ms=now_ms())
        )
        if actor is not None and before != status.value:  # a repeated request is no change
            payload = {"before": before, "after": status.value}
            record_event(conn, "run.status", f"run:{run_id}", actor, payload)


def mark_abandoned_runs(store: Store) -> list[str]:
    """Mark KILLED (ended now) the RUNNING runs owned by a process of this host that is gone.

    Called when a workspace opens its store and when runs are listed, so a run left behind
    by a killed process does not stay RUNNING forever. Returns the ids it marked.
    """
    host = current_owner().host
    with store.read() as conn:
        rows = conn.execute(
            select(
                runs.c.id,
                runs.c.owner_pid,
                runs.c.owner_start_ms,
                runs.c.owner_boot_id,
                runs.c.owner_start_ticks,
            ).where(
                runs.c.status == RunStatus.RUNNING.value,
                runs.c.owner_host == host,
                runs.c.owner_pid.is_not(None),
            )
        ).all()
    owners = {
        r.id: ProcessOwner(
            host, r.owner_pid, r.owner_start_ms, r.owner_boot_id, r.owner_start_ticks
        )
        for r in rows
    }
    dead = [run_id for run_id, owner in owners.items() if not is_alive(owner)]
    if dead:
        with store.write() as conn:
            conn.execute(
                update(runs)
                .where(runs.c.id.in_(dead), runs.c.status == RunStatus.RUNNING.value)
                .values(status=RunStatus.KILLED.value, end_ms=now_ms())
            )
    return dead


def log_params(
    store: Store, run_id: str, params: Mapping[str, object], *, actor: str | None = None
) -> None:
    """Record parameters; logging a key again with a different value is a Conflict (with an
    ``actor``, one ``run.params`` event lists the new ones)."""
    texts = {check_key(k, "param"): param_text(k, v) for k, v in params.items()}
    if not texts:
        require_run(store, run_id)  # nothing to log, but an unknown run is still NotFound
        return
    with store.write() as conn:
        _require_run(conn, run_id)
        existing = dict(
            conn.execute(
                select(run_params.c.key, run_params.c.value).where(
                    run_params.c.run_id == run_id, run_params.c.key.in_(list(texts))
                )
            )
            .tuples()
            .all()
        )
        for key, value in texts.items():
            if key in existing and existing[key] != value:
                raise Conflict(
                    f"Param {key!r} of run {run_id[:8]} is already {shown(existing[key])}; "
                    f"cannot change it to {shown(value)}. Params are immutable: start a new "
                    "run, or log the changing value as a metric.",
                    field=key,
                )
        new = [
            {"run_id": run_id, "key": k, "value": v} for k, v in texts.items() if k not in existing
        ]
        if new:
            conn.execute(insert(run_params), new)
            if actor is not None:
                logged = {"params": {row["key"]: row["value"] for row in new}}
                record_event(conn, "run.params", f"run:{run_id}", actor, logged)


def set_tags(
    store: Store, run_id: str, tags: Mapping[str, object], *, actor: str | None = None
) -> None:
    """Set (or overwrite) tags on a run (with an ``actor``, one ``run.tags`` event)."""
    with store.write() as conn:
        _require_run(conn, run_id)
        clean = _insert_tags(conn, run_id, tags)
        if actor is not None and clean:
            record_event(conn, "run.tags", f"run:{run_id}", actor, {"tags": clean})


def log_metric_rows(
    store: Store, run_id: str, rows: Sequence[MetricRow], *, batch_key: str | None = None
) -> bool:
    """Append already-validated metric points of one run in one transaction (False: the
    ``batch_key`` was applied before, nothing written)."""
    return points.log_metric_batches(store, {run_id: rows}, batch_key=batch_key)


def log_metric_batches(store: Store, batches: Mapping[str, Sequence[MetricRow]]) -> None:
    """Append already-validated points for several runs in one transaction."""
    points.log_metric_batches(store, batches)


def record_input(store: Store, run_id: str, name: str, digest: str, role: str) -> None:
    """Record that a run consumed a dataset version (idempotent)."""
    check_key(role, "dataset role")
    with store.write() as conn:
        _require_run(conn, run_id)
        exists = conn.execute(
            select(run_inputs.c.role).where(
                run_inputs.c.run_id == run_id,
                run_inputs.c.dataset_name == name,
                run_inputs.c.dataset_digest == digest,
            )
        ).first()
        if exists is None:
            conn.execute(
                insert(run_inputs).values(
                    run_id=run_id, dataset_name=name, dataset_digest=digest, role=role
                )
            )


def record_artifact(store: Store, run_id: str, path: str, digest: str, size_bytes: int) -> None:
    """Point ``path`` of a run's artifacts at a stored blob (re-logging replaces it)."""
    check_artifact_path(path)
    with store.write() as conn:
        _require_run(conn, run_id)
        conn.execute(
            run_artifacts.delete().where(
                run_artifacts.c.run_id == run_id, run_artifacts.c.path == path
            )
        )
        conn.execute(
            insert(run_artifacts).values(
                run_id=run_id, path=path, digest=digest, size_bytes=size_bytes
            )
        )


def get_run(store: Store, run_id: str) -> Run:
    """A run with its params, tags, latest metrics, datasets and artifacts."""
    with store.read() as conn:
        row = _require_run(conn, run_id)
        return _assemble(conn, [row])[0]


def get_runs(
    store: Store, run_ids: Iterable[str] | None = None, experiment: str | None = None
) -> list[Run]:
    """Several runs at once, newest first (by experiment name, by ids, or all); runs of dead
    processes on this host are marked KILLED first."""
    mark_abandoned_runs(store)
    query = select(runs, experiments.c.name.label("experiment_name")).join(experiments)
    if experiment is not None:
        query = query.where(experiments.c.name == experiment)
    if run_ids is not None:
        query = query.where(runs.c.id.in_(list(run_ids)))
    with store.read() as conn:
        rows = conn.execute(query.order_by(runs.c.start_ms.desc(), runs.c.id)).all()
        return _assemble(conn, rows)


def get_runs_by_id(store: Store, run_ids: Sequence[str]) -> list[Run]:
    """The runs with these ids (in no particular order), without marking abandoned ones."""
    if not run_ids:
        return []
    query = select(runs, experiments.c.name.label("experiment_name")).join(experiments)
    with store.read() as conn:
        return _assemble(conn, conn.execute(query.where(runs.c.id.in_(list(run_ids)))).all())


def get_metric_history(store: Store, run_id: str, key: str) -> list[MetricPoint]:
    """Every point logged for ``key``, ordered by step then time."""
    with store.read() as conn:
        _require_run(conn, run_id)
        rows = conn.execute(
            select(run_metrics.c.value, run_metrics.c.step, run_metrics.c.timestamp_ms)
            .where(run_metrics.c.run_id == run_id, run_metrics.c.key == key)
            .order_by(run_metrics.c.step, run_metrics.c.timestamp_ms, run_metrics.c.id)
        ).all()
        if not rows:
            keys = _metric_keys(conn, run_id)
            raise NotFound(
                f"Run {run_id[:8]} has no metric {key!r}. Logged metrics: "
                f"{', '.join(keys) if keys else 'none'}.",
                field="key",
            )
    return [
        MetricPoint(key=key, value=r.value, step=r.step, timestamp_ms=r.timestamp_ms) for r in rows
    ]


def metric_ranges(
    store: Store, run_ids: Sequence[str]
) -> dict[str, dict[str, tuple[float, float]]]:
    """Lowest and highest value of every metric of these runs: ``{run_id: {key: (min, max)}}``
    (the runs table's min/max columns; the latest value is on the run itself), from the
    series' summaries: one row per metric however many points it has."""
    if not run_ids:
        return {}
    b = run_metric_buckets.c
    query = select(b.run_id, b.key, b.min_value, b.max_value).where(
        b.run_id.in_(list(run_ids)), b.width == 0
    )
    out: dict[str, dict[str, tuple[float, float]]] = {}
    with store.read() as conn:
        for run_id, key, low, high in conn.execute(query).tuples():
            out.setdefault(run_id, {})[key] = (float(low), float(high))
    return out


def child_runs(store: Store, run_id: str, *, limit: int = 500) -> list[Run]:
    """The runs started under ``run_id`` (tuning trials, pipeline steps), oldest first; at
    most ``limit`` of them."""
    query = (
        select(runs, experiments.c.name.label("experiment_name"))
        .join(experiments)
        .where(runs.c.parent_run_id == run_id)
        .order_by(runs.c.start_ms, runs.c.id)
        .limit(limit)
    )
    with store.read() as conn:
        return _assemble(conn, conn.execute(query).all())


def count_metric_points(store: Store, run_id: str, key: str | None = None) -> int:
    """How many points are stored for a run (optionally one key)."""
    query = select(func.count()).select_from(run_metrics).where(run_metrics.c.run_id == run_id)
    if key is not None:
        query = query.where(run_metrics.c.key == key)
    with store.read() as conn:
        return int(conn.execute(query).scalar_one())


def require_run(store: Store, run_id: str) -> None:
    """NotFound unless ``run_id`` names a run (for calls with nothing to write)."""
    with store.read() as conn:
        _require_run(conn, run_id)


def _require_run(conn: Connection, run_id: str) -> Any:
    row = conn.execute(
        select(runs, experiments.c.name.label("experiment_name"))
        .join(experiments)
        .where(runs.c.id == run_id)
    ).first()
    if row is None:
        raise NotFound(f"No run with id {shown(run_id)}.", field="run_id")
    return row


def _metric_keys(conn: Connection, run_id: str) -> list[str]:
    return list(
        conn.execute(
            select(run_metrics.c.key)
            .where(run_metrics.c.run_id == run_id)
            .distinct()
            .order_by(run_metrics.c.key)
        ).scalars()
    )


def _insert_tags(conn: Connection, run_id: str, tags: Mapping[str, object]) -> dict[str, str]:
    clean = {check_key(k, "tag"): param_text(k, v, "tag") for k, v in tags.items()}
    if not clean:
        return clean
    conn.execute(
        run_tags.delete().where(run_tags.c.run_id == run_id, run_tags.c.key.in_(list(clean)))
    )
    conn.execute(
        insert(run_tags), [{"run_id": run_id, "key": k, "value": v} for k, v in clean.items()]
    )
    return clean


def _latest_metrics(conn: Connection, run_ids: list[str]) -> dict[str, dict[str, float]]:
    """Latest value per (run, key): highest step, then newest time, then last inserted (kept
    in ``run_latest_metrics`` by every metric batch, see tracking/points.py)."""
    out: dict[str, dict[str, float]] = {}
    table = run_latest_metrics
    for run_id, key, value in conn.execute(
        select(table.c.run_id, table.c.key, table.c.value).where(table.c.run_id.in_(run_ids))
    ).tuples():
        out.setdefault(run_id, {})[key] = value
    return out


def _key_values(conn: Connection, table: Any, run_ids: list[str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for run_id, key, value in conn.execute(
        select(table.c.run_id, table.c.key, table.c.value).where(table.c.run_id.in_(run_ids))
    ).tuples():
        out.setdefault(run_id, {})[key] = value
    return out


def _assemble(conn: Connection, rows: Sequence[Any]) -> list[Run]:
    ids = [r.id for r in rows]
    if not ids:
        return []
    params = _key_values(conn, run_params, ids)
    tags = _key_values(conn, run_tags, ids)
    metrics = _latest_metrics(conn, ids)
    inputs: dict[str, list[DatasetInput]] = {}
    for r in conn.execute(select(run_inputs).where(run_inputs.c.run_id.in_(ids))).all():
        inputs.setdefault(r.run_id, []).append(
            DatasetInput(r.dataset_name, r.dataset_digest, r.role)
        )
    artifacts: dict[str, dict[str, str]] = {}
    for a in conn.execute(select(run_artifacts).where(run_artifacts.c.run_id.in_(ids))).all():
        artifacts.setdefault(a.run_id, {})[a.path] = a.digest
    return [
        Run(
            id=r.id,
            experiment=r.experiment_name,
            name=r.name,
            status=RunStatus(r.status),
            start_ms=r.start_ms,
            end_ms=r.end_ms,
            parent_run_id=r.parent_run_id,
            code_revision=r.code_revision,
            environment=r.environment,
            params=params.get(r.id, {}),
            metrics=metrics.get(r.id, {}),
            tags=tags.get(r.id, {}),
            datasets=inputs.get(r.id, []),
            artifacts=artifacts.get(r.id, {}),
        )
        for r in rows
    ]


def require_experiment(store: Store, name: str) -> Experiment:
    """The experiment called ``name``, or NotFound listing the ones that exist."""
    with store.read() as conn:
        row = conn.execute(select(experiments).where(experiments.c.name == name)).first()
        if row is None:
            names = list(
                conn.execute(select(experiments.c.name).order_by(experiments.c.name)).scalars()
            )
            raise NotFound(
                f"No experiment named {shown(name)}. Existing experiments: "
                f"{', '.join(names) if names else 'none'}.",
                field="experiment",
            )
    return Experiment(id=row.id, name=row.name, created_ms=row.created_ms)


def resolve_run_id(store: Store, prefix: str) -> str:
    """The full id of the one run whose id starts with ``prefix`` (as ``git`` does for commits).

    No match returns ``prefix`` unchanged, so the lookup that follows raises its usual
    NotFound; several matches are an InvalidInput listing them, because guessing would show
    the wrong run.
    """
    matching = func.substr(runs.c.id, 1, len(check_run_prefix(prefix))) == prefix
    with store.read() as conn:
        matches = list(
            conn.execute(
                select(runs.c.id)
                .where(matching)
                .order_by(runs.c.start_ms.desc(), runs.c.id)
                .limit(_SHOWN_MATCHES + 1)
            ).scalars()
        )
        if prefix in matches or len(matches) == 0:
            return prefix
        if len(matches) == 1:
            return str(matches[0])
        count = int(conn.execute(select(func.count()).where(matching)).scalar_one())
    listed = ", ".join(str(m)[:12] for m in matches[:_SHOWN_MATCHES])
    more = f" and {count - _SHOWN_MATCHES} more" if count > _SHOWN_MATCHES else ""
    raise InvalidInput(
        f"Run id prefix {shown(prefix)} matches {count} runs: {listed}{more}; give more "
        "characters (modelpilot runs list shows the first 8 of each id).",
        field="run_id",
    )


__all__ = [
    "MetricRow",
    "count_metric_points",
    "create_run",
    "end_run",
    "get_metric_history",
    "get_or_create_experiment",
    "get_run",
    "get_runs",
    "get_runs_by_id",
    "list_experiments",
    "log_metric_rows",
    "log_params",
    "mark_abandoned_runs",
    "record_artifact",
    "record_input",
    "require_experiment",
    "resolve_run_id",
    "set_tags",
]
