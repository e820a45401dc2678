"""Triggers on a controllable clock (no sleeps): schedules, alerts, dataset versions, manual
fires, limits with their recorded reasons, two evaluators racing, and bad input that changes
nothing. SQLite and PostgreSQL (the ``settings`` fixture)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from modelpilot.alerting.local import LocalAlerts
from modelpilot.alerting.manager import Alert
from modelpilot.config import Settings
from modelpilot.errors import Conflict, InvalidInput, NotFound
from modelpilot.pipelines import (
    Decision,
    Firing,
    InlineExecutor,
    PipelineLauncher,
    PipelineServices,
    PipelineState,
    Trigger,
    define_trigger,
    evaluate_triggers,
    fire_trigger,
    get_pipeline_run,
    list_triggers,
    trigger_history,
)
from modelpilot.pipelines.body import StepServices
from modelpilot.store import Store
from modelpilot.workspace import Workspace
from mp_race import race_on_stores

TINY = str(Path(__file__).parents[2] / "integration" / "pipelines" / "tiny_pipeline.py")
T0 = int(dt.datetime(2026, 3, 2, 10, 0, 30, tzinfo=dt.UTC).timestamp() * 1000)
MINUTE = 60_000


class Recorder:
    """A launcher double: remembers what it started and hands back a run id of its own (no
    pipeline run exists, so the firing counts as finished)."""

    def __init__(self) -> None:
        self.started: list[str] = []

    def __call__(self, trigger: Trigger, link: Callable[[str], None]) -> str:
        self.started.append(trigger.name)
        return f"{len(self.started):032x}"


@pytest.fixture
def ws(settings: Settings) -> Iterator[Workspace]:
    workspace = Workspace(settings)
    yield workspace
    workspace.close()


def _define(ws: Workspace, name: str, now: int = T0, **options: object) -> Trigger:
    return define_trigger(
        ws.store,
        name=name,
        target=f"{TINY}:tiny",
        actor="test",
        now_ms=now,
        **options,  # type: ignore[arg-type]
    )


def _fired(firings: list[Firing]) -> list[Firing]:
    return [f for f in firings if f.decision is Decision.FIRED]


def test_schedule_fires_at_its_times_and_not_between(ws: Workspace) -> None:
    _define(ws, "quarterly", schedule="*/15 * * * *", daily_budget=100)
    launcher = Recorder()
    fired: list[Firing] = []
    for minute in range(1, 61):  # 10:01:30 .. 11:00:30, one tick a minute
        decided = evaluate_triggers(ws.store, T0 + minute * MINUTE, launch=launcher)
        fired += _fired(decided)
        assert all(f.is_fired for f in decided)
    due = [dt.datetime.fromtimestamp(f.due_ms / 1000, tz=dt.UTC).strftime("%H:%M") for f in fired]
    assert due == ["10:15", "10:30", "10:45", "11:00"]
    assert launcher.started == ["quarterly"] * 4
    assert all(f.pipeline_run_id for f in fired)
    assert evaluate_triggers(ws.store, T0 + 60 * MINUTE, launch=launcher) == []  # decided once


def test_flapping_alert_is_held_by_cooldown_and_daily_budget(ws: Workspace) -> None:
    _define(ws, "on-drift", alert_rule="drift", cooldown_s=1800, daily_budget=3)
    alerts, launcher = LocalAlerts(ws.store), Recorder()

    def flap(at: int) -> list[Firing]:
        for rule in ("drift", "latency"):  # another rule's alerts never fire it
            alerts.record_alert(
                Alert(rule, "churn-prod", "psi", 0.4, 0.2, ">", "warning", "firing", at, at, "x")
            )
        return evaluate_triggers(ws.store, at, launch=launcher)

    first_hour = [f for m in range(60) for f in flap(T0 + m * MINUTE)]
    assert len(first_hour) == 60  # one decision per drift alert
    assert [f.decided_ms - T0 for f in _fired(first_hour)] == [0, 30 * MINUTE]
    skipped = [f for f in first_hour if not f.is_fired]
    assert len(skipped) == 58 and all(
        f.reason.startswith("cooldown: last fired at") for f in skipped
    )
    rest_of_day = [f for m in range(60, 24 * 60, 20) for f in flap(T0 + m * MINUTE)]
    assert [f.decided_ms - T0 for f in _fired(rest_of_day)] == [60 * MINUTE]
    budget = [f for f in rest_of_day if f.reason.startswith("daily budget: 3 of 3 runs")]
    assert budget and "the next slot opens at 2026-03-03 10:00:30 UTC" in budget[0].reason
    assert launcher.started == ["on-drift"] * 3
    next_day = flap(T0 + 24 * 60 * MINUTE + MINUTE)
    assert [f.is_fired for f in next_day] == [True]  # the first firing left the 24 h window
    assert len(trigger_history(ws.store, "on-drift", limit=1000)) == 60 + 69 + 1


def test_new_dataset_version_fires_once_per_version(ws: Workspace) -> None:
    from modelpilot.clock import now_ms

    _define(ws, "on-customers", now=now_ms() - 1, dataset="customers")
    launcher = Recorder()
    ws.log_dataset(pd.DataFrame({"a": [1, 2]}), "other")
    assert evaluate_triggers(ws.store, now_ms(), launch=launcher) == []
    first = ws.log_dataset(pd.DataFrame({"a": [1, 2]}), "customers")
    [fired] = evaluate_triggers(ws.store, now_ms(), launch=launcher)
    assert fired.is_fired and fired.occurrence == f"dataset:{first.digest}"
    ws.log_dataset(pd.DataFrame({"a": [1, 2]}), "customers")  # same content: no new version
    assert evaluate_triggers(ws.store, now_ms(), launch=launcher) == []
    second = ws.log_dataset(pd.DataFrame({"a": [3, 4]}), "customers")
    [again] = evaluate_triggers(ws.store, now_ms(), launch=launcher)
    assert again.occurrence == f"dataset:{second.digest}" and again.is_fired
    assert launcher.started == ["on-customers"] * 2


def test_no_cooldown_holds_when_a_later_clock_fired_first(ws: Workspace) -> None:
    """Two agents: one whose iteration began earlier decides after the other (or a person)
    fired at a later time. Without a cooldown the trigger still fires (it was skipped with
    "the 0s cooldown ends at ...", seen while building benchmarks/agents_soak.py)."""
    from modelpilot.clock import now_ms

    start = now_ms()
    _define(ws, "on-orders", now=start - 1, dataset="orders", max_concurrent=10)
    version = ws.log_dataset(pd.DataFrame({"a": [1, 2]}), "orders")
    later = max(start, version.created_ms) + 5_000
    assert fire_trigger(ws.store, "on-orders", later, actor="ann").is_fired
    [decided] = evaluate_triggers(ws.store, later - 1_000, actor="agent:slow")
    assert decided.occurrence == f"dataset:{version.digest}"
    assert decided.is_fired, decided.reason


def test_manual_fire_skips_cooldown_but_not_budget_or_concurrency(ws: Workspace) -> None:
    _define(ws, "by-hand", cooldown_s=3600, daily_budget=2)
    assert fire_trigger(ws.store, "by-hand", T0, actor="ann").is_fired  # no launch: pending
    busy = fire_trigger(ws.store, "by-hand", T0 + MINUTE, actor="ann")
    assert not busy.is_fired
    assert busy.reason.startswith("concurrency: 1 of at most 1 runs of this trigger")
    assert evaluate_triggers(ws.store, T0 + 2 * MINUTE) == []  # a manual trigger never ticks
    _define(ws, "by-hand-2", cooldown_s=3600, daily_budget=2)
    launcher = Recorder()
    fired = [
        fire_trigger(ws.store, "by-hand-2", T0 + m, actor="bo", launch=launcher) for m in (1, 2, 3)
    ]
    assert [f.is_fired for f in fired] == [True, True, False]
    assert fired[2].reason.startswith("daily budget: 2 of 2 runs fired in the last 24 h")
    assert fired[0].actor == "bo"
    with pytest.raises(
        NotFound, match="No trigger named 'nope'. Existing triggers: by-hand, by-hand-2"
    ):
        fire_trigger(ws.store, "nope", T0, actor="ann")


def test_a_firing_starts_a_real_pipeline_run_and_a_broken_target_is_recorded(
    ws: Workspace, tmp_path: Path
) -> None:
    services = PipelineServices(ws.store, ws.tracking, ws.datasets, ws.registry)
    executor = InlineExecutor(
        services=StepServices(ws.datasets, ws.registry), attach=ws.attached_run
    )
    launch = PipelineLauncher(services, executor)
    _define(ws, "real", params=["x=21"])
    gone = tmp_path / "gone.py"
    gone.write_text(Path(TINY).read_text())
    define_trigger(ws.store, name="broken", target=f"{gone}:tiny", actor="t", now_ms=T0)
    gone.unlink()
    ran = fire_trigger(ws.store, "real", T0, actor="t", launch=launch)
    assert ran.pipeline_run_id and ran.error is None
    run = get_pipeline_run(ws.store, ran.pipeline_run_id)
    assert run.state is PipelineState.SUCCEEDED and run.steps[0].output == {
        "kind": "value",
        "value": 42,
    }
    failed = fire_trigger(ws.store, "broken", T0, actor="t", launch=launch)
    assert failed.is_fired and failed.pipeline_run_id is None
    assert failed.error and "no Python file at" in failed.error
    again = fire_trigger(ws.store, "broken", T0 + 1, actor="t", launch=launch)
    assert again.is_fired  # a failed launch does not hold a concurrency slot


def test_two_evaluators_on_one_database_decide_each_occurrence_once(ws: Workspace) -> None:
    _define(ws, "every-minute", schedule="* * * * *", max_concurrent=100, daily_budget=1000)
    _define(ws, "every-5", schedule="* * * * *", cooldown_s=300, max_concurrent=100)
    uri = ws.store.engine.url.render_as_string(hide_password=False)
    ticks = [T0 + m * MINUTE for m in range(1, 31)]

    def evaluator(store: Store, slot: int) -> list[Firing]:
        return [
            f for tick in ticks for f in evaluate_triggers(store, tick, actor=f"evaluator-{slot}")
        ]

    results = race_on_stores(uri, evaluator)
    both = results[0] + results[1]
    keys = [(f.trigger_name, f.occurrence) for f in both]
    assert len(keys) == len(set(keys)) == 60  # 30 minutes x 2 triggers, each decided once
    every = [f for f in both if f.trigger_name == "every-minute"]
    assert len(_fired(every)) == 30
    by5 = sorted((f for f in both if f.trigger_name == "every-5"), key=lambda f: f.due_ms)
    assert [(f.due_ms - T0) // MINUTE for f in _fired(by5)] == [0, 5, 10, 15, 20, 25]
    history = trigger_history(ws.store, "every-5", limit=100)
    assert len(history) == 30


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"schedule": "61 * * * *"}, r"the minute field '61' is not valid; it accepts 0-59"),
        ({"schedule": "0 3 * * 8"}, r"the day of week field '8' is not valid"),
        ({"schedule": "0 3 * *"}, r"has 4 fields; expected 5: minute hour"),
        ({"schedule": "0 0 3 * * *"}, r"has 6 fields; expected 5"),
        ({"schedule": "* * * * *", "dataset": "d"}, r"give one of --schedule, --on-dataset"),
        ({"dataset": "d@1a2b"}, r"give a dataset name \(no @version\)"),
        ({"alert_subject": "x"}, r"--alert-subject needs --on-alert RULE"),
        ({"daily_budget": 0}, r"daily-budget must be between 1 and 1000 runs per 24 h; got 0"),
        ({"max_concurrent": 0}, r"max-concurrent must be between 1 and 100; got 0"),
        ({"param": ["y=1"]}, r"Unknown param 'y' for pipeline 'tiny'; it takes: x=1"),
        ({"target": f"{TINY}:not_a_pipeline"}, r"'not_a_pipeline' is a int, not a pipeline"),
        (
            {"target": "missing.py:tiny"},
            r"no Python file at /\S*/missing.py \(expected an existing .py file",
        ),
        ({"name": "no spaces"}, r"Trigger name 'no spaces' is not valid"),
    ],
)
def test_bad_input_is_refused_with_the_field_named_and_nothing_stored(
    ws: Workspace, options: dict[str, object], message: str
) -> None:
    arguments: dict[str, object] = {"name": "t", "target": f"{TINY}:tiny", "params": ()}
    arguments.update(options)
    if "param" in arguments:
        arguments["params"] = arguments.pop("param")
    with pytest.raises(InvalidInput, match=message):
        define_trigger(ws.store, actor="t", now_ms=T0, **arguments)  # type: ignore[arg-type]
    assert list_triggers(ws.store) == []


def test_a_taken_name_is_a_conflict(ws: Workspace) -> None:
    _define(ws, "once")
    with pytest.raises(Conflict, match="A trigger named 'once' exists; delete it first"):
        _define(ws, "once", schedule="0 3 * * *")
    assert [t.condition for t in list_triggers(ws.store)] == ["manual"]


def test_missed_schedule_times_are_decided_skipped_and_only_the_newest_fires(
    ws: Workspace,
) -> None:
    """An evaluator away (or busy) for three cron times decides each of them once: the older
    two skipped as missed, the newest by its limits; nothing is decided twice afterwards."""
    define_trigger(
        ws.store,
        name="quarterly",
        target=f"{TINY}:tiny",
        schedule="*/15 * * * *",
        actor="t",
        now_ms=T0,
    )
    later = T0 + 50 * MINUTE  # 10:15, 10:30 and 10:45 are due
    decided = evaluate_triggers(ws.store, later)
    assert [(f.decision, f.due_ms) for f in decided] == [
        (Decision.SKIPPED, T0 + 15 * MINUTE - 30_000),
        (Decision.SKIPPED, T0 + 30 * MINUTE - 30_000),
        (Decision.FIRED, T0 + 45 * MINUTE - 30_000),
    ]
    assert decided[0].reason == (
        "missed: due at 2026-03-02 10:15 UTC while no evaluator decided; only the newest due "
        "time (2026-03-02 10:45 UTC) may fire"
    )
    assert evaluate_triggers(ws.store, later) == []
    next_one = evaluate_triggers(ws.store, T0 + 61 * MINUTE)  # 11:00: nothing missed between
    assert [(f.due_ms, f.reason.startswith("missed")) for f in next_one] == [
        (T0 + 60 * MINUTE - 30_000, False)
    ]
