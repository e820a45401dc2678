"""``modelpilot governance``: the evidence the records give for NIST AI RMF or ISO/IEC 42001."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from modelpilot.cli.context import console, get_workspace
from modelpilot.errors import InvalidInput
from modelpilot.evaluation.result import write_atomic

# --fail-on-gaps exits 12 when a control has a gap (8: data validation failures, 9: a failed
# gate, 10: a broken audit chain, 11: a failed pipeline step).
GAPS_EXIT_CODE = 12

governance_app = typer.Typer(
    help="Evidence for AI governance frameworks, from modelpilot's own records.",
    no_args_is_help=True,
)


@governance_app.command("report")
def report(
    framework: str = typer.Option(
        ..., "--framework", help="nist-ai-rmf or iso-42001 (the controls it can evidence)"
    ),
    model: str | None = typer.Option(None, "--model", help="Only this registered model"),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="report.html (self-contained) or report.json"
    ),
    fail_on_gaps: bool = typer.Option(
        False, "--fail-on-gaps", help=f"Exit {GAPS_EXIT_CODE} when any control has a gap (CI)."
    ),
) -> None:
    """List each control with the records that evidence it and the gaps where none does."""
    from modelpilot.governance import build_report, load_catalogue
    from modelpilot.governance.html import render_html

    load_catalogue().framework(framework)  # an unknown framework fails before any work
    suffix = None if output is None else output.suffix.lower()
    if suffix not in (None, ".html", ".htm", ".json"):
        raise InvalidInput(
            f"Cannot write a governance report to {output}: use a .html or .json file name.",
            field="output",
        )
    built = build_report(get_workspace().store, framework, model=model)
    if output is not None:
        data = built.to_dict()
        text = json.dumps(data, indent=2) if suffix == ".json" else render_html(built)
        write_atomic(output, text)
        console.print(f"Wrote the {framework} report to {output}.", highlight=False)
    table = Table(title=f"{built.title}: {len(built.gaps)} gap(s)")
    for col in ("control", "status", "evidence", "gaps"):
        table.add_column(col)
    for c in built.controls:
        found = sum(len(f.evidence) for f in c.findings)
        gaps = "; ".join(f"{f.model or 'workspace'}: {f.message}" for f in c.gaps)
        table.add_row(c.control.id, c.status, str(found), escape(gaps) or "-")
    console.print(table)
    if fail_on_gaps and built.gaps:
        raise typer.Exit(GAPS_EXIT_CODE)


def register(app: typer.Typer) -> None:
    """Attach ``governance`` commands."""
    app.add_typer(governance_app, name="governance")
