"""``modelpilot profile``: latency, memory, throughput and cost of a version on an edge or a
cloud target (docs/optimize.md)."""

from __future__ import annotations

import typer
from rich.table import Table

from modelpilot.cli.context import console, err_console, get_workspace


def _num(value: object, spec: str) -> str:
    if not isinstance(value, (int, float)) or value != value:
        return "-"
    return format(value, spec)


def profile_command(
    ref: str = typer.Argument(..., help="Version to profile, e.g. churn/4 or churn@champion"),
    target: str = typer.Option("edge,cloud", "--target", help="edge, cloud, or edge,cloud"),
    core_hour_price: float = typer.Option(
        0.05, "--core-hour-price", help="Price of one core for one hour (for the cost column)"
    ),
    memory_mb: int = typer.Option(4096, "--memory-mb", help="Edge address-space cap (MB)"),
    data: str | None = typer.Option(
        None, "--data", "-d", help="Dataset to send rows from (default: the training data)"
    ),
) -> None:
    """Profile a version on one pinned core under a memory cap (edge) and behind `modelpilot
    serve` with adaptive batching (cloud); the table is stored on the version's model card."""
    from modelpilot.optimization.profile import profile_version
    from modelpilot.pipelines.executor import worker_environment

    ws = get_workspace()
    settings = ws.settings
    remote = {
        "MODELPILOT_SERVER_URI": settings.server_uri or "",
        "MODELPILOT_TOKEN": settings.token or "",
    }
    env = remote if ws.is_remote else worker_environment(settings)
    with err_console.status(f"Profiling {ref}…") as status:  # (stderr: stdout stays the table)
        table = profile_version(
            ws.registry, ws.datasets, ref, target, env,
            core_hour_price=core_hour_price, memory_mb=memory_mb, data=data,
            progress=lambda step: status.update(f"{step}…"),
        )  # fmt: skip
    price = f"{core_hour_price:g}"
    out = Table(title=f"Profile of {table.ref} (cost per 1M predictions at {price} per core-hour)")
    # (the title says what the cost is of: every header fits 80 columns)
    for title in ("target", "cores", "p50 ms", "p99 ms", "memory MB", "req/s", "cold start s",
                  "cost / 1M"):  # fmt: skip
        out.add_column(title)
    for row in table.rows:
        out.add_row(
            row.target,
            str(row.cores),
            _num(row.p50_ms, ".3g"),
            _num(row.p99_ms, ".3g"),
            _num(row.memory_mb, ",.0f"),
            _num(row.req_per_s, ",.0f"),
            _num(row.cold_start_s, ".2f"),
            _num(row.cost_per_million(core_hour_price), ".4g"),
        )
    console.print(out)
    for row in table.rows:
        if row.error:
            console.print(f"{row.target}: {row.error}")
    console.print(f"Stored on {table.ref} (modelpilot models card {table.ref})")


def register(app: typer.Typer) -> None:
    """Attach ``profile``."""
    app.command("profile")(profile_command)
