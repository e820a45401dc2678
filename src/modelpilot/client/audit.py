"""``HttpAudit`` and ``HttpAlerts``: the audit log and alerts on ``modelpilot server``.

Reading the audit log needs an admin token; the export streams JSON lines, read here line by
line, so a long log never sits in memory on either side. Recording an alert needs editor (the
server records the token as its actor); reading alerts needs viewer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from modelpilot.alerting.manager import Alert
from modelpilot.alerting.protocol import AlertRecord
from modelpilot.audit.entities import AuditEntry, AuditVerification
from modelpilot.audit.protocol import AuditPage
from modelpilot.client.transport import DROPPED, HttpService, decode_reply
from modelpilot.errors import Unavailable

_AUDIT = "/api/v1/audit"
_ALERTS = "/api/v1/alerts"


def _params(**values: str | int | None) -> dict[str, str | int]:
    """Query parameters without the unset ones."""
    return {k: v for k, v in values.items() if v is not None}


class HttpAudit(HttpService):
    """:class:`~modelpilot.audit.protocol.AuditService` on ``modelpilot server`` (admin)."""

    def list_entries(
        self,
        *,
        subject_prefix: str | None = None,
        since_ms: int | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> AuditPage:
        """One page of entries, oldest first."""
        params = _params(
            subject_prefix=subject_prefix, since_ms=since_ms, limit=limit, before_id=before_id
        )
        data = self.call("GET", f"{_AUDIT}/entries", params=params, idempotent=True)
        entries = [AuditEntry.from_dict(e) for e in data["entries"]]
        return AuditPage(entries, data["next_before_id"])

    def export(
        self,
        *,
        subject_prefix: str | None = None,
        since_ms: int | None = None,
        limit: int | None = None,
    ) -> Iterator[AuditEntry]:
        """Every matching entry, oldest first, streamed as JSON lines."""
        params = _params(subject_prefix=subject_prefix, since_ms=since_ms, limit=limit)
        url = f"{_AUDIT}/export"
        request = self.http.build_request("GET", url, params=params)
        reply = self.send(
            lambda: self.http.send(request, stream=True), f"GET {url}", idempotent=True
        )
        try:
            if not reply.is_success:
                reply.read()
                decode_reply(reply, self.base_url)
            for line in _lines(reply.iter_lines(), url, self.base_url):
                yield AuditEntry.from_dict(json.loads(line))
        finally:
            reply.close()

    def verify(self, *, expected_head: str | None = None) -> AuditVerification:
        """The server walks and recomputes its chain."""
        params = _params(expected_head=expected_head)
        data = self.call("GET", f"{_AUDIT}/verify", params=params, idempotent=True)
        return AuditVerification.from_dict(data)


class HttpAlerts(HttpService):
    """:class:`~modelpilot.alerting.protocol.AlertService` on ``modelpilot server``."""

    def record_alert(self, alert: Alert) -> AlertRecord:
        """Record the alert in the server's audit log (editor). Not repeated after a dropped
        connection: it could be recorded twice."""
        data = self.call("POST", _ALERTS, alert.to_dict(), idempotent=False)
        return AlertRecord.from_dict(data)

    def list_alerts(
        self, *, subject: str | None = None, state: str | None = None, limit: int = 100
    ) -> list[AlertRecord]:
        """The newest recorded alerts, newest first."""
        params = _params(subject=subject, state=state, limit=limit)
        data = self.call("GET", _ALERTS, params=params, idempotent=True)
        return [AlertRecord.from_dict(r) for r in data["alerts"]]


def _lines(lines: Iterator[str], url: str, base_url: str) -> Iterator[str]:
    """The non-empty lines of a streamed answer; a stream that breaks off is Unavailable."""
    try:
        for line in lines:
            if line.strip():
                yield line
    except DROPPED as exc:
        raise Unavailable(
            f"The export from {url} at {base_url} broke off ({type(exc).__name__}); what was "
            "received is incomplete. Try again."
        ) from exc


__all__ = ["HttpAlerts", "HttpAudit"]
