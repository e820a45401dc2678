"""Decide which triggers fire at a given time, record every decision, start the runs.

:func:`evaluate_triggers` is pure over the clock it is handed: occurrences (the newest cron
time, new dataset versions, firing alerts) are those at or before ``now_ms``, and cooldowns
and budgets are counted from the decisions already recorded. Each decision is one write
transaction that first locks the trigger's row (``SELECT ... FOR UPDATE`` on PostgreSQL;
SQLite's ``BEGIN IMMEDIATE`` serialises writers anyway), then claims the occurrence's unique
key: two evaluators on one database decide each occurrence exactly once, and the limits hold
across them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from modelpilot.errors import PipelineFailed
from modelpilot.pipelines.engine import PipelineServices, run_pipeline
from modelpilot.pipelines.entities import PipelineState, StepRun
from modelpilot.pipelines.executor import Executor
from modelpilot.pipelines.loader import load_target
from modelpilot.pipelines.params import params_from_text
from modelpilot.pipelines.triggers import (
    Decision,
    Firing,
    Trigger,
    TriggerKind,
    cron_times_between,
    firing_of,
    get_trigger,
    list_triggers,
)
from modelpilot.store import Store
from modelpilot.store.schema import datasets, events, pipeline_runs, trigger_firings, triggers

DAY_MS = 86_400_000
_MAX_CATCH_UP = 1440  # cron times decided at once at most (a day of a minutely schedule)
MISSED = "missed"  # the reason's first word for a cron time skipped because a newer one came
_MAX_ERROR_CHARS = 4000

# Starts the trigger's pipeline run; calls link(pipeline_run_id) as soon as the run exists
# (so concurrency counts it while it runs) and returns that id.
Launch = Callable[[Trigger, Callable[[str], None]], str]


@dataclass(frozen=True)
class Occurrence:
    """Something a trigger may fire for: its unique key, when it was due, what it was."""

    key: str
    due_ms: int
    what: str
    event_id: int | None = None
    missed: str | None = None  # decided skipped with this reason, whatever the limits


@dataclass(frozen=True)
class PipelineLauncher:
    """Starts a trigger's pipeline through the pipeline runner (:func:`run_pipeline`)."""

    services: PipelineServices
    executor: Executor

    def __call__(self, trigger: Trigger, link: Callable[[str], None]) -> str:
        definition = load_target(trigger.target)
        params = params_from_text(definition, trigger.params)
        linked: list[str] = []

        def on_step(step: StepRun) -> None:
            if not linked:
                linked.append(step.pipeline_run_id)
                link(step.pipeline_run_id)

        run = run_pipeline(
            definition,
            params,
            services=self.services,
            executor=self.executor,
            target=trigger.target,
            on_step=on_step,
        )
        return run.id


def evaluate_triggers(
    store: Store, now_ms: int, *, launch: Launch | None = None, actor: str = "evaluator"
) -> list[Firing]:
    """Decide every trigger's occurrences due at ``now_ms``; start a run per firing.

    Returns the decisions this call made (fired and skipped), oldest first; an occurrence
    another evaluator already decided is not among them. With ``launch=None`` nothing is
    started: the fired decisions stay pending for whoever launches them. A launch that fails
    is recorded on its firing (``error``) and the others still start.
    """
    decided: list[Firing] = []
    for trigger in list_triggers(store):
        for occurrence in occurrences(store, trigger, now_ms):
            firing = decide(store, trigger, occurrence, now_ms, actor=actor)
            if firing is not None:
                decided.append(firing)
    if launch is None:
        return decided
    by_id = {t.id: t for t in list_triggers(store)}
    return [
        start_firing(store, launch, by_id[f.trigger_id], f)
        if f.is_fired and f.trigger_id in by_id
        else f
        for f in decided
    ]


def summarised(firings: list[Firing]) -> list[Firing | tuple[str, int]]:
    """``firings`` for people to read: each trigger's missed cron times as one
    ``(trigger name, count)`` in place of its first, the other decisions as they are.

    >>> summarised([])
    []
    """
    missed: dict[str, int] = {}
    out: list[Firing | tuple[str, int]] = []
    for firing in firings:
        if firing.decision is Decision.SKIPPED and firing.reason.startswith(f"{MISSED}:"):
            if firing.trigger_name not in missed:
                out.append((firing.trigger_name, 0))
            missed[firing.trigger_name] = missed.get(firing.trigger_name, 0) + 1
        else:
            out.append(firing)
    return [(e[0], missed[e[0]]) if isinstance(e, tuple) else e for e in out]


def fire_trigger(
    store: Store, name: str, now_ms: int, *, actor: str, launch: Launch | None = None
) -> Firing:
    """A person fires ``name`` now: no cooldown, but the concurrency limit and the daily
    budget hold (the decision says which stopped it)."""
    trigger = get_trigger(store, name)
    stamp = dt.datetime.fromtimestamp(now_ms / 1000, tz=dt.UTC).isoformat(timespec="seconds")
    occurrence = Occurrence(f"manual:{uuid.uuid4().hex}", now_ms, f"fired by {actor} at {stamp}")
    firing = decide(store, trigger, occurrence, now_ms, actor=actor, cooldown=False)
    assert firing is not None  # a fresh uuid key is never claimed already
    if firing.is_fired and launch is not None:
        return start_firing(store, launch, trigger, firing)
    return firing


def occurrences(store: Store, trigger: Trigger, now_ms: int) -> list[Occurrence]:
    """What ``trigger`` could fire for at ``now_ms`` and has not decided yet, oldest first."""
    with store.read() as conn:
        if trigger.kind is TriggerKind.SCHEDULE:
            found = _schedule(conn, trigger, now_ms)
        elif trigger.kind is TriggerKind.DATASET:
            found = _dataset_versions(conn, trigger, now_ms)
        elif trigger.kind is TriggerKind.ALERT:
            found = _alerts(conn, trigger, now_ms)
        else:
            return []
        if not found:
            return []
        known = set(
            conn.execute(
                select(trigger_firings.c.occurrence).where(
                    trigger_firings.c.trigger_id == trigger.id,
                    trigger_firings.c.occurrence.in_([o.key for o in found]),
                )
            ).scalars()
        )
    return [o for o in found if o.key not in known]


def _schedule(conn: Connection, trigger: Trigger, now_ms: int) -> list[Occurrence]:
    """The cron times after the last one decided (and after the trigger was made, at most a
    day back), up to now. Only the newest may fire; the older ones, missed while no
    evaluator ran or while it was busy running pipelines, are decided skipped as ``missed``,
    so every cron time has one decision and a backlog never fires a burst of runs."""
    last = conn.execute(
        select(func.max(trigger_firings.c.due_ms)).where(
            trigger_firings.c.trigger_id == trigger.id,
            trigger_firings.c.occurrence.startswith("schedule:"),
        )
    ).scalar()
    since = max(trigger.created_ms, int(last or 0), now_ms - DAY_MS)
    due = cron_times_between(trigger.spec["cron"], since, now_ms, limit=_MAX_CATCH_UP)
    if not due:
        return []
    cron, newest = trigger.spec["cron"], due[-1]
    found = [
        Occurrence(f"schedule:{t}", t, f"schedule {cron} at {_minute(t)}",
                   missed=f"{MISSED}: due at {_minute(t)} while no evaluator decided; only "
                   f"the newest due time ({_minute(newest)}) may fire")
        for t in due[:-1]
    ]  # fmt: skip
    return [
        *found,
        Occurrence(f"schedule:{newest}", newest, f"schedule {cron} at {_minute(newest)}"),
    ]


def _minute(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _dataset_versions(conn: Connection, trigger: Trigger, now_ms: int) -> list[Occurrence]:
    """Versions of the dataset registered after the trigger and at or before now."""
    name = trigger.spec["dataset"]
    rows = conn.execute(
        select(datasets.c.digest, datasets.c.created_ms)
        .where(
            datasets.c.name == name,
            datasets.c.created_ms > trigger.created_ms,
            datasets.c.created_ms <= now_ms,
        )
        .order_by(datasets.c.created_ms, datasets.c.digest)
    ).all()
    return [
        Occurrence(f"dataset:{r.digest}", r.created_ms, f"dataset {name}@{r.digest[:12]}")
        for r in rows
    ]


def _alerts(conn: Connection, trigger: Trigger, now_ms: int) -> list[Occurrence]:
    """Firing alerts of the rule (and subject) recorded after the trigger was made, with an
    alert time at or before now; scanning stops at the first alert still in the future."""
    rule, subject = trigger.spec["rule"], trigger.spec.get("subject")
    watermark = conn.execute(
        select(func.max(trigger_firings.c.event_id)).where(
            trigger_firings.c.trigger_id == trigger.id
        )
    ).scalar()
    query = (
        select(events.c.id, events.c.payload)
        .where(
            events.c.kind == "alert.firing",
            events.c.id > max(trigger.since_event_id, int(watermark or 0)),
        )
        .order_by(events.c.id)
    )
    query = query.where(
        events.c.subject == f"alert:{subject}" if subject else events.c.subject.startswith("alert:")
    )
    found: list[Occurrence] = []
    for row in conn.execute(query):
        payload: dict[str, Any] = row.payload
        if payload.get("rule") != rule:
            continue
        alert_ms = int(payload.get("time_ms") or 0)
        if alert_ms > now_ms:
            break
        what = f"alert {rule} on {payload.get('subject')} (event {row.id})"
        found.append(Occurrence(f"alert:{row.id}", alert_ms, what, event_id=int(row.id)))
    return found


def decide(
    store: Store,
    trigger: Trigger,
    occurrence: Occurrence,
    now_ms: int,
    *,
    actor: str,
    cooldown: bool = True,
) -> Firing | None:
    """Claim ``occurrence`` and record fired or skipped (with the reason), in one
    transaction; None when it was decided already (by another evaluator) or the trigger is
    gone."""
    key = uuid.uuid4().hex
    try:
        with store.write() as conn:
            locked = conn.execute(
                select(triggers.c.id).where(triggers.c.id == trigger.id).with_for_update()
            ).first()
            if locked is None or _claimed(conn, trigger.id, occurrence.key):
                return None
            reason = occurrence.missed or _blocked(conn, trigger, now_ms, cooldown=cooldown)
            decision = Decision.SKIPPED if reason else Decision.FIRED
            conn.execute(
                insert(trigger_firings).values(
                    id=key, trigger_id=trigger.id, trigger_name=trigger.name,
                    occurrence=occurrence.key, event_id=occurrence.event_id,
                    due_ms=occurrence.due_ms, decided_ms=now_ms, decision=decision.value,
                    reason=reason or occurrence.what, actor=actor,
                )
            )  # fmt: skip
            row = conn.execute(select(trigger_firings).where(trigger_firings.c.id == key)).one()
            return firing_of(row)
    except IntegrityError:  # the unique claim: another evaluator decided it first
        return None


def _claimed(conn: Connection, trigger_id: str, occurrence: str) -> bool:
    return (
        conn.execute(
            select(trigger_firings.c.id).where(
                trigger_firings.c.trigger_id == trigger_id,
                trigger_firings.c.occurrence == occurrence,
            )
        ).first()
        is not None
    )


def _blocked(conn: Connection, trigger: Trigger, now_ms: int, *, cooldown: bool) -> str | None:
    """Why ``trigger`` may not fire at ``now_ms`` (cooldown, budget, concurrency), or None."""
    fired = and_(
        trigger_firings.c.trigger_id == trigger.id,
        trigger_firings.c.decision == Decision.FIRED.value,
    )
    last = conn.execute(select(func.max(trigger_firings.c.decided_ms)).where(fired)).scalar()
    # Without a cooldown nothing holds: an evaluator whose clock is behind the last firing
    # (another agent's iteration began later) would otherwise see a negative gap as "< 0".
    if (
        cooldown
        and trigger.cooldown_ms
        and last is not None
        and now_ms - last < trigger.cooldown_ms
    ):
        return (
            f"cooldown: last fired at {_when(last)}; the {_span(trigger.cooldown_ms)} "
            f"cooldown ends at {_when(last + trigger.cooldown_ms)}"
        )
    window = conn.execute(
        select(trigger_firings.c.decided_ms)
        .where(fired, trigger_firings.c.decided_ms > now_ms - DAY_MS)
        .order_by(trigger_firings.c.decided_ms)
    ).scalars()
    stamps = list(window)
    if len(stamps) >= trigger.daily_budget:
        return (
            f"daily budget: {len(stamps)} of {trigger.daily_budget} runs fired in the last "
            f"24 h; the next slot opens at {_when(stamps[-trigger.daily_budget] + DAY_MS)}"
        )
    active = conn.execute(
        select(func.count())
        .select_from(
            trigger_firings.outerjoin(
                pipeline_runs, pipeline_runs.c.id == trigger_firings.c.pipeline_run_id
            )
        )
        .where(
            fired,
            trigger_firings.c.error.is_(None),
            or_(
                trigger_firings.c.pipeline_run_id.is_(None),
                pipeline_runs.c.state == PipelineState.RUNNING.value,
            ),
        )
    ).scalar_one()
    if active >= trigger.max_concurrent:
        return (
            f"concurrency: {active} of at most {trigger.max_concurrent} runs of this trigger "
            "are still starting or running"
        )
    return None


def start_firing(store: Store, launch: Launch, trigger: Trigger, firing: Firing) -> Firing:
    """Start ``firing``'s pipeline run; its id (and any error) recorded on the firing."""

    def link(pipeline_run_id: str) -> None:
        _set(store, firing.id, pipeline_run_id=pipeline_run_id)

    try:
        return _set(store, firing.id, pipeline_run_id=launch(trigger, link))
    except PipelineFailed as exc:
        return _set(store, firing.id, pipeline_run_id=exc.pipeline_run_id, error=_bounded(str(exc)))
    except Exception as exc:  # one trigger's broken target must not stop the others
        return _set(store, firing.id, error=_bounded(f"{type(exc).__name__}: {exc}"))


def _set(store: Store, firing_id: str, **values: Any) -> Firing:
    with store.write() as conn:
        conn.execute(
            update(trigger_firings).where(trigger_firings.c.id == firing_id).values(**values)
        )
        return firing_of(
            conn.execute(select(trigger_firings).where(trigger_firings.c.id == firing_id)).one()
        )


def _bounded(text: str) -> str:
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 3] + "..."


def _when(stamp_ms: int) -> str:
    return dt.datetime.fromtimestamp(stamp_ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _span(duration_ms: int) -> str:
    seconds = duration_ms // 1000
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


__all__ = [
    "DAY_MS",
    "Launch",
    "Occurrence",
    "PipelineLauncher",
    "decide",
    "evaluate_triggers",
    "fire_trigger",
    "occurrences",
    "start_firing",
]
