"""Pipeline runs and step runs in the metadata store; every write is one transaction.

State changes are compare-and-set: an update names the states it expects to find, and a row
in any other state is a Conflict, never overwritten. That is what lets a later agent take a
lease on a run (``owner``, ``heartbeat_ms``) without doubling a step.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from modelpilot.clock import now_ms
from modelpilot.errors import Conflict, InvalidInput, NotFound
from modelpilot.pipelines.entities import PipelineRun, PipelineState, StepRun, StepState
from modelpilot.store import Store
from modelpilot.store.lookup import resolve_prefix
from modelpilot.store.schema import pipeline_runs, step_runs


@dataclass(frozen=True)
class PlannedStep:
    """A step run to create as PENDING: its node name, step, inputs' nodes and attempts."""

    name: str
    step: str
    upstream: tuple[str, ...]
    max_attempts: int


def create_pipeline_run(
    store: Store,
    *,
    pipeline: str,
    target: str,
    params: Mapping[str, Any],
    run_id: str | None,
    executor: str,
    steps: Sequence[PlannedStep],
    owner: str,
) -> PipelineRun:
    """A RUNNING pipeline run and its PENDING step runs, in one transaction."""
    stamp = now_ms()
    run_key = uuid.uuid4().hex
    with store.write() as conn:
        conn.execute(
            insert(pipeline_runs).values(
                id=run_key,
                pipeline=pipeline,
                target=target,
                state=PipelineState.RUNNING.value,
                params=dict(params),
                run_id=run_id,
                executor=executor,
                created_ms=stamp,
                owner=owner,
                heartbeat_ms=stamp,
            )
        )
        for position, planned in enumerate(steps):
            conn.execute(
                insert(step_runs).values(
                    id=uuid.uuid4().hex,
                    pipeline_run_id=run_key,
                    name=planned.name,
                    step=planned.step,
                    position=position,
                    state=StepState.PENDING.value,
                    attempt=0,
                    max_attempts=planned.max_attempts,
                    upstream=list(planned.upstream),
                )
            )
        return _load(conn, run_key)


def update_step(
    store: Store, step_run_id: str, expect: Iterable[StepState], **values: Any
) -> StepRun:
    """Set columns of a step run that is in one of the ``expect`` states (else Conflict)."""
    allowed = [s.value for s in expect]
    if isinstance(values.get("state"), StepState):
        values["state"] = values["state"].value
    with store.write() as conn:
        changed = conn.execute(
            update(step_runs)
            .where(step_runs.c.id == step_run_id, step_runs.c.state.in_(allowed))
            .values(heartbeat_ms=now_ms(), **values)
        ).rowcount
        row = conn.execute(select(step_runs).where(step_runs.c.id == step_run_id)).first()
        if row is None:
            raise NotFound(f"No step run with id {step_run_id!r}.", field="step_run_id")
        if changed != 1:
            raise Conflict(
                f"Step run {row.name!r} ({step_run_id[:8]}) is {row.state}, expected "
                f"{' or '.join(allowed)}; another process changed it.",
                field="state",
            )
        return _step(row)


def finish_pipeline_run(
    store: Store, pipeline_run_id: str, state: PipelineState, error: str | None = None
) -> PipelineRun:
    """End a RUNNING pipeline run; in the same transaction, steps that never started become
    SKIPPED and a step still RUNNING (the engine was interrupted) becomes FAILED."""
    stamp = now_ms()
    with store.write() as conn:
        changed = conn.execute(
            update(pipeline_runs)
            .where(
                pipeline_runs.c.id == pipeline_run_id,
                pipeline_runs.c.state == PipelineState.RUNNING.value,
            )
            .values(state=state.value, error=error, ended_ms=stamp, heartbeat_ms=stamp)
        ).rowcount
        if changed != 1:
            raise Conflict(
                f"Pipeline run {pipeline_run_id[:8]} is not RUNNING; it was ended elsewhere.",
                field="state",
            )
        of_run = step_runs.c.pipeline_run_id == pipeline_run_id
        conn.execute(
            update(step_runs)
            .where(of_run, step_runs.c.state == StepState.RUNNING.value)
            .values(
                state=StepState.FAILED.value,
                ended_ms=stamp,
                error=f"The pipeline run ended while this step was running: {error}",
            )
        )
        conn.execute(
            update(step_runs)
            .where(of_run, step_runs.c.state == StepState.PENDING.value)
            .values(state=StepState.SKIPPED.value, ended_ms=stamp)
        )
        return _load(conn, pipeline_run_id)


def find_cached(store: Store, key: str) -> StepRun | None:
    """The newest SUCCEEDED step run with cache key ``key``, if any."""
    with store.read() as conn:
        row = conn.execute(
            select(step_runs)
            .where(step_runs.c.cache_key == key, step_runs.c.state == StepState.SUCCEEDED.value)
            .order_by(step_runs.c.ended_ms.desc(), step_runs.c.id)
            .limit(1)
        ).first()
    return None if row is None else _step(row)


def get_pipeline_run(store: Store, run_key: str) -> PipelineRun:
    """A pipeline run with its steps, by id or a unique id prefix."""
    with store.read() as conn:
        return _load(conn, _resolve(conn, run_key))


def list_pipeline_runs(
    store: Store, *, pipeline: str | None = None, limit: int = 50
) -> list[PipelineRun]:
    """Pipeline runs, newest first, with their steps."""
    if limit < 1:
        raise InvalidInput(f"limit must be at least 1; got {limit}.", field="limit")
    query = select(pipeline_runs.c.id).order_by(
        pipeline_runs.c.created_ms.desc(), pipeline_runs.c.id
    )
    if pipeline is not None:
        query = query.where(pipeline_runs.c.pipeline == pipeline)
    with store.read() as conn:
        keys = list(conn.execute(query.limit(limit)).scalars())
        return [_load(conn, str(k)) for k in keys]


def _resolve(conn: Connection, prefix: str) -> str:
    return resolve_prefix(conn, pipeline_runs.c.id, prefix, what="pipeline run",
                          hint="pipelines list", field="run_id")  # fmt: skip


def _load(conn: Connection, run_key: str) -> PipelineRun:
    row = conn.execute(select(pipeline_runs).where(pipeline_runs.c.id == run_key)).first()
    if row is None:
        raise NotFound(f"No pipeline run with id {run_key!r}.", field="run_id")
    steps = conn.execute(
        select(step_runs)
        .where(step_runs.c.pipeline_run_id == run_key)
        .order_by(step_runs.c.position)
    ).all()
    return PipelineRun(
        id=row.id,
        pipeline=row.pipeline,
        target=row.target,
        state=PipelineState(row.state),
        params=dict(row.params),
        run_id=row.run_id,
        executor=row.executor,
        error=row.error,
        created_ms=row.created_ms,
        ended_ms=row.ended_ms,
        steps=tuple(_step(s) for s in steps),
    )


def _step(row: Row[Any]) -> StepRun:
    return StepRun(
        id=row.id,
        pipeline_run_id=row.pipeline_run_id,
        name=row.name,
        step=row.step,
        position=row.position,
        state=StepState(row.state),
        attempt=row.attempt,
        max_attempts=row.max_attempts,
        upstream=tuple(row.upstream),
        code_hash=row.code_hash,
        cache_key=row.cache_key,
        inputs=row.inputs,
        output=row.output,
        run_id=row.run_id,
        cached_from=row.cached_from,
        error=row.error,
        log_tail=row.log_tail,
        started_ms=row.started_ms,
        ended_ms=row.ended_ms,
    )


__all__ = [
    "PlannedStep",
    "create_pipeline_run",
    "find_cached",
    "finish_pipeline_run",
    "get_pipeline_run",
    "list_pipeline_runs",
    "update_step",
]
