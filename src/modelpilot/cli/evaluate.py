"""``modelpilot evaluate`` and ``modelpilot gate``: evidence on a version, and a CI gate."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from modelpilot.cli.context import console, get_workspace


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def evaluate_command(
    ref: str = typer.Argument(..., help="Version to evaluate, e.g. churn/4"),
    data: str = typer.Option(..., "--data", "-d", help="Labelled dataset: name@version"),
    target: str = typer.Option(..., "--target", "-t", help="Label column"),
    baseline: str | None = typer.Option(None, "--baseline", "-b", help="e.g. churn@champion"),
    slices: str = typer.Option("", "--slices", help="Comma-separated slice columns"),
    sensitive: str = typer.Option("", "--sensitive", help="Comma-separated sensitive attributes"),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write the HTML report here"),
) -> None:
    """Evaluate a version (metrics with intervals, slices, calibration, fairness, robustness)."""
    from modelpilot.assessment import evaluate_version

    result = evaluate_version(
        get_workspace(),
        ref,
        data,
        target,
        baseline=baseline,
        slices=_split(slices),
        sensitive=_split(sensitive),
    )
    table = Table(title=f"{ref} on {data} ({result.n_rows:,} rows, {result.task})")
    for col in ("metric", "value", f"{result.confidence:.0%} interval"):
        table.add_column(col)
    for name, value in result.metrics.items():
        interval = (
            "-"
            if value.lower is None or value.upper is None
            else f"{value.lower:.4g} – {value.upper:.4g}"
        )
        table.add_row(name, f"{value.value:.4g}", interval)
    console.print(table)
    if output is not None:
        result.save_html(output)
        console.print(f"Wrote {output}")


def gate_command(
    ref: str = typer.Argument(..., help="Candidate version, e.g. churn/4"),
    policy: Path = typer.Option(..., "--policy", "-p", help="Gate policy YAML"),
    data: str = typer.Option(..., "--data", "-d", help="Labelled dataset: name@version"),
    target: str = typer.Option(..., "--target", "-t", help="Label column"),
    baseline: str | None = typer.Option(None, "--baseline", "-b", help="e.g. churn@champion"),
    slices: str = typer.Option("", "--slices"),
    sensitive: str = typer.Option("", "--sensitive"),
) -> None:
    """Check a version against a policy; exit code 9 when any check fails (for CI jobs)."""
    from modelpilot.assessment import gate_version

    verdict = gate_version(
        get_workspace(),
        ref,
        policy,
        data,
        target,
        baseline=baseline,
        slices=_split(slices),
        sensitive=_split(sensitive),
    )
    table = Table(title=f"Gate {policy.name} on {ref}: {'PASSED' if verdict.passed else 'FAILED'}")
    for col in ("check", "result", "value", "threshold", "detail"):
        table.add_column(col)
    for check in verdict.checks:
        table.add_row(
            check.name,
            "[green]pass[/green]" if check.passed else "[red]FAIL[/red]",
            "-" if check.value is None else f"{check.value:.4g}",
            "-" if check.threshold is None else f"{check.threshold:.4g}",
            check.message,
        )
    console.print(table)
    if not verdict.passed:
        raise typer.Exit(9)


def register(app: typer.Typer) -> None:
    """Attach ``evaluate`` and ``gate``."""
    app.command("evaluate")(evaluate_command)
    app.command("gate")(gate_command)
