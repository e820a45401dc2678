"""``modelpilot monitor``: drift, performance and operations of a deployment, with alerts.

With ``MODELPILOT_SERVER_URI`` set, the server runs each job on the prediction log in its own
home (a data plane sharing that home) and keeps the report; alerts are still sent from here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
import yaml
from rich.table import Table

if TYPE_CHECKING:
    from modelpilot.monitoring.slice_performance import SliceReport

from modelpilot.cli.context import console, get_workspace

monitor_app = typer.Typer(help="Monitor deployments.", no_args_is_help=True)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_window(text: str) -> float:
    """``30m``, ``1h``, ``1d`` (or plain seconds) to seconds.

    >>> parse_window("1d"), parse_window("90")
    (86400.0, 90.0)
    """
    from modelpilot.errors import InvalidInput

    unit = text[-1:].lower()
    try:
        return float(text[:-1]) * _UNITS[unit] if unit in _UNITS else float(text)
    except ValueError:
        raise InvalidInput(
            f"Window {text!r} is not a duration such as 30m, 1h or 1d.", field="window"
        ) from None


@monitor_app.command("run")
def run(
    deployment: str,
    window: str = typer.Option("1h", "--window", "-w", help="How far back to look: 30m, 1h, 1d."),
    rules: Path | None = typer.Option(None, "--rules", help="YAML list of alert rules."),
    webhook: str | None = typer.Option(None, "--webhook", help="POST alerts as JSON to this URL."),
) -> None:
    """Score one window now (keeping the report) and send alerts for rules it breaks."""
    from modelpilot.alerting import (
        AlertManager,
        ConsoleSink,
        LogFileSink,
        ServiceSink,
        Sink,
        WebhookSink,
        load_rules,
    )
    from modelpilot.alerting.rules import DEFAULT_RULES

    ws = get_workspace()
    result = ws.monitoring.run(deployment, window_s=parse_window(window))
    table = Table(
        title=f"{deployment} ({result.model}), {result.rows} rows in the last {window} "
        f"(report {result.report_id})"
    )
    table.add_column("figure")
    table.add_column("value")
    for name, value in sorted(result.figures.items()):
        table.add_row(name, f"{value:.4g}")
    console.print(table)
    if result.drift is not None:
        drifted = result.drift.drifted_columns + result.drift.drifted_predictions
        console.print(
            f"drift: {'DRIFT' if result.drift.dataset_drift else 'no dataset drift'}; drifted: "
            f"{', '.join(drifted) or 'none'}"
        )
    if result.slices is not None:
        console.print(_slice_table(result.slices))
    for note in result.notes:
        console.print(f"[yellow]note[/yellow] {note}")
    chosen = load_rules(yaml.safe_load(rules.read_text()) or []) if rules else list(DEFAULT_RULES)
    sinks: list[Sink] = [
        ConsoleSink(console),
        ServiceSink(ws.alerts),
        LogFileSink(ws.settings.home / "alerts.jsonl"),
    ]
    if webhook:
        sinks.append(WebhookSink(webhook))
    AlertManager(chosen, sinks).observe_many(deployment, result.figures, details=result.details)


@monitor_app.command("report")
def report(
    deployment: str,
    window: str = typer.Option("1d", "--window", "-w"),
    output: Path = typer.Option(
        ..., "-o", "--output", help="report.html (a .json is written beside it)"
    ),
) -> None:
    """Write a self-contained HTML drift report for a window (and the same content as JSON)."""
    from modelpilot.errors import NotFound

    result = get_workspace().monitoring.run(deployment, window_s=parse_window(window))
    if result.drift is None:
        raise NotFound(
            f"Nothing to report for {deployment!r}: {' '.join(result.notes)}", field="deployment"
        )
    sections = [] if result.slices is None else [result.slices.to_html()]
    result.drift.save_html(output, sections=sections)
    output.with_suffix(".json").write_text(json.dumps(result.to_dict(), indent=2, default=str))
    console.print(f"Wrote {output} and {output.with_suffix('.json')}")


@monitor_app.command("reports")
def reports(
    deployment: str,
    limit: int = typer.Option(20, "--limit", "-n", help="How many, newest first (up to 200)."),
) -> None:
    """List the kept monitoring reports of a deployment, newest first."""
    from modelpilot.cli.context import fmt_ms

    table = Table(title=f"Monitoring reports of {deployment}")
    columns = ("id", "created", "model", "rows", "dataset drift", "share drifted", "slice drop")
    for column in columns:
        table.add_column(column)
    for result in get_workspace().monitoring.list_reports(deployment, limit=limit):
        drift = result.figures.get("drift.dataset_drift")
        share = result.figures.get("drift.share_drifted")
        sliced = result.figures.get("performance.slice_drop")
        table.add_row(
            str(result.report_id),
            fmt_ms(result.created_ms),
            result.model,
            str(result.rows),
            "-" if drift is None else ("yes" if drift else "no"),
            "-" if share is None else f"{share:.0%}",
            "-" if sliced is None else f"{sliced:.3f}",
        )
    console.print(table)


def _slice_table(report: SliceReport) -> Table:
    """The per-slice performance of one window, the overall row first."""
    from modelpilot.monitoring.slice_performance import TABLE_COLUMNS

    table = Table(title=f"{report.metric} by slice: {report.describe()}")
    for column in TABLE_COLUMNS:
        table.add_column(column)
    for row in report.table():
        table.add_row(*row)
    return table


def register(app: typer.Typer) -> None:
    """Attach ``monitor``."""
    app.add_typer(monitor_app, name="monitor")
