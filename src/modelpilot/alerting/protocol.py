"""The alert seam: record alerts in the audit log and read them back, local or over HTTP.

An alert raised anywhere (``modelpilot monitor run``, a script with an
:class:`~modelpilot.alerting.AlertManager`) is recorded through :class:`AlertService`, so with
``MODELPILOT_SERVER_URI`` set it lands in the server's store and audit chain
(``modelpilot.client.HttpAlerts``), not in a local file the team never sees. Rules are not
stored: they are the caller's (a YAML list), evaluated where the figures are.
tests/contract/test_audit_alert_service_contract.py runs one suite against every
implementation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from modelpilot.alerting.manager import Alert

# Alerts are events of kind ``alert.<state>`` on the subject ``alert:<deployment or model>``.
ALERT_KIND_PREFIX = "alert."
ALERT_SUBJECT_PREFIX = "alert:"
MAX_ALERT_PAGE = 1000


@dataclass(frozen=True)
class AlertRecord:
    """An alert as recorded: its audit entry id, who recorded it, and the alert itself."""

    id: int
    actor: str
    alert: Alert

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"id": self.id, "actor": self.actor, "alert": self.alert.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlertRecord:
        """The record :meth:`to_dict` wrote."""
        return cls(int(data["id"]), str(data["actor"]), Alert(**data["alert"]))


@runtime_checkable
class AlertService(Protocol):
    """What the CLI and the SDK do with alerts, and nothing more."""

    def record_alert(self, alert: Alert) -> AlertRecord:
        """Append ``alert`` to the audit log (kind ``alert.<state>``)."""

    def list_alerts(
        self, *, subject: str | None = None, state: str | None = None, limit: int = 100
    ) -> list[AlertRecord]:
        """The newest ``limit`` (<= MAX_ALERT_PAGE) recorded alerts, newest first, for one
        subject (deployment or model) and/or state (firing, resolved) when given."""


__all__ = [
    "ALERT_KIND_PREFIX",
    "ALERT_SUBJECT_PREFIX",
    "MAX_ALERT_PAGE",
    "AlertRecord",
    "AlertService",
]
