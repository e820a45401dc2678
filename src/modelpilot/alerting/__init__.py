"""Alerting: rules on monitored figures, de-duplicated notifications, and action hooks.

Owns when an alert fires or resolves and where it is sent; never computes the figures (the
monitors do) and never acts itself (registered hooks such as rollback or retrain do).
"""

from __future__ import annotations

from modelpilot.alerting.local import LocalAlerts
from modelpilot.alerting.manager import (
    Alert,
    AlertManager,
    Hook,
    Sink,
    build_alert,
    load_rules,
    next_alert,
    notify,
)
from modelpilot.alerting.protocol import AlertRecord, AlertService
from modelpilot.alerting.rules import AlertRule
from modelpilot.alerting.sinks import (
    ConsoleSink,
    EventSink,
    LogFileSink,
    ServiceSink,
    WebhookSink,
)

__all__ = [
    "Alert",
    "AlertManager",
    "AlertRecord",
    "AlertRule",
    "AlertService",
    "ConsoleSink",
    "EventSink",
    "Hook",
    "LocalAlerts",
    "LogFileSink",
    "ServiceSink",
    "Sink",
    "WebhookSink",
    "build_alert",
    "load_rules",
    "next_alert",
    "notify",
]
