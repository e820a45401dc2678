"""``modelpilot runs``: list and show tracked runs."""

from __future__ import annotations

import typer
from rich.table import Table

from modelpilot.cli.context import console, fmt_ms, get_workspace, print_json

runs_app = typer.Typer(help="Tracked runs.", no_args_is_help=True)


@runs_app.command("list")
def list_runs(
    experiment: str | None = typer.Option(None, "--experiment", "-e", help="Only this experiment."),
    filter: str = typer.Option("", "--filter", "-f", help='e.g. "metrics.auc > 0.9"'),
    order_by: list[str] = typer.Option([], "--order-by", "-o", help='e.g. "metrics.auc DESC"'),
    limit: int = typer.Option(50, "--limit", "-n", min=1),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List runs, newest first (or as ordered)."""
    frame = get_workspace().search_runs(experiment, filter, order_by, limit)
    if as_json:
        print_json(frame.to_dict(orient="records"))
        return
    metric_cols = [c for c in frame.columns if c.startswith("metrics.")][:4]
    table = Table(title=f"Runs{f' in {experiment}' if experiment else ''}")
    for col in ["run", "experiment", "name", "status", "started", *[c[8:] for c in metric_cols]]:
        table.add_column(col)
    for values in frame.to_dict(orient="records"):
        table.add_row(
            str(values["run_id"])[:8],
            str(values["experiment"]),
            str(values["name"]),
            str(values["status"]),
            str(values["start_time"])[:19],
            *[_num(values[c]) for c in metric_cols],
        )
    console.print(table)


@runs_app.command("show")
def show_run(
    run_id: str = typer.Argument(..., help="Run id, or a unique prefix (runs list shows 8)."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Show one run: status, params, latest metrics, tags, datasets, artifacts."""
    ws = get_workspace()
    run = ws.get_run(ws.tracking.resolve_run_id(run_id))
    if as_json:
        data = {
            "id": run.id,
            "experiment": run.experiment,
            "name": run.name,
            "status": run.status.value,
            "start_ms": run.start_ms,
            "end_ms": run.end_ms,
            "parent_run_id": run.parent_run_id,
            "code_revision": run.code_revision,
            "params": run.params,
            "metrics": run.metrics,
            "tags": run.tags,
            "datasets": [d.__dict__ for d in run.datasets],
            "artifacts": run.artifacts,
        }
        print_json(data)
        return
    console.print(f"[bold]Run {run.id}[/bold]  {run.name}  [{run.status.value}]")
    console.print(
        f"experiment {run.experiment}  started {fmt_ms(run.start_ms)}  ended {fmt_ms(run.end_ms)}"
    )
    console.print(
        f"code {run.code_revision or 'unknown'}  Python {run.environment.get('python', '?')}"
    )
    for title, mapping in (("Params", run.params), ("Metrics", run.metrics), ("Tags", run.tags)):
        if mapping:
            table = Table(title=title)
            table.add_column("key")
            table.add_column("value")
            for key, value in sorted(mapping.items()):
                table.add_row(key, _num(value))
            console.print(table)
    for ds in run.datasets:
        console.print(f"dataset {ds.name}@{ds.version} ({ds.role})")
    for path, digest in sorted(run.artifacts.items()):
        console.print(f"artifact {path} ({digest[:12]})")


def _num(value: object) -> str:
    if isinstance(value, float) and value != value:  # NaN: the run has no such metric
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def register(app: typer.Typer) -> None:
    """Attach ``runs`` commands."""
    app.add_typer(runs_app, name="runs")
