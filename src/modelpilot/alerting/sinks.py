"""Alert sinks: a webhook (POST JSON), a JSON-lines log file, the console, the audit log
(through the alert service: the local store, or the server's)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import httpx
from rich.console import Console

from modelpilot.alerting.local import LocalAlerts
from modelpilot.alerting.manager import Alert
from modelpilot.alerting.protocol import AlertService
from modelpilot.store import Store

_COLOURS = {"info": "blue", "warning": "yellow", "critical": "red"}


class WebhookSink:
    """POSTs each alert as JSON; retries a bounded number of times, then raises."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 5.0,
        attempts: int = 3,
        client: httpx.Client | None = None,
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.attempts = attempts
        self.client = client

    def send(self, alert: Alert) -> None:
        """Deliver, retrying on connection errors and 5xx answers."""
        client = self.client or httpx.Client(timeout=self.timeout_s)
        try:
            last: Exception | None = None
            for _ in range(self.attempts):
                try:
                    reply = client.post(self.url, json=alert.to_dict())
                    if reply.status_code < 500:
                        reply.raise_for_status()
                        return
                    last = httpx.HTTPStatusError(
                        f"{reply.status_code}", request=reply.request, response=reply
                    )
                except httpx.TransportError as exc:
                    last = exc
            raise RuntimeError(f"webhook {self.url} failed after {self.attempts} attempts: {last}")
        finally:
            if self.client is None:
                client.close()


class LogFileSink:
    """Appends one JSON line per alert (fsynced: an alert log that loses alerts is useless)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def send(self, alert: Alert) -> None:
        """Append the alert."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(alert.to_dict(), sort_keys=True) + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())


class ConsoleSink:
    """Prints a coloured line per alert."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)

    def send(self, alert: Alert) -> None:
        """Print the alert."""
        colour = _COLOURS.get(alert.severity, "white") if alert.state == "firing" else "green"
        self.console.print(
            f"[{colour}]{alert.state.upper()}[/{colour}] {alert.message}", highlight=False
        )


class ServiceSink:
    """Records each alert through an :class:`~modelpilot.alerting.protocol.AlertService`: in
    the local store's audit log, or the server's when a server is configured."""

    def __init__(self, alerts: AlertService) -> None:
        self.alerts = alerts

    def send(self, alert: Alert) -> None:
        """Record the alert as an ``alert.<state>`` event."""
        self.alerts.record_alert(alert)


class EventSink(ServiceSink):
    """Records alerts in a local store's event table, so history and the UI can show them."""

    def __init__(self, store: Store) -> None:
        super().__init__(LocalAlerts(store))
