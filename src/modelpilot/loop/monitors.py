"""Monitors that run themselves: each deployment whose policy has a ``monitoring:`` section is
scored every ``every`` over its last ``window`` of logged traffic, and its alert rules are
checked against the figures.

All the state is in the metadata store, so a restarted agent continues and two agents on one
database agree:

- *Is it due?* The newest report (:meth:`MonitoringService.list_reports`) and the newest
  claim are both older than ``every``. The claim is a ``monitor.claimed`` event on
  ``monitor:<deployment>``, recorded in one write transaction that first locks the
  deployment's row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE``
  serialises writers anyway) and checks the newest claim: of two agents at the same time,
  one claims and the other finds it not due. A run that fails after its claim is tried again
  after ``every``, not at every iteration.
- *Which alerts change?* The newest recorded alert of each rule on the deployment (the
  ``alert.<state>`` events of :mod:`modelpilot.alerting`) is its state; the next one
  (:func:`~modelpilot.alerting.next_alert`) is recorded in the same locked transaction that
  read it. A condition that persists over many windows fires once; ``for_s`` is measured
  between the windows' end times.

Alerts carry ``time_ms`` = the window's end, which ``on_alert`` triggers compare with their
clock. Never starts training itself: the policy's ``on_alert`` triggers do.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select

from modelpilot.alerting import AlertRecord, AlertRule, Sink, next_alert, notify
from modelpilot.alerting.local import last_alerts, record_alert_in
from modelpilot.errors import NotFound, said, shown
from modelpilot.loop.policy import Monitoring
from modelpilot.loop.service import latest_loop_policies
from modelpilot.monitoring.jobs import MonitorResult
from modelpilot.monitoring.service import MonitoringService
from modelpilot.store import Store
from modelpilot.store.events import record_event
from modelpilot.store.schema import deployments, events

CLAIM_KIND = "monitor.claimed"
CLAIM_SUBJECT_PREFIX = "monitor:"
_MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class MonitorOutcome:
    """One deployment's monitoring run: the report, the alerts it recorded, or the error."""

    deployment: str
    window: str
    result: MonitorResult | None = None
    alerts: tuple[AlertRecord, ...] = ()
    watched: tuple[str, ...] = ()  # the figures the rules look at, in rule order
    error: str | None = None

    def line(self) -> str:
        """One line for the agent's output.

        >>> MonitorOutcome("churn-prod", "1h", error="No deployment named 'x'.").line()
        "monitoring churn-prod failed: No deployment named 'x'."
        """
        if self.error is not None or self.result is None:
            return f"monitoring {self.deployment} failed: {self.error}"
        if self.result.rows == 0:
            return f"monitored {self.deployment}: no logged requests in the window"
        shown_figures = [
            f"{name}={self.result.figures[name]:.4g}"
            for name in self.watched
            if name in self.result.figures
        ]
        line = f"monitored {self.deployment} ({self.window}, {self.result.rows:,} rows)"
        line += f": {', '.join(shown_figures)}" if shown_figures else ""
        changes = [f"alert {r.alert.rule} {r.alert.state}" for r in self.alerts]
        return line + (f" -> {'; '.join(changes)}" if changes else "")


def run_due_monitors(
    store: Store,
    monitoring: MonitoringService,
    now_ms: int,
    *,
    actor: str,
    sinks: Sequence[Sink] = (),
) -> list[MonitorOutcome]:
    """Run every monitor due at ``now_ms`` and record the alerts that change; one outcome
    per deployment monitored now, by deployment name.

    ``store`` holds the policies, the claims and the alert state (alerts are recorded in its
    audit log, as :class:`~modelpilot.alerting.LocalAlerts` does); ``monitoring`` scores the
    window ``(now_ms - window, now_ms]`` and keeps the report. ``sinks`` (a console, a
    webhook) are told each recorded alert after it is committed. A monitor that raises
    gives an outcome with the error and never stops the other deployments.
    """
    outcomes: list[MonitorOutcome] = []
    for revision in latest_loop_policies(store):
        settings = revision.policy.monitoring
        if settings is None:
            continue
        name = revision.deployment
        try:
            if not _report_due(monitoring, name, settings, now_ms):
                continue
            if not _claim(store, name, settings, now_ms, actor):
                continue
            outcome = _monitor(store, monitoring, name, settings, now_ms, actor)
        except Exception as exc:  # one deployment's broken monitor must not stop the others
            outcomes.append(MonitorOutcome(name, settings.window, error=_error_text(exc)))
            continue
        for record in outcome.alerts:
            notify(sinks, record.alert)
        outcomes.append(outcome)
    return outcomes


def _report_due(
    monitoring: MonitoringService, deployment: str, settings: Monitoring, now_ms: int
) -> bool:
    """True when the newest kept report (any, a manual ``monitor run`` included) ended
    ``every`` or longer before now."""
    newest = monitoring.list_reports(deployment, limit=1)
    return not newest or now_ms - newest[0].window_end_ms >= settings.every_ms


def _claim(store: Store, deployment: str, settings: Monitoring, now_ms: int, actor: str) -> bool:
    """Record that ``actor`` monitors the window ending at ``now_ms``, unless a claim newer
    than ``every`` exists (another agent took it): one locked transaction."""
    subject = CLAIM_SUBJECT_PREFIX + deployment
    with store.write() as conn:
        _lock(conn, deployment)
        last = conn.execute(
            select(events.c.payload)
            .where(events.c.subject == subject, events.c.kind == CLAIM_KIND)
            .order_by(events.c.id.desc())
            .limit(1)
        ).scalar()
        if last is not None and now_ms - int(last["window_end_ms"]) < settings.every_ms:
            return False
        payload = {
            "window_end_ms": now_ms,
            "window": settings.window,
            "every_ms": settings.every_ms,
        }
        record_event(conn, CLAIM_KIND, subject, actor, payload)  # last: see record_event
    return True


def _monitor(
    store: Store,
    monitoring: MonitoringService,
    deployment: str,
    settings: Monitoring,
    now_ms: int,
    actor: str,
) -> MonitorOutcome:
    result = monitoring.run(deployment, window_s=settings.window_ms / 1000, until_ms=now_ms)
    rules = [r for r in settings.rules if r.watches(deployment, r.metric)]
    watched = tuple(dict.fromkeys(r.metric for r in rules))
    observed = [r for r in rules if r.metric in result.figures]
    if not observed:
        return MonitorOutcome(deployment, settings.window, result, (), watched)
    recorded = _record_alerts(store, deployment, observed, result, actor)
    return MonitorOutcome(deployment, settings.window, result, recorded, watched)


def _record_alerts(
    store: Store, deployment: str, rules: list[AlertRule], result: MonitorResult, actor: str
) -> tuple[AlertRecord, ...]:
    """Read each rule's last alert and record the next, in one transaction on the locked
    deployment row: of two writers, the second sees what the first recorded."""
    with store.write() as conn:
        _lock(conn, deployment)
        last = last_alerts(conn, deployment, [r.name for r in rules])
        changed = []
        for rule in rules:
            previous = last[rule.name].alert if rule.name in last else None
            value = result.figures[rule.metric]
            detail = result.details.get(rule.metric)
            alert = next_alert(rule, deployment, value, result.window_end_ms, previous, detail)
            if alert is not None:
                changed.append(alert)
        return tuple(record_alert_in(conn, a, actor=actor) for a in changed)  # events last


def _lock(conn: Connection, deployment: str) -> None:
    """Lock the deployment's row until the transaction ends (NotFound when it is gone)."""
    row = conn.execute(
        select(deployments.c.name).where(deployments.c.name == deployment).with_for_update()
    ).first()
    if row is None:
        raise NotFound(f"No deployment named {shown(deployment)}.", field="deployment")


def _error_text(exc: Exception) -> str:
    text = said(exc)
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 3] + "..."


__all__ = ["CLAIM_KIND", "MonitorOutcome", "run_due_monitors"]
