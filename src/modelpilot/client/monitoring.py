"""``HttpMonitoring``: monitoring jobs run by ``modelpilot server``.

The server scores the window on its own store and on the prediction log in its own home (a
data plane sharing that home or its volume); the report comes back as JSON. Running a job is
not repeated after a dropped connection (it would keep a second report).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from modelpilot.client.transport import HttpService

if TYPE_CHECKING:  # monitoring (scipy, the drift methods) loads on first use, not with the SDK
    from modelpilot.monitoring.jobs import MonitorResult


def _result(data: Any) -> MonitorResult:
    from modelpilot.monitoring.jobs import MonitorResult

    return MonitorResult.from_dict(data)


def _reports(deployment: str) -> str:
    return f"/api/v1/monitoring/{quote(deployment, safe='')}/reports"


class HttpMonitoring(HttpService):
    """:class:`~modelpilot.monitoring.service.MonitoringService` on ``modelpilot server``."""

    def run(
        self, deployment: str, *, window_s: float = 3600.0, until_ms: int | None = None
    ) -> MonitorResult:
        """Have the server score a window and keep the report (editor)."""
        body = {"window_s": window_s, "until_ms": until_ms}
        data = self.call("POST", _reports(deployment), body, idempotent=False)
        return _result(data)

    def list_reports(self, deployment: str, *, limit: int = 20) -> list[MonitorResult]:
        """Kept reports, newest first (viewer)."""
        data = self.call("GET", _reports(deployment), params={"limit": limit}, idempotent=True)
        return [_result(r) for r in data["reports"]]

    def get_report(self, deployment: str, report_id: int) -> MonitorResult:
        """One kept report (viewer)."""
        path = f"{_reports(deployment)}/{int(report_id)}"
        return _result(self.call("GET", path, idempotent=True))


__all__ = ["HttpMonitoring"]
