"""``modelpilot alerts``: the alerts recorded in the audit log (locally, or on the server)."""

from __future__ import annotations

import typer
from rich.table import Table

from modelpilot.cli.context import console, fmt_ms, get_workspace, print_json

alerts_app = typer.Typer(help="Recorded alerts (firing and resolved).", no_args_is_help=True)


@alerts_app.command("list")
def list_alerts(
    subject: str | None = typer.Option(
        None, "--subject", "-s", help="Only alerts on this deployment or model."
    ),
    state: str | None = typer.Option(None, "--state", help="pending, firing or resolved."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, max=1000),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The newest recorded alerts, newest first."""
    records = get_workspace().alerts.list_alerts(subject=subject, state=state, limit=limit)
    if as_json:
        print_json([r.to_dict() for r in records])
        return
    table = Table(title="Alerts")
    for col in ("id", "time", "state", "severity", "subject", "rule", "value", "recorded by"):
        table.add_column(col)
    for r in records:
        a = r.alert
        table.add_row(
            str(r.id),
            fmt_ms(a.time_ms),
            a.state,
            a.severity,
            a.subject,
            a.rule,
            f"{a.metric} {a.value:.4g} ({a.op} {a.threshold:g})",
            r.actor,
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    """Attach ``alerts`` commands."""
    app.add_typer(alerts_app, name="alerts")
