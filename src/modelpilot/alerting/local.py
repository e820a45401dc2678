"""``LocalAlerts``: alerts recorded in, and read from, a store's audit log in-process."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, select

from modelpilot.alerting.manager import Alert
from modelpilot.alerting.protocol import (
    ALERT_KIND_PREFIX,
    ALERT_SUBJECT_PREFIX,
    MAX_ALERT_PAGE,
    AlertRecord,
)
from modelpilot.errors import InvalidInput, shown
from modelpilot.store import Store
from modelpilot.store.events import record_event
from modelpilot.store.schema import events

# The actor of alerts a local alert manager raises (docs/audit.md); the server records the
# token that sent the alert instead.
ALERT_MANAGER_ACTOR = "alert-manager"
_STATES = ("pending", "firing", "resolved")


class LocalAlerts:
    """Alerts on ``store``, recorded as ``actor``."""

    def __init__(self, store: Store, *, actor: str = ALERT_MANAGER_ACTOR) -> None:
        self.store = store
        self.actor = actor

    def record_alert(self, alert: Alert) -> AlertRecord:
        """Append the alert as an ``alert.<state>`` event on ``alert:<subject>``."""
        check_state(alert.state)
        with self.store.write() as conn:
            return record_alert_in(conn, alert, actor=self.actor)

    def list_alerts(
        self, *, subject: str | None = None, state: str | None = None, limit: int = 100
    ) -> list[AlertRecord]:
        """The newest recorded alerts, newest first."""
        if not 1 <= limit <= MAX_ALERT_PAGE:
            raise InvalidInput(
                f"limit must be between 1 and {MAX_ALERT_PAGE}; got {shown(limit)}.",
                field="limit",
            )
        query = select(events).order_by(events.c.id.desc()).limit(limit)
        if state is None:
            query = query.where(events.c.kind.startswith(ALERT_KIND_PREFIX))
        else:
            query = query.where(events.c.kind == ALERT_KIND_PREFIX + check_state(state))
        if subject is None:
            query = query.where(events.c.subject.startswith(ALERT_SUBJECT_PREFIX))
        else:
            query = query.where(events.c.subject == ALERT_SUBJECT_PREFIX + subject)
        with self.store.read() as conn:
            rows = conn.execute(query).all()
        return [AlertRecord(r.id, r.actor, Alert(**r.payload)) for r in rows]


def record_alert_in(conn: Connection, alert: Alert, *, actor: str) -> AlertRecord:
    """Append ``alert`` as an ``alert.<state>`` event on ``alert:<subject>`` in the caller's
    transaction (so a caller can check the last state and record the next one atomically)."""
    entry_id = record_event(
        conn,
        f"{ALERT_KIND_PREFIX}{check_state(alert.state)}",
        f"{ALERT_SUBJECT_PREFIX}{alert.subject}",
        actor,
        alert.to_dict(),
    )
    return AlertRecord(entry_id, actor, alert)


def last_alerts(conn: Connection, subject: str, rules: Iterable[str]) -> dict[str, AlertRecord]:
    """The newest recorded alert of each of ``rules`` on ``subject`` (rules never alerted on
    are absent): the state a rule is in, kept in the database rather than in a process."""
    wanted, found = set(rules), dict[str, AlertRecord]()
    rows = conn.execute(
        select(events.c.id, events.c.actor, events.c.payload)
        .where(
            events.c.subject == ALERT_SUBJECT_PREFIX + subject,
            events.c.kind.startswith(ALERT_KIND_PREFIX),
        )
        .order_by(events.c.id.desc())
    )
    for row in rows:
        rule = row.payload.get("rule")
        if rule in wanted and rule not in found:
            found[rule] = AlertRecord(row.id, row.actor, Alert(**row.payload))
            if len(found) == len(wanted):
                break
    rows.close()  # the rest unread
    return found


def check_state(state: str) -> str:
    """``state`` when it is an alert state; InvalidInput listing them otherwise.

    >>> check_state("firing")
    'firing'
    """
    if state not in _STATES:
        raise InvalidInput(
            f"Unknown alert state {shown(state)}; expected one of {', '.join(_STATES)}.",
            field="state",
        )
    return state


__all__ = ["ALERT_MANAGER_ACTOR", "LocalAlerts", "check_state", "last_alerts", "record_alert_in"]
