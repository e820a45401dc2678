"""The monitoring seam: run a monitoring job for a deployment over a window, keep its report,
and read kept reports back.

:class:`LocalMonitoring` runs :func:`~modelpilot.monitoring.jobs.monitor_deployment` in this
process on a store, an artifact store and the home whose prediction log it reads. Over
``modelpilot server`` (``modelpilot.client.HttpMonitoring``) the server runs the same job on
*its* store and *its* home's prediction log: the log of a data plane that shares that home
(or its volume). Each report is kept as a ``monitoring`` record on the deployment's stable
model version, so the version's history shows how it fared in production.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Protocol, runtime_checkable

from modelpilot.artifacts import ArtifactStore
from modelpilot.errors import InvalidInput, NotFound
from modelpilot.monitoring.jobs import MonitorResult, monitor_deployment
from modelpilot.predictions.bucket import LogBucket, pull_log
from modelpilot.registry.entities import VersionRecord
from modelpilot.registry.records import add_record, get_record, records_of_kind
from modelpilot.release import get_deployment
from modelpilot.store import Store

KIND = "monitoring"
MAX_REPORTS = 200  # one page of list_reports
_SCAN_PAGE = 500


@runtime_checkable
class MonitoringService(Protocol):
    """What ``modelpilot monitor`` and the SDK need of monitoring."""

    def run(
        self, deployment: str, *, window_s: float = 3600.0, until_ms: int | None = None
    ) -> MonitorResult:
        """Score the window ``(until_ms - window_s, until_ms]`` (default: up to now) of the
        deployment's logged traffic, keep the report and return it (``report_id`` set)."""

    def list_reports(self, deployment: str, *, limit: int = 20) -> list[MonitorResult]:
        """Kept reports of a deployment, newest first (at most ``limit``, up to 200)."""

    def get_report(self, deployment: str, report_id: int) -> MonitorResult:
        """One kept report of a deployment."""


class LocalMonitoring:
    """Monitoring in this process. ``home`` holds the prediction log and labels it reads;
    ``actor`` signs the kept reports."""

    def __init__(
        self,
        store: Store,
        artifacts: ArtifactStore,
        home: Path,
        *,
        actor: str | None = None,
        log_bucket: LogBucket | None = None,
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self.home = home
        self.actor = actor
        self.log_bucket = log_bucket  # other machines' segments are pulled from it first

    def run(
        self, deployment: str, *, window_s: float = 3600.0, until_ms: int | None = None
    ) -> MonitorResult:
        """Score a window and keep the report."""
        pull_log(self.home, self.log_bucket)
        result = monitor_deployment(
            self.store,
            self.artifacts,
            self.home,
            deployment,
            window_s=window_s,
            until_ms=until_ms,
        )
        payload = result.to_dict()
        for key in ("report_id", "created_ms"):
            payload.pop(key)
        record = add_record(self.store, result.model, KIND, payload, actor=self.actor)
        return dataclasses.replace(result, report_id=record.id, created_ms=record.created_ms)

    def list_reports(self, deployment: str, *, limit: int = 20) -> list[MonitorResult]:
        """Kept reports of a deployment, newest first."""
        return list_reports(self.store, deployment, limit=limit)

    def get_report(self, deployment: str, report_id: int) -> MonitorResult:
        """One kept report of a deployment."""
        return get_report(self.store, deployment, report_id)


def list_reports(store: Store, deployment: str, *, limit: int = 20) -> list[MonitorResult]:
    """Kept reports of a deployment, newest first (at most ``limit``)."""
    if not 1 <= limit <= MAX_REPORTS:
        raise InvalidInput(
            f"limit must be between 1 and {MAX_REPORTS}; got {limit}.", field="limit"
        )
    get_deployment(store, deployment)  # NotFound names the deployments that exist
    found: list[MonitorResult] = []
    before: int | None = None
    while len(found) < limit:
        page = records_of_kind(store, KIND, before_id=before, limit=_SCAN_PAGE)
        found += [_result(r) for r in page if r.payload.get("deployment") == deployment]
        if len(page) < _SCAN_PAGE:
            break
        before = page[-1].id
    return found[:limit]


def get_report(store: Store, deployment: str, report_id: int) -> MonitorResult:
    """One kept report of a deployment (NotFound for another deployment's report)."""
    try:
        record: VersionRecord | None = get_record(store, report_id)
    except NotFound:
        record = None
    if record is None or record.kind != KIND or record.payload.get("deployment") != deployment:
        raise NotFound(
            f"Deployment {deployment!r} has no monitoring report {report_id}; list them "
            f"with: modelpilot monitor reports {deployment}",
            field="report_id",
        )
    return _result(record)


def _result(record: VersionRecord) -> MonitorResult:
    return MonitorResult.from_dict(
        {**record.payload, "report_id": record.id, "created_ms": record.created_ms}
    )


__all__ = ["KIND", "LocalMonitoring", "MonitoringService", "get_report", "list_reports"]
