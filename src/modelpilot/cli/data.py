"""``modelpilot data validate``: check a file against rules from a reference dataset."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import typer
import yaml
from rich.table import Table

from modelpilot.cli.context import console, get_workspace

if TYPE_CHECKING:
    from modelpilot.data.risks import DataRisks
    from modelpilot.data.validation import Rule
    from modelpilot.workspace import Workspace

data_app = typer.Typer(help="Data validation.", no_args_is_help=True)


@data_app.command("validate")
def validate_command(
    reference: str = typer.Argument(
        ..., help="Dataset reference (name or name@version) the rules come from."
    ),
    data: Path = typer.Argument(..., help="New data: .parquet, .csv, .tsv, .csv.gz or .tsv.gz"),
    rules: Path | None = typer.Option(None, "--rules", help="YAML list of declared rules to add."),
) -> None:
    """List failed rules with examples; exit code 8 when any rule fails."""
    from modelpilot.data.validation import declared_rules, infer_rules, validate
    from modelpilot.tables import read_frame, require_table

    ws = get_workspace()
    kind = require_table(data, "The data file", "data")
    checks = infer_rules(ws.load_dataset(reference))
    if rules is not None:
        checks += declared_rules(yaml.safe_load(rules.read_text()) or [])
    frame = read_frame(data, kind)
    result = validate(frame, checks, risks=_risks(ws, frame, checks))
    if result.passed:
        console.print(f"All {result.rules_checked} rules passed on {result.rows:,} rows.")
        return
    table = Table(
        title=f"{len(result.failures)} of {result.rules_checked} rules failed on {data.name}"
    )
    for col in ("column", "rule", "source", "failed rows", "examples"):
        table.add_column(col)
    for failure in result.failures:
        examples = failure.describe_examples()
        share = failure.failed_rows / max(failure.total_rows, 1)
        table.add_row(
            failure.rule.column,
            failure.rule.describe(),
            failure.rule.source,
            f"{failure.failed_rows:,} ({share:.1%})",
            examples,
        )
    console.print(table)
    raise typer.Exit(8)


def _risks(ws: Workspace, frame: pd.DataFrame, checks: list[Rule]) -> DataRisks | None:
    """The data risks the declared dataset-level rules need (none when there are none)."""
    from modelpilot.data.validation import RISK_KINDS
    from modelpilot.errors import InvalidInput

    wanted = [r for r in checks if r.kind in RISK_KINDS]
    if not wanted:
        return None
    labels = {r.column for r in wanted if r.kind in ("max_label_issue_share", "min_minority_share")}
    against = {r.against for r in wanted if r.kind == "no_leakage"}
    if len(labels) > 1 or len(against) > 1:
        raise InvalidInput(
            f"Data-risk rules must name one label column and one leakage dataset; got labels "
            f"{sorted(labels)} and datasets {sorted(a or '' for a in against)}.",
            field="rules",
        )
    return ws.assess_data_risks(
        frame,
        label=next(iter(labels), None),
        leakage_against=next(iter(against), None),
        label_issues=any(r.kind == "max_label_issue_share" for r in wanted),
    )


def register(app: typer.Typer) -> None:
    """Attach ``data``."""
    app.add_typer(data_app, name="data")
