"""``modelpilot pipelines trigger ...`` and ``modelpilot pipelines tick``: what starts a
pipeline by itself (a schedule, a new dataset version, an alert) or by a person."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.table import Table

from modelpilot.cli.context import console, fmt_ms, get_workspace, print_json
from modelpilot.clock import now_ms, parse_duration_s
from modelpilot.errors import Conflict, InvalidInput, ModelpilotError, NotFound, shown

if TYPE_CHECKING:
    # the pipelines' records and the store (SQLAlchemy): imported by each command, so the CLI
    # starts without them (a model image's `modelpilot serve` has no store)
    from modelpilot.pipelines import Firing, PipelineLauncher, Trigger

trigger_app = typer.Typer(
    help="Triggers that start a pipeline: schedule, new dataset version, alert, manual.",
    no_args_is_help=True,
)


def _cooldown_s(text: str) -> float:
    seconds = 0.0 if text.strip() == "0" else parse_duration_s(text)
    if seconds is None:
        raise InvalidInput(
            f"--cooldown {shown(text)} is not a duration: use 0, 45s, 30m, 1h, 1d or 1w.",
            field="cooldown",
        )
    return seconds


def _dataset_exists(name: str) -> bool:
    try:
        get_workspace().datasets.get_dataset(name)
    except NotFound:
        return False
    return True


def _launcher() -> PipelineLauncher:
    from modelpilot.pipelines import (
        PipelineLauncher,
        PipelineServices,
        SubprocessExecutor,
        worker_environment,
    )

    ws = get_workspace()
    services = PipelineServices(ws.store, ws.tracking, ws.datasets, ws.registry)
    return PipelineLauncher(services, SubprocessExecutor(env=worker_environment(ws.settings)))


@trigger_app.command("create")
def create(
    name: str = typer.Argument(..., help="Trigger name (letters, digits, . _ -)."),
    pipeline: str = typer.Option(..., "--pipeline", help="FILE.py:NAME or MODULE:NAME."),
    schedule: str | None = typer.Option(
        None, "--schedule", help="Cron, 5 fields, UTC: '0 3 * * *' is 03:00 every day."
    ),
    on_dataset: str | None = typer.Option(
        None, "--on-dataset", help="Fire on each new version of this dataset."
    ),
    on_alert: str | None = typer.Option(
        None, "--on-alert", help="Fire when an alert of this rule fires."
    ),
    alert_subject: str | None = typer.Option(
        None, "--alert-subject", help="With --on-alert: only alerts on this subject."
    ),
    cooldown: str = typer.Option("0", "--cooldown", help="Quiet time after a firing: 30m, 1h."),
    max_concurrent: int = typer.Option(1, "--max-concurrent", help="Runs at once, at most."),
    daily_budget: int = typer.Option(24, "--daily-budget", help="Runs per 24 h, at most."),
    param: list[str] = typer.Option([], "--param", "-p", help="NAME=VALUE; repeat for more."),
) -> None:
    """Create a trigger (none of --schedule/--on-dataset/--on-alert: manual only)."""
    from modelpilot.pipelines import TriggerKind, define_trigger
    from modelpilot.store.events import default_actor

    ws = get_workspace()
    made = define_trigger(
        ws.store, name=name, target=pipeline, params=param, schedule=schedule,
        dataset=on_dataset, alert_rule=on_alert, alert_subject=alert_subject,
        cooldown_s=_cooldown_s(cooldown), max_concurrent=max_concurrent,
        daily_budget=daily_budget, actor=default_actor(), now_ms=now_ms(),
    )  # fmt: skip
    console.print(
        f"Created trigger {made.name}: {made.condition} -> {made.target}", highlight=False
    )
    if made.kind is TriggerKind.DATASET and not _dataset_exists(made.spec["dataset"]):
        console.print(
            f"Note: no dataset named {made.spec['dataset']!r} yet; the trigger fires on its "
            "first version.",
            highlight=False,
        )


@trigger_app.command("list")
def list_cmd(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Every trigger with its condition and limits."""
    from modelpilot.pipelines import list_triggers

    found = list_triggers(get_workspace().store)
    if as_json:
        print_json([_trigger_dict(t) for t in found])
        return
    table = Table(title="Triggers")
    for column in ("name", "condition", "pipeline", "params", "cooldown", "max", "budget/24h"):
        table.add_column(column, overflow="fold")
    for t in found:
        table.add_row(
            t.name, t.condition, t.target, " ".join(t.params), f"{t.cooldown_ms // 1000} s",
            str(t.max_concurrent), str(t.daily_budget),
        )  # fmt: skip
    console.print(table)


@trigger_app.command("fire")
def fire(name: str = typer.Argument(..., help="Trigger name.")) -> None:
    """Fire a trigger now, as a person: no cooldown; concurrency and the budget still hold."""
    from modelpilot.pipelines import fire_trigger
    from modelpilot.store.events import default_actor

    ws = get_workspace()
    firing = fire_trigger(ws.store, name, now_ms(), actor=default_actor(), launch=_launcher())
    _print_firing(firing)
    if not firing.is_fired:
        raise Conflict(f"Trigger {name!r} did not fire: {firing.reason}.", field="name")
    if firing.error:
        raise ModelpilotError(f"Trigger {name!r} fired but its run failed: {firing.error}")


@trigger_app.command("history")
def history(
    name: str = typer.Argument(..., help="Trigger name."),
    limit: int = typer.Option(50, "--limit", "-n", min=1),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """A trigger's decisions, newest first: fired (with the pipeline run) or skipped (why)."""
    from modelpilot.pipelines import trigger_history

    found = trigger_history(get_workspace().store, name, limit=limit)
    if as_json:
        print_json([_firing_dict(f) for f in found])
        return
    table = Table(title=f"Trigger {name}")
    for column in ("decided", "due", "decision", "by", "pipeline run", "reason / error"):
        table.add_column(column, overflow="fold")
    for f in found:
        table.add_row(
            fmt_ms(f.decided_ms), fmt_ms(f.due_ms), f.decision.value, f.actor,
            (f.pipeline_run_id or "-")[:8], f.error or f.reason,
        )  # fmt: skip
    console.print(table)


@trigger_app.command("delete")
def delete(name: str = typer.Argument(..., help="Trigger name.")) -> None:
    """Delete a trigger; its history stays in the database."""
    from modelpilot.pipelines import delete_trigger
    from modelpilot.store.events import default_actor

    gone = delete_trigger(get_workspace().store, name, actor=default_actor())
    console.print(f"Deleted trigger {gone.name}.", highlight=False)


def tick(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Evaluate every trigger once, now, and start the runs that fire (the agent loops this)."""
    from modelpilot.pipelines import evaluate_triggers
    from modelpilot.pipelines.evaluator import summarised
    from modelpilot.store.events import default_actor

    decided = evaluate_triggers(
        get_workspace().store, now_ms(), launch=_launcher(), actor=f"tick:{default_actor()}"
    )
    if as_json:
        print_json([_firing_dict(f) for f in decided])
        return
    if not decided:
        console.print("Nothing due.")
    for firing in summarised(decided):
        if isinstance(firing, tuple):
            console.print(f"{firing[0]}: skipped {firing[1]} missed schedule time(s) (recorded; "
                          "only the newest may fire)", highlight=False)  # fmt: skip
        else:
            _print_firing(firing)


def _print_firing(f: Firing) -> None:
    run = f" pipeline run {f.pipeline_run_id[:8]}" if f.pipeline_run_id else ""
    detail = f"; error: {f.error}" if f.error else ""
    console.print(
        f"{f.trigger_name}: {f.decision.value} ({f.reason}){run}{detail}",
        highlight=False,
        soft_wrap=True,
    )


def _trigger_dict(t: Trigger) -> dict[str, object]:
    return {
        "name": t.name, "kind": t.kind.value, "spec": t.spec, "target": t.target,
        "params": list(t.params), "cooldown_ms": t.cooldown_ms,
        "max_concurrent": t.max_concurrent, "daily_budget": t.daily_budget,
        "created_ms": t.created_ms, "created_by": t.created_by,
    }  # fmt: skip


def _firing_dict(f: Firing) -> dict[str, object]:
    return {
        "trigger": f.trigger_name, "occurrence": f.occurrence, "due_ms": f.due_ms,
        "decided_ms": f.decided_ms, "decision": f.decision.value, "reason": f.reason,
        "actor": f.actor, "pipeline_run_id": f.pipeline_run_id, "error": f.error,
    }  # fmt: skip


def register(pipelines_app: typer.Typer) -> None:
    """Attach ``trigger`` and ``tick`` under ``pipelines``."""
    pipelines_app.add_typer(trigger_app, name="trigger")
    pipelines_app.command("tick")(tick)
