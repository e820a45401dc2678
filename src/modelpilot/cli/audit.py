"""``modelpilot audit``: verify the audit log's hash chain, list and export its entries."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from modelpilot.cli.context import console, fmt_ms, get_workspace
from modelpilot.clock import since_ms
from modelpilot.errors import AuditChainBroken, InvalidInput

if TYPE_CHECKING:
    from modelpilot.audit import AuditEntry

audit_app = typer.Typer(help="The tamper-evident audit log of every change.", no_args_is_help=True)
_TABLE_LIMIT = 100


@audit_app.command("verify")
def verify(
    head: str | None = typer.Option(
        None, "--head", help="A head hash printed by an earlier verify; it must still be there."
    ),
) -> None:
    """Recompute the hash chain; exit 0 when intact, 10 naming the first bad entry."""
    result = get_workspace().audit.verify(expected_head=head)
    if not result.ok:
        raise AuditChainBroken(result.message)
    console.print(result.message, highlight=False, soft_wrap=True)
    console.print(f"Head: {result.head_hash}", highlight=False, soft_wrap=True)


@audit_app.command("log")
def log(
    subject: str | None = typer.Option(
        None, "--subject", help="Only subjects starting with this, e.g. model:churn"
    ),
    since: str | None = typer.Option(None, "--since", help="ISO time or duration such as 1d"),
    limit: int | None = typer.Option(
        None, "--limit", help="Newest N entries (default: 100 in the table, all when exporting)"
    ),
    as_json: bool = typer.Option(False, "--json", help="JSON lines on stdout"),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write JSON lines here"),
) -> None:
    """List entries oldest first (a table), or export them as JSON lines."""
    if limit is not None and limit < 1:
        raise InvalidInput(f"--limit must be a positive integer; got {limit}.", field="limit")
    exporting = as_json or output is not None
    entries = get_workspace().audit.export(
        subject_prefix=subject,
        since_ms=None if since is None else since_ms(since, field="since"),
        limit=limit if limit is not None or exporting else _TABLE_LIMIT,
    )
    if output is not None:
        count = _write_lines(entries, output)
        console.print(f"Wrote {count} audit entries to {output}.", highlight=False)
    elif as_json:
        for entry in entries:
            typer.echo(_line(entry), nl=False)
    else:
        console.print(_table(list(entries)))


def _write_lines(entries: Iterable[AuditEntry], output: Path) -> int:
    """Write the entries as JSON lines (streamed: a long log is never held in memory)."""
    count = 0
    with output.open("w", encoding="utf-8") as out:
        for entry in entries:
            out.write(_line(entry))
            count += 1
    return count


def _line(entry: AuditEntry) -> str:
    return json.dumps(entry.to_dict(), sort_keys=True) + "\n"


def _table(entries: list[AuditEntry]) -> Table:
    table = Table(title="Audit log")
    for col in ("id", "time", "actor", "kind", "subject", "change"):
        table.add_column(col)
    for e in entries:
        actor = e.actor if e.is_authenticated else f"{e.actor} (unauthenticated)"
        change = json.dumps(e.payload, sort_keys=True)
        table.add_row(str(e.id), fmt_ms(e.time_ms), actor, e.kind, e.subject, change[:80])
    return table


def register(app: typer.Typer) -> None:
    """Attach ``audit`` commands."""
    app.add_typer(audit_app, name="audit")
