"""``/api/v1/audit`` (admin: list, export, verify the audit log) and ``/api/v1/alerts``
(viewer reads recorded alerts; editor records one, as the calling token).

The export streams JSON lines from batched reads, so a long log is never built in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from modelpilot.alerting.local import LocalAlerts
from modelpilot.alerting.manager import Alert
from modelpilot.alerting.protocol import MAX_ALERT_PAGE
from modelpilot.audit.local import LocalAudit
from modelpilot.audit.protocol import MAX_AUDIT_PAGE
from modelpilot.server.deps import Admin, Editor, StoreDep, Viewer, json_response
from modelpilot.store import Store

router = APIRouter(prefix="/api/v1", tags=["audit"])


def get_audit(request: Request) -> LocalAudit:
    """The audit service on the server's store."""
    store: Store = request.app.state.store
    return LocalAudit(store)


AuditDep = Annotated[LocalAudit, Depends(get_audit)]
SubjectPrefix = Annotated[
    str | None, Query(max_length=512, description="Only subjects starting with this.")
]
# Integers beyond a 64-bit column overflow the database driver (found by schemathesis).
_MAX_INT = 2**63 - 1
SinceMs = Annotated[
    int | None, Query(ge=0, le=_MAX_INT, description="Only entries at or after this time.")
]


@router.get("/audit/entries")
def list_entries(
    audit: AuditDep,
    _: Admin,
    subject_prefix: SubjectPrefix = None,
    since_ms: SinceMs = None,
    limit: Annotated[int, Query(ge=1, le=MAX_AUDIT_PAGE)] = 100,
    before_id: Annotated[int | None, Query(ge=1, le=_MAX_INT)] = None,
) -> Response:
    """The newest ``limit`` matching entries below ``before_id``, oldest first; pass
    ``next_before_id`` back as ``before_id`` for the page before."""
    page = audit.list_entries(
        subject_prefix=subject_prefix, since_ms=since_ms, limit=limit, before_id=before_id
    )
    entries = [e.to_dict() for e in page.entries]
    return json_response({"entries": entries, "next_before_id": page.next_before_id})


@router.get("/audit/export")
def export(
    audit: AuditDep,
    _: Admin,
    subject_prefix: SubjectPrefix = None,
    since_ms: SinceMs = None,
    limit: Annotated[int | None, Query(ge=1, le=_MAX_INT)] = None,
) -> StreamingResponse:
    """Every matching entry (the newest ``limit``), oldest first, as JSON lines."""
    entries = audit.export(subject_prefix=subject_prefix, since_ms=since_ms, limit=limit)
    lines: Iterator[bytes] = (_json_line(e.to_dict()) for e in entries)
    return StreamingResponse(lines, media_type="application/x-ndjson")


@router.get("/audit/verify")
def verify(
    audit: AuditDep,
    _: Admin,
    expected_head: Annotated[str | None, Query(pattern="^[0-9a-f]{64}$")] = None,
) -> Response:
    """Recompute the hash chain. A broken chain is an answer (``ok: false`` naming the first
    bad entry), not an error: the request itself succeeded."""
    return json_response(audit.verify(expected_head=expected_head).to_dict())


class AlertBody(BaseModel):
    """An alert as :class:`~modelpilot.alerting.Alert` describes it."""

    model_config = ConfigDict(extra="forbid")

    rule: str = Field(min_length=1, max_length=128)
    subject: str = Field(min_length=1, max_length=500)
    metric: str = Field(min_length=1, max_length=256)
    value: float = Field(allow_inf_nan=False)
    threshold: float = Field(allow_inf_nan=False)
    op: Literal[">", ">=", "<", "<="]
    severity: Literal["info", "warning", "critical"]
    state: Literal["pending", "firing", "resolved"]
    since_ms: int = Field(ge=0, le=_MAX_INT)
    time_ms: int = Field(ge=0, le=_MAX_INT)
    message: str = Field(max_length=2000)


@router.post("/alerts", status_code=201)
def record_alert(body: AlertBody, store: StoreDep, who: Editor) -> Response:
    """Record an alert in the audit log (``alert.<state>`` on ``alert:<subject>``), as the
    calling token."""
    record = LocalAlerts(store, actor=who.actor).record_alert(Alert(**body.model_dump()))
    return json_response(record.to_dict(), status_code=201)


@router.get("/alerts")
def list_alerts(
    store: StoreDep,
    _: Viewer,
    subject: Annotated[str | None, Query(max_length=500)] = None,
    state: Literal["pending", "firing", "resolved"] | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ALERT_PAGE)] = 100,
) -> Response:
    """The newest recorded alerts, newest first."""
    found = LocalAlerts(store).list_alerts(subject=subject, state=state, limit=limit)
    return json_response({"alerts": [r.to_dict() for r in found]})


def _json_line(data: dict[str, Any]) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE)
