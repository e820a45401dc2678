"""``modelpilot logs policy set|show`` (on the local store, or on ``modelpilot server``) and
``modelpilot logs purge``: what the prediction log keeps of personal data, and for how long
(attached to the ``logs`` group in :mod:`.serve`)."""

from __future__ import annotations

import typer
from rich.table import Table

from modelpilot.cli.context import console, fmt_ms, get_workspace

policy_app = typer.Typer(
    help="Per-column logging policies: keep, hash, redact or drop.", no_args_is_help=True
)


@policy_app.command("set")
def policy_set(
    model: str = typer.Argument(..., help="The model whose inputs the columns are."),
    column: list[str] = typer.Option(
        [], "--column", "-c", help="COLUMN=ACTION, ACTION one of keep, hash, redact, drop."
    ),
    deployment: str | None = typer.Option(
        None, "--deployment", "-d", help="Set it for this deployment's requests only."
    ),
    retention_days: int | None = typer.Option(
        None, "--retention-days", min=1, help="Delete logged rows older than this."
    ),
) -> None:
    """Set what the prediction log keeps of each input (merged into the stored policy).

    Example: modelpilot logs policy set churn --column email=hash --column name=drop
    """
    from modelpilot.predictions.policy_store import parse_column_actions

    stored = get_workspace().log_policies.set_policy(
        model,
        parse_column_actions(column),
        deployment=deployment,
        retention_days=retention_days,
    )
    columns = ", ".join(f"{c}={a}" for c, a in sorted(stored.policy.columns.items())) or "none"
    retention = stored.policy.retention_days
    console.print(
        f"Logging policy of {stored.scope} {stored.name!r}: {columns}; retention "
        f"{f'{retention} days' if retention else 'unlimited'}. Running servers apply it "
        "within a second.",
        highlight=False,
    )


@policy_app.command("show")
def policy_show(
    name: str | None = typer.Argument(None, help="Only this model's or deployment's policy."),
) -> None:
    """List the logging policies (the server's, with MODELPILOT_SERVER_URI set)."""
    table = Table("scope", "name", "columns", "retention", "updated", "by")
    for stored in get_workspace().log_policies.list_policies():
        if name is not None and stored.name != name:
            continue
        columns = ", ".join(f"{c}={a}" for c, a in sorted(stored.policy.columns.items()))
        days = stored.policy.retention_days
        table.add_row(
            stored.scope,
            stored.name,
            columns or "-",
            f"{days} days" if days else "-",
            fmt_ms(stored.updated_ms),
            stored.actor,
        )
    console.print(table)


def logs_purge(
    before: str = typer.Option(
        ..., "--before", help="Delete segments whose rows are all older: 2026-01-31 or 90d."
    ),
    model: str | None = typer.Option(None, "--model", help="Only this model's segments."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would be deleted."),
) -> None:
    """Delete prediction-log segments older than a date (whole segments, atomically)."""
    from modelpilot.clock import since_ms
    from modelpilot.predictions import log_folder
    from modelpilot.predictions.retention import purge_segments

    cutoff = since_ms(before, field="before")
    folder = log_folder(get_workspace().settings.home)
    result = purge_segments(folder, cutoff, model=model, dry_run=dry_run)
    verb = "Would delete" if dry_run else "Deleted"
    console.print(
        f"{verb} {len(result.removed)} segments ({result.rows_removed} rows) older than "
        f"{fmt_ms(cutoff)}; {result.kept} kept.",
        highlight=False,
    )
