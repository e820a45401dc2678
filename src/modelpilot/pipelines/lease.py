"""Leases on pipeline runs: the owner heartbeats, a stale lease is reclaimed exactly once.

A RUNNING pipeline run names its ``owner`` (``host:pid:random``) and the time of its last
``heartbeat_ms``. The owner calls :func:`heartbeat` while it runs; an agent calls
:func:`reclaim_abandoned` to mark runs whose owner stopped heartbeating FAILED. The reclaim
is a conditional UPDATE on the state and the heartbeat it saw, in the same transaction as the
step runs' changes and the audit event, so two agents never both reclaim one run and a run
whose owner heartbeats in between is left alone. A reclaimed run no longer counts against its
trigger's concurrency limit (that counts RUNNING pipeline runs).
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from dataclasses import dataclass

from sqlalchemy import Connection, case, or_, select, update

from modelpilot.pipelines.entities import PipelineState, StepState
from modelpilot.store import Store
from modelpilot.store.events import record_event
from modelpilot.store.schema import pipeline_runs, runs, step_runs
from modelpilot.tracking.entities import RunStatus


@dataclass(frozen=True)
class Reclaimed:
    """A pipeline run an agent marked FAILED because its owner stopped heartbeating."""

    pipeline_run_id: str
    pipeline: str
    owner: str | None
    heartbeat_ms: int | None
    reason: str


def owner_id() -> str:
    """A fresh lease owner id: ``host:pid:random`` (a restarted process never reuses one).

    >>> owner_id().count(":") >= 2
    True
    """
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def heartbeat(store: Store, pipeline_run_id: str, owner: str, now_ms: int) -> bool:
    """Renew ``owner``'s lease on a RUNNING pipeline run; False when the run is no longer
    RUNNING or no longer ``owner``'s (it was reclaimed: the owner should stop)."""
    with store.write() as conn:
        changed = conn.execute(
            update(pipeline_runs)
            .where(
                pipeline_runs.c.id == pipeline_run_id,
                pipeline_runs.c.state == PipelineState.RUNNING.value,
                pipeline_runs.c.owner == owner,
            )
            .values(heartbeat_ms=now_ms)
        ).rowcount
    return bool(changed == 1)


def reclaim_abandoned(store: Store, now_ms: int, *, lease_ms: int, actor: str) -> list[Reclaimed]:
    """Mark FAILED every RUNNING pipeline run whose heartbeat is older than ``lease_ms`` at
    ``now_ms`` (its RUNNING steps FAILED, its PENDING steps SKIPPED); the runs this call
    reclaimed, oldest heartbeat first (one another agent reclaimed first is not among them)."""
    cutoff = now_ms - lease_ms
    with store.read() as conn:
        stale = conn.execute(
            select(
                pipeline_runs.c.id,
                pipeline_runs.c.pipeline,
                pipeline_runs.c.owner,
                pipeline_runs.c.heartbeat_ms,
            )
            .where(
                pipeline_runs.c.state == PipelineState.RUNNING.value,
                or_(
                    pipeline_runs.c.heartbeat_ms < cutoff,
                    pipeline_runs.c.heartbeat_ms.is_(None) & (pipeline_runs.c.created_ms < cutoff),
                ),
            )
            .order_by(pipeline_runs.c.heartbeat_ms, pipeline_runs.c.id)
        ).all()
    found = [
        Reclaimed(r.id, r.pipeline, r.owner, r.heartbeat_ms, _reason(r.owner, r.heartbeat_ms))
        for r in stale
    ]
    return [r for r in found if _reclaim(store, r, now_ms, actor)]


def _reclaim(store: Store, found: Reclaimed, now_ms: int, actor: str) -> bool:
    """One transaction: the run FAILED if it is still RUNNING with the heartbeat we saw."""
    with store.write() as conn:
        seen = (
            pipeline_runs.c.heartbeat_ms.is_(None)
            if found.heartbeat_ms is None
            else pipeline_runs.c.heartbeat_ms == found.heartbeat_ms
        )
        changed = conn.execute(
            update(pipeline_runs)
            .where(
                pipeline_runs.c.id == found.pipeline_run_id,
                pipeline_runs.c.state == PipelineState.RUNNING.value,
                seen,
            )
            .values(state=PipelineState.FAILED.value, error=found.reason, ended_ms=now_ms)
        ).rowcount
        if changed != 1:
            return False
        _end_unfinished_steps(conn, found, now_ms)
        _kill_tracking_runs(conn, found.pipeline_run_id, now_ms)
        record_event(
            conn,
            "pipeline.reclaimed",
            f"pipeline_run:{found.pipeline_run_id}",
            actor,
            {"before": {"state": "RUNNING", "owner": found.owner}, "reason": found.reason},
        )
    return True


def _end_unfinished_steps(conn: Connection, found: Reclaimed, now_ms: int) -> None:
    """RUNNING steps become FAILED and PENDING ones SKIPPED, in one statement: on PostgreSQL
    two statements (RUNNING first, then PENDING) miss a step the owner moves from PENDING to
    RUNNING between them, which then ends SUCCEEDED in a FAILED run. One statement waits for
    the owner's row lock and decides on the state the owner committed."""
    running = step_runs.c.state == StepState.RUNNING.value
    conn.execute(
        update(step_runs)
        .where(
            step_runs.c.pipeline_run_id == found.pipeline_run_id,
            step_runs.c.state.in_([StepState.RUNNING.value, StepState.PENDING.value]),
        )
        .values(
            state=case((running, StepState.FAILED.value), else_=StepState.SKIPPED.value),
            error=case((running, found.reason), else_=step_runs.c.error),
            ended_ms=now_ms,
        )
    )


def _kill_tracking_runs(conn: Connection, pipeline_run_id: str, now_ms: int) -> None:
    """The run's parent tracking run and its steps' child runs that are still RUNNING end
    KILLED, as a crashed process's runs do, so `runs list` does not show them running."""
    parent = select(pipeline_runs.c.run_id).where(pipeline_runs.c.id == pipeline_run_id)
    children = select(step_runs.c.run_id).where(step_runs.c.pipeline_run_id == pipeline_run_id)
    conn.execute(
        update(runs)
        .where(
            or_(runs.c.id.in_(parent), runs.c.id.in_(children)),
            runs.c.status == RunStatus.RUNNING.value,
        )
        .values(status=RunStatus.KILLED.value, end_ms=now_ms)
    )


def _reason(owner: str | None, heartbeat_ms: int | None) -> str:
    if heartbeat_ms is None:
        return f"abandoned: owner {owner or 'unknown'} never heartbeat"
    stamp = dt.datetime.fromtimestamp(heartbeat_ms / 1000, tz=dt.UTC)
    return (
        f"abandoned: owner {owner or 'unknown'} stopped heartbeating at "
        f"{stamp.strftime('%Y-%m-%d %H:%M:%S UTC')}"
    )


__all__ = ["Reclaimed", "heartbeat", "owner_id", "reclaim_abandoned"]
