"""``modelpilot evaluate`` and ``modelpilot gate``: evidence on a version, and a CI gate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    shap: bool = typer.Option(False, "--shap", help="SHAP values (needs modelpilot[governance])"),
    adversarial: bool = typer.Option(
        False, "--adversarial", help="Share of rows whose class flips under small perturbations"
    ),
    membership: bool = typer.Option(
        False, "--membership", help="Membership-inference attack AUC (training vs this data)"
    ),
    train_data: str | None = typer.Option(
        None, "--train-data", help="Training rows for --membership (default: the linked ones)"
    ),
) -> None:
    """Evaluate a version (metrics with intervals, slices, calibration, fairness, robustness;
    opt-in SHAP, adversarial robustness and membership-inference risk)."""
    from modelpilot.assessment import evaluate_version

    result = evaluate_version(
        get_workspace(),
        ref,
        data,
        target,
        baseline=baseline,
        slices=_split(slices),
        sensitive=_split(sensitive),
        **_risk_options(shap, adversarial, membership, train_data),
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
    if result.adversarial is not None:
        console.print(
            f"Adversarial: {result.adversarial.flip_share:.1%} of {result.adversarial.rows} rows "
            f"flip within {result.adversarial.budget:.0%} of each feature's range."
        )
    if result.membership is not None:
        console.print(f"Membership-inference attack AUC: {result.membership.auc:.3f} (0.5 = none).")
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
    train_data: str | None = typer.Option(
        None,
        "--train-data",
        help="Training rows for a policy's membership check (default: the linked ones)",
    ),
) -> None:
    """Check a version against a policy; exit code 9 when any check fails (for CI jobs)."""
    from modelpilot.assessment import gate_version

    extra = {} if train_data is None else {"train_data": train_data}
    verdict = gate_version(
        get_workspace(),
        ref,
        policy,
        data,
        target,
        baseline=baseline,
        slices=_split(slices),
        sensitive=_split(sensitive),
        **extra,
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


def _risk_options(
    shap: bool, adversarial: bool, membership: bool, train_data: str | None
) -> dict[str, Any]:
    options: dict[str, Any] = {"shap": shap, "adversarial": adversarial}
    options["membership"] = membership or train_data is not None
    if train_data is not None:
        options["train_data"] = train_data
    return options


def register(app: typer.Typer) -> None:
    """Attach ``evaluate`` and ``gate``."""
    app.command("evaluate")(evaluate_command)
    app.command("gate")(gate_command)
