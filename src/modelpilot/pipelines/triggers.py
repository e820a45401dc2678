"""Trigger definitions and their firing records in the metadata store.

A trigger names a pipeline target, its ``--param`` texts, what makes it fire (a cron
schedule, a new dataset version, a firing alert, or only a person) and three limits: a
cooldown, a maximum of concurrent runs and a budget of runs per 24 hours. Every decision about
an occurrence (fired, or skipped with the reason) is a row in ``trigger_firings`` whose
``(trigger_id, occurrence)`` is unique: the claim that lets two evaluators share a database.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update

from modelpilot.errors import Conflict, InvalidInput, NotFound, shown
from modelpilot.store import Store
from modelpilot.store.events import record_event
from modelpilot.store.schema import events, trigger_firings, triggers

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_CRON_FIELDS = (
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day of month", "1-31"),
    ("month", "1-12 or jan-dec"),
    ("day of week", "0-6 (0 is Sunday) or sun-sat"),
)
MAX_BUDGET = 1000
MAX_CONCURRENT = 100


class TriggerKind(enum.StrEnum):
    """What makes a trigger fire."""

    SCHEDULE = "schedule"
    DATASET = "dataset"
    ALERT = "alert"
    MANUAL = "manual"


class Decision(enum.StrEnum):
    """What was decided about one occurrence."""

    FIRED = "fired"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Trigger:
    """A stored trigger."""

    id: str
    name: str
    target: str
    params: tuple[str, ...]
    kind: TriggerKind
    spec: dict[str, Any]
    cooldown_ms: int
    max_concurrent: int
    daily_budget: int
    since_event_id: int
    created_ms: int
    created_by: str

    @property
    def condition(self) -> str:
        """The firing condition in words: ``schedule 0 3 * * *``, ``dataset customers``."""
        if self.kind is TriggerKind.SCHEDULE:
            return f"schedule {self.spec['cron']}"
        if self.kind is TriggerKind.DATASET:
            return f"dataset {self.spec['dataset']}"
        if self.kind is TriggerKind.ALERT:
            subject = self.spec.get("subject")
            return f"alert {self.spec['rule']}" + (f" on {subject}" if subject else "")
        return "manual"


@dataclass(frozen=True)
class Firing:
    """One decision about one occurrence of a trigger."""

    id: str
    trigger_id: str
    trigger_name: str
    occurrence: str
    due_ms: int
    decided_ms: int
    decision: Decision
    reason: str
    actor: str
    event_id: int | None = None
    pipeline_run_id: str | None = None
    error: str | None = None

    @property
    def is_fired(self) -> bool:
        """True when this decision started (or tried to start) a pipeline run."""
        return self.decision is Decision.FIRED


def check_cron(expression: str) -> str:
    """A 5-field cron expression (UTC), normalised; InvalidInput naming the bad field.

    >>> check_cron(" 0  3 * * * ")
    '0 3 * * *'
    """
    from croniter import croniter

    fields = expression.split()
    if len(fields) != len(_CRON_FIELDS):
        raise InvalidInput(
            f"Schedule {shown(expression)} has {len(fields)} fields; expected 5: minute hour "
            "day-of-month month day-of-week, e.g. '0 3 * * *' (03:00 UTC daily).",
            field="schedule",
        )
    for position, (label, accepted) in enumerate(_CRON_FIELDS):
        probe = ["*"] * len(_CRON_FIELDS)
        probe[position] = fields[position]
        if not croniter.is_valid(" ".join(probe)):
            raise InvalidInput(
                f"Schedule {shown(expression)}: the {label} field {fields[position]!r} is not "
                f"valid; it accepts {accepted}, '*', lists (1,5), ranges (1-5) and steps (*/15).",
                field="schedule",
            )
    normal = " ".join(fields)
    if not croniter.is_valid(normal):
        raise InvalidInput(f"Schedule {shown(expression)} is not a valid cron.", field="schedule")
    return normal


def latest_cron_ms(expression: str, now_ms: int) -> int:
    """The newest time at or before ``now_ms`` that ``expression`` (UTC) names.

    >>> latest_cron_ms("*/15 * * * *", 3_600_000 + 60_000)
    3600000
    """
    from croniter import croniter

    start = dt.datetime.fromtimestamp(now_ms / 1000 + 0.001, tz=dt.UTC)
    return round(croniter(expression, start).get_prev(float) * 1000)


def cron_times_between(expression: str, after_ms: int, until_ms: int, *, limit: int) -> list[int]:
    """The times ``expression`` (UTC) names in ``(after_ms, until_ms]``, oldest first; the
    newest ``limit`` of them when there are more.

    >>> cron_times_between("*/15 * * * *", 0, 3_600_000, limit=10)
    [900000, 1800000, 2700000, 3600000]
    >>> cron_times_between("*/15 * * * *", 0, 3_600_000, limit=2)
    [2700000, 3600000]
    """
    from collections import deque

    from croniter import croniter

    found: deque[int] = deque(maxlen=limit)
    times = croniter(expression, dt.datetime.fromtimestamp(after_ms / 1000, tz=dt.UTC))
    while (at := round(times.get_next(float) * 1000)) <= until_ms:
        found.append(at)
    return list(found)


def check_name(name: str) -> str:
    """A trigger name: letters, digits, ``.``, ``_``, ``-``; up to 128 characters."""
    if not _NAME.match(name):
        raise InvalidInput(
            f"Trigger name {shown(name)} is not valid: use letters, digits, '.', '_' and '-' "
            "(starting with a letter or digit), at most 128 characters.",
            field="name",
        )
    return name


def absolute_target(target: str) -> str:
    """``train.py:churn`` with the file made absolute, so a later tick finds it from any
    folder; ``module:name`` as it is."""
    source, sep, attr = target.rpartition(":")
    if sep and (source.endswith(".py") or "/" in source):
        return f"{Path(source).expanduser().resolve()}:{attr}"
    return target


def check_limits(cooldown_ms: int, max_concurrent: int, daily_budget: int) -> None:
    """InvalidInput naming the limit that is out of range."""
    if cooldown_ms < 0:
        raise InvalidInput(f"cooldown must be 0 or more; got {cooldown_ms} ms.", field="cooldown")
    if not 1 <= max_concurrent <= MAX_CONCURRENT:
        raise InvalidInput(
            f"max-concurrent must be between 1 and {MAX_CONCURRENT}; got {max_concurrent}.",
            field="max_concurrent",
        )
    if not 1 <= daily_budget <= MAX_BUDGET:
        raise InvalidInput(
            f"daily-budget must be between 1 and {MAX_BUDGET} runs per 24 h; got {daily_budget}.",
            field="daily_budget",
        )


def create_trigger(
    store: Store,
    *,
    name: str,
    target: str,
    params: Sequence[str],
    kind: TriggerKind,
    spec: dict[str, Any],
    cooldown_ms: int,
    max_concurrent: int,
    daily_budget: int,
    actor: str,
    now_ms: int,
) -> Trigger:
    """Store a trigger (already validated by the caller: target, params, spec) and an audit
    event; Conflict when the name is taken."""
    check_name(name)
    check_limits(cooldown_ms, max_concurrent, daily_budget)
    with store.write() as conn:
        if _row(conn, name) is not None:
            raise Conflict(
                f"A trigger named {name!r} exists; delete it first "
                f"(modelpilot pipelines trigger delete {name}) or pick another name.",
                field="name",
            )
        made = insert_trigger(
            conn, name=name, target=target, params=params, kind=kind, spec=spec,
            cooldown_ms=cooldown_ms, max_concurrent=max_concurrent,
            daily_budget=daily_budget, actor=actor, now_ms=now_ms,
        )  # fmt: skip
        record_event(conn, "trigger.created", f"trigger:{name}", actor, created_payload(made))
        return made


def created_payload(found: Trigger) -> dict[str, Any]:
    """The audit payload of a ``trigger.created`` event."""
    return {"after": {"target": found.target, "kind": found.kind.value, "spec": found.spec}}


def insert_trigger(
    conn: Connection,
    *,
    name: str,
    target: str,
    params: Sequence[str],
    kind: TriggerKind,
    spec: dict[str, Any],
    cooldown_ms: int,
    max_concurrent: int,
    daily_budget: int,
    actor: str,
    now_ms: int,
) -> Trigger:
    """Insert a validated trigger inside the caller's transaction (the caller checked that
    the name is free, and records the ``trigger.created`` event after its last row change:
    see :func:`~modelpilot.store.events.record_event`)."""
    newest = conn.execute(select(func.max(events.c.id))).scalar()
    conn.execute(
        insert(triggers).values(
            id=uuid.uuid4().hex, name=name, target=target, params=list(params),
            kind=kind.value, spec=spec, cooldown_ms=cooldown_ms, max_concurrent=max_concurrent,
            daily_budget=daily_budget, since_event_id=int(newest or 0),
            created_ms=now_ms, created_by=actor,
        )
    )  # fmt: skip
    row = _row(conn, name)
    assert row is not None  # inserted just above, in this transaction
    return _trigger(row)


def update_trigger_limits(
    conn: Connection,
    found: Trigger,
    *,
    target: str,
    params: Sequence[str],
    cooldown_ms: int,
    max_concurrent: int,
    daily_budget: int,
) -> None:
    """Change a trigger's target, params and limits in place, inside the caller's
    transaction (the caller records the event); its condition, creation time and firing
    history stay, so the cooldown and the budget keep counting its earlier firings."""
    conn.execute(
        update(triggers)
        .where(triggers.c.id == found.id)
        .values(
            target=target, params=list(params), cooldown_ms=cooldown_ms,
            max_concurrent=max_concurrent, daily_budget=daily_budget,
        )
    )  # fmt: skip


def remove_trigger(conn: Connection, found: Trigger) -> None:
    """Delete a trigger inside the caller's transaction (its firings stay, as history; the
    caller records the event)."""
    conn.execute(delete(triggers).where(triggers.c.id == found.id))


def deleted_payload(found: Trigger) -> dict[str, Any]:
    """The audit payload of a ``trigger.deleted`` event."""
    return {"before": {"target": found.target, "kind": found.kind.value}}


def find_trigger(conn: Connection, name: str) -> Trigger | None:
    """The trigger named ``name`` inside the caller's transaction, or None."""
    row = _row(conn, name)
    return None if row is None else _trigger(row)


def define_trigger(
    store: Store,
    *,
    name: str,
    target: str,
    params: Sequence[str] = (),
    schedule: str | None = None,
    dataset: str | None = None,
    alert_rule: str | None = None,
    alert_subject: str | None = None,
    cooldown_s: float = 0.0,
    max_concurrent: int = 1,
    daily_budget: int = 24,
    actor: str,
    now_ms: int,
) -> Trigger:
    """Validate a trigger as a person gives it, then store it.

    At most one of ``schedule``, ``dataset`` and ``alert_rule``; none is a manual trigger.
    The target is imported and the params checked against its signature now, so a typo is
    an error here, not at 3 a.m. A dataset that does not exist yet is accepted: the trigger
    fires on its first version.
    """
    from modelpilot.pipelines.loader import load_target
    from modelpilot.pipelines.params import params_from_text

    check_name(name)
    given = [k for k, v in (("schedule", schedule), ("on-dataset", dataset),
                            ("on-alert", alert_rule)) if v is not None]  # fmt: skip
    if len(given) > 1:
        raise InvalidInput(
            f"Trigger {name!r}: give one of --schedule, --on-dataset, --on-alert (or none, "
            f"for a manual trigger); got {' and '.join('--' + g for g in given)}.",
            field=given[1],
        )
    if alert_subject is not None and alert_rule is None:
        raise InvalidInput("--alert-subject needs --on-alert RULE.", field="alert_subject")
    check_limits(int(cooldown_s * 1000), max_concurrent, daily_budget)
    target = absolute_target(target)
    params_from_text(load_target(target), params)
    kind, spec = kind_and_spec(schedule, dataset, alert_rule, alert_subject)
    return create_trigger(
        store, name=name, target=target, params=params, kind=kind, spec=spec,
        cooldown_ms=int(cooldown_s * 1000), max_concurrent=max_concurrent,
        daily_budget=daily_budget, actor=actor, now_ms=now_ms,
    )  # fmt: skip


def kind_and_spec(
    schedule: str | None, dataset: str | None, rule: str | None, subject: str | None
) -> tuple[TriggerKind, dict[str, Any]]:
    """The kind and stored spec of a condition (at most one given; none is manual), checked:
    the cron's fields, a dataset name without ``@version``, a non-empty rule."""
    if schedule is not None:
        return TriggerKind.SCHEDULE, {"cron": check_cron(schedule)}
    if dataset is not None:
        if not dataset.strip() or "@" in dataset:
            raise InvalidInput(
                f"--on-dataset {shown(dataset)}: give a dataset name (no @version): the "
                "trigger fires on each new version of it.",
                field="on_dataset",
            )
        return TriggerKind.DATASET, {"dataset": dataset.strip()}
    if rule is not None:
        if not rule.strip():
            raise InvalidInput("--on-alert needs a rule name.", field="on_alert")
        return TriggerKind.ALERT, {"rule": rule.strip(), "subject": subject}
    return TriggerKind.MANUAL, {}


def get_trigger(store: Store, name: str) -> Trigger:
    """The trigger named ``name``; NotFound listing the existing ones."""
    with store.read() as conn:
        row = _row(conn, name)
        if row is None:
            names = list(conn.execute(select(triggers.c.name).order_by(triggers.c.name)).scalars())
            there = ", ".join(names[:20]) if names else "none yet"
            raise NotFound(
                f"No trigger named {name!r}. Existing triggers: {there}. Create one with: "
                "modelpilot pipelines trigger create NAME --pipeline FILE.py:NAME ...",
                field="name",
            )
        return _trigger(row)


def list_triggers(store: Store) -> list[Trigger]:
    """Every trigger, by name."""
    with store.read() as conn:
        rows = conn.execute(select(triggers).order_by(triggers.c.name)).all()
    return [_trigger(r) for r in rows]


def delete_trigger(store: Store, name: str, *, actor: str) -> Trigger:
    """Remove a trigger (its firings stay, as history); NotFound when there is none."""
    found = get_trigger(store, name)
    with store.write() as conn:
        remove_trigger(conn, found)
        record_event(conn, "trigger.deleted", f"trigger:{name}", actor, deleted_payload(found))
    return found


def trigger_history(store: Store, name: str, *, limit: int = 50) -> list[Firing]:
    """The trigger's decisions, newest first."""
    if limit < 1:
        raise InvalidInput(f"limit must be at least 1; got {limit}.", field="limit")
    found = get_trigger(store, name)
    with store.read() as conn:
        rows = conn.execute(
            select(trigger_firings)
            .where(trigger_firings.c.trigger_id == found.id)
            .order_by(trigger_firings.c.decided_ms.desc(), trigger_firings.c.due_ms.desc())
            .limit(limit)
        ).all()
    return [firing_of(r) for r in rows]


def _row(conn: Connection, name: str) -> Row[Any] | None:
    return conn.execute(select(triggers).where(triggers.c.name == name)).first()


def _trigger(row: Row[Any]) -> Trigger:
    return Trigger(
        id=row.id,
        name=row.name,
        target=row.target,
        params=tuple(row.params),
        kind=TriggerKind(row.kind),
        spec=dict(row.spec),
        cooldown_ms=row.cooldown_ms,
        max_concurrent=row.max_concurrent,
        daily_budget=row.daily_budget,
        since_event_id=row.since_event_id,
        created_ms=row.created_ms,
        created_by=row.created_by,
    )


def firing_of(row: Row[Any]) -> Firing:
    """A ``trigger_firings`` row as a :class:`Firing`."""
    return Firing(
        id=row.id,
        trigger_id=row.trigger_id,
        trigger_name=row.trigger_name,
        occurrence=row.occurrence,
        due_ms=row.due_ms,
        decided_ms=row.decided_ms,
        decision=Decision(row.decision),
        reason=row.reason,
        actor=row.actor,
        event_id=row.event_id,
        pipeline_run_id=row.pipeline_run_id,
        error=row.error,
    )


__all__ = [
    "Decision",
    "Firing",
    "Trigger",
    "TriggerKind",
    "absolute_target",
    "check_cron",
    "check_limits",
    "check_name",
    "create_trigger",
    "created_payload",
    "cron_times_between",
    "define_trigger",
    "delete_trigger",
    "deleted_payload",
    "find_trigger",
    "firing_of",
    "get_trigger",
    "insert_trigger",
    "kind_and_spec",
    "latest_cron_ms",
    "list_triggers",
    "remove_trigger",
    "trigger_history",
    "update_trigger_limits",
]
