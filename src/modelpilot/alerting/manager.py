"""The alert manager: evaluates rules on observations, de-duplicates, notifies, calls hooks.

An alert goes PENDING when its condition first holds, FIRING once it has held ``for_s``
seconds (notified once, not on every observation), and RESOLVED when the condition clears
(notified once). Hooks registered by other parts (``rollback``, ``retrain``) run when a rule
that names them fires; a failing hook or sink is reported and never stops the others.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from modelpilot.alerting.rules import AlertRule
from modelpilot.clock import now_ms

log = logging.getLogger(__name__)
State = Literal["pending", "firing", "resolved"]


@dataclass(frozen=True)
class Alert:
    """A notification about one rule on one subject."""

    rule: str
    subject: str
    metric: str
    value: float
    threshold: float
    op: str
    severity: str
    state: State
    since_ms: int
    time_ms: int
    message: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form (what the webhook receives)."""
        return asdict(self)


class Sink(Protocol):
    """Where alerts go: a webhook, a log file, the console, the event table."""

    def send(self, alert: Alert) -> None:
        """Deliver one alert (raise on failure; the manager reports it)."""
        ...


Hook = Callable[[Alert], None]


@dataclass
class _Track:
    since_ms: int
    firing: bool = False


@dataclass
class AlertManager:
    """Evaluates rules against observations and notifies sinks on state changes.

    >>> seen = []
    >>> class ListSink:
    ...     def send(self, alert): seen.append(alert.state)
    >>> manager = AlertManager([AlertRule(name="r", metric="m", op=">", threshold=1)], [ListSink()])
    >>> for value in (2.0, 3.0, 0.5):
    ...     _ = manager.observe("prod", "m", value)
    >>> seen
    ['firing', 'resolved']
    """

    rules: Sequence[AlertRule]
    sinks: Sequence[Sink] = ()
    hooks: dict[str, Hook] = field(default_factory=dict)
    _tracks: dict[tuple[str, str], _Track] = field(default_factory=dict, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def register_hook(self, name: str, hook: Hook) -> None:
        """Let rules trigger ``hook`` by naming it in their ``actions``."""
        self.hooks[name] = hook

    def observe(
        self,
        subject: str,
        metric: str,
        value: float,
        *,
        at_ms: int | None = None,
        detail: str | None = None,
    ) -> list[Alert]:
        """Feed one figure; returns the alerts this observation fired or resolved. ``detail``
        (which slice fell, say) is added to their messages."""
        now = at_ms if at_ms is not None else now_ms()
        changed: list[tuple[AlertRule, Alert]] = []
        with self._lock:
            for rule in self.rules:
                if rule.watches(subject, metric):
                    alert = self._step(rule, subject, value, now, detail)
                    if alert is not None:
                        changed.append((rule, alert))
        for rule, alert in changed:
            self._notify(alert)
            if alert.state == "firing":
                self._run_hooks(rule, alert)
        return [alert for _, alert in changed]

    def observe_many(
        self,
        subject: str,
        figures: dict[str, float],
        *,
        at_ms: int | None = None,
        details: dict[str, str] | None = None,
    ) -> list[Alert]:
        """Feed several figures of one subject at once (``details``: figure -> detail)."""
        said = details or {}
        return [
            a
            for metric, value in figures.items()
            for a in self.observe(subject, metric, value, at_ms=at_ms, detail=said.get(metric))
        ]

    def firing(self) -> list[tuple[str, str]]:
        """(rule, subject) pairs currently firing."""
        with self._lock:
            return [key for key, track in self._tracks.items() if track.firing]

    def _step(
        self, rule: AlertRule, subject: str, value: float, now: int, detail: str | None
    ) -> Alert | None:
        key = (rule.name, subject)
        track = self._tracks.get(key)
        if rule.breached(value):
            if track is None:
                track = self._tracks[key] = _Track(since_ms=now)
            if not track.firing and now - track.since_ms >= rule.for_s * 1000:
                track.firing = True
                return build_alert(rule, subject, value, "firing", track.since_ms, now, detail)
            return None
        if track is None:
            return None
        del self._tracks[key]
        return (
            build_alert(rule, subject, value, "resolved", track.since_ms, now, detail)
            if track.firing
            else None
        )

    def _notify(self, alert: Alert) -> None:
        notify(self.sinks, alert)

    def _run_hooks(self, rule: AlertRule, alert: Alert) -> None:
        for action in rule.actions:
            hook = self.hooks.get(action)
            if hook is None:
                log.error("alert %s names hook %r, which nothing registered", rule.name, action)
                continue
            try:
                hook(alert)
            except Exception as exc:
                log.error("alert hook %r failed for %s: %s", action, rule.name, exc)


def notify(sinks: Iterable[Sink], alert: Alert) -> None:
    """Send ``alert`` to every sink; a failing sink is logged and never stops the others."""
    for sink in sinks:
        try:
            sink.send(alert)
        except Exception as exc:  # one broken sink must not silence the others
            log.error("alert sink %s failed for %s: %s", type(sink).__name__, alert.rule, exc)


def build_alert(
    rule: AlertRule,
    subject: str,
    value: float,
    state: State,
    since: int,
    now: int,
    detail: str | None = None,
) -> Alert:
    """The alert ``rule`` raises on ``subject`` in ``state``: breached (or back) at ``value``,
    the condition holding since ``since`` (ms), observed at ``now`` (ms); ``detail`` (what
    the figure is made of, such as which slice fell) ends the message.

    >>> rule = AlertRule(name="errors", metric="ops.error_rate", op=">", threshold=0.05)
    >>> build_alert(rule, "prod", 0.07, "firing", 1000, 2000).message
    '[warning] errors: ops.error_rate of prod is 0.07 (alert when > 0.05)'
    """
    verb = "is back to" if state == "resolved" else "is"
    message = (
        f"[{rule.severity}] {rule.name}: {rule.metric} of {subject} {verb} {value:.4g} "
        f"(alert when {rule.op} {rule.threshold:g}{f' for {rule.for_s:g}s' if rule.for_s else ''})"
    ) + (f": {detail}" if detail else "")
    return Alert(
        rule.name,
        subject,
        rule.metric,
        value,
        rule.threshold,
        rule.op,
        rule.severity,
        state,
        since,
        now,
        message,
    )


def next_alert(
    rule: AlertRule,
    subject: str,
    value: float,
    now: int,
    last: Alert | None,
    detail: str | None = None,
) -> Alert | None:
    """The alert to record when ``rule`` sees ``value`` on ``subject`` at ``now`` (ms), given
    the last alert recorded for that rule and subject (None if never), or None when nothing
    changed. ``detail`` ends the message of the alert recorded.

    The same de-duplication as :class:`AlertManager`, with the state read from the records
    instead of kept in a process, so a restarted or second process continues it: a breach
    goes ``pending`` (or straight to ``firing`` when ``for_s`` is 0), ``firing`` once it has
    held ``for_s`` since the pending alert, and only once; a cleared condition after
    ``pending`` or ``firing`` records ``resolved``.

    >>> rule = AlertRule(name="errors", metric="ops.error_rate", op=">", threshold=0.05, for_s=60)
    >>> first = next_alert(rule, "prod", 0.07, 0, None)
    >>> first.state, next_alert(rule, "prod", 0.08, 30_000, first)
    ('pending', None)
    >>> firing = next_alert(rule, "prod", 0.08, 60_000, first)
    >>> firing.state, firing.since_ms, next_alert(rule, "prod", 0.09, 90_000, firing)
    ('firing', 0, None)
    >>> next_alert(rule, "prod", 0.01, 120_000, firing).state
    'resolved'
    """
    active = last if last is not None and last.state != "resolved" else None
    if not rule.breached(value):
        return (
            None
            if active is None
            else build_alert(rule, subject, value, "resolved", active.since_ms, now, detail)
        )
    if active is not None and active.state == "firing":
        return None
    since = active.since_ms if active is not None else now
    if now - since >= rule.for_s * 1000:
        return build_alert(rule, subject, value, "firing", since, now, detail)
    if active is not None:
        return None
    return build_alert(rule, subject, value, "pending", now, now, detail)


def load_rules(data: Iterable[dict[str, Any]]) -> list[AlertRule]:
    """Rules from plain data (a YAML list), with one clear error for the first bad rule."""
    from pydantic import ValidationError

    from modelpilot.errors import InvalidInput

    rules = []
    for index, item in enumerate(data):
        try:
            rules.append(AlertRule.model_validate(item))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise InvalidInput(
                f"Alert rule {index + 1} ({item.get('name', 'unnamed')}): {first['msg']} "
                f"(at {where}).",
                field=where,
            ) from exc
    names = [r.name for r in rules]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidInput(
            f"Alert rule names must be unique; repeated: {', '.join(duplicates)}.", field="name"
        )
    return rules
