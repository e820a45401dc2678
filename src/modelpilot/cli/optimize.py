"""``modelpilot optimize``: ONNX and compiled candidates of a version, measured against it
(docs/optimize.md)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import typer
from rich.measure import Measurement
from rich.table import Table

from modelpilot.cli.context import console, err_console, get_workspace

_COLUMNS = (
    ("version", "ref", "s"),
    ("target", "target", "s"),
    ("status", "status", "s"),
    ("size MB", "size_bytes", "mb"),
    ("load MB", "load_peak_bytes", "mb"),
    ("p50 ms @1", "p50_ms_1", ".3g"),
    ("p99 ms @1", "p99_ms_1", ".3g"),
    ("p50 ms @64", "p50_ms_64", ".3g"),
    ("rows/s @64", "rows_per_s_64", ",.0f"),
    ("agreement", "agreement_data", ".4g"),
    ("max |Δp|", "max_abs_proba_diff_data", ".2g"),
    ("mean |Δp|", "mean_abs_proba_diff_data", ".2g"),
    ("agreement (holdout)", "agreement_holdout", ".4g"),
    ("max |Δp| (holdout)", "max_abs_proba_diff_holdout", ".2g"),
    ("holdout metric", "holdout_metric", ".4g"),
    ("Δ metric", "metric_diff", "+.2g"),
    ("Pareto", "pareto", "yes"),
)


def _cell(value: object, spec: str) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    if spec == "s":
        return str(value)
    if spec == "yes":
        return "yes" if value else "no"
    if spec == "mb":
        return f"{float(value) / 1e6:.3g}"  # type: ignore[arg-type]
    return format(value, spec)


def _interval(row: Mapping[Hashable, object]) -> str:
    """The paired-bootstrap 95% interval of the metric difference, ``[low, high]``."""
    low, high = _cell(row["metric_diff_lower"], "+.2g"), _cell(row["metric_diff_upper"], "+.2g")
    return "-" if "-" in (low, high) else f"[{low}, {high}]"


def _by_measure(
    title: object, columns: list[tuple[str, str, str]], rows: list[dict[Hashable, object]]
) -> Table:
    """The table turned on its side, a row per measure and a column per model: what a
    terminal too narrow for the 18 columns shows (at 80-120 columns Rich would cut every cell
    of the wide table to a letter and "…")."""
    table = Table(title=str(title))
    table.add_column("")
    for row in rows:
        table.add_column(f"{row['ref']}\n{row['target']}", justify="right")
    for name, key, spec in columns[2:]:  # (version and target head the columns)
        table.add_row(name, *(_cell(row[key], spec) for row in rows))
    table.add_row("Δ 95% CI", *(_interval(row) for row in rows))
    return table


def optimize_command(
    ref: str = typer.Argument(..., help="Version to optimise, e.g. churn/4"),
    to: str = typer.Option(
        "onnx", "--to", help="Targets, comma-separated: onnx, onnx-int8, distilled, compiled"
    ),
    data: str | None = typer.Option(
        None, "--data", "-d", help="Dataset to measure on (default: the version's training data)"
    ),
    holdout: str | None = typer.Option(
        None, "--holdout", help="Labelled holdout dataset (default: the version's test data)"
    ),
    target: str | None = typer.Option(None, "--target", "-t", help="The holdout's label column"),
    min_agreement: float = typer.Option(0.999, "--min-agreement"),
    max_abs_proba_diff: float = typer.Option(0.001, "--max-abs-proba-diff"),
    student: str = typer.Option(
        "auto", "--student", help="Student of the distilled target: auto, linear, hgb"
    ),
) -> None:
    """Convert a version to ONNX or a compiled library, or distil it; measure size, speed and
    fidelity, register the candidates; exit code 9 when a candidate failed its fidelity check
    (it is registered, never aliased)."""
    from modelpilot.optimization import fidelity_rules, optimize_version

    ws = get_workspace()
    rules = fidelity_rules(min_agreement, max_abs_proba_diff)
    with err_console.status(f"Optimising {ref}…") as status:  # (stderr: stdout stays the table)
        result = optimize_version(
            ws.registry, ws.artifacts, ws.datasets, ws.load_model, ref, to,
            data=data, holdout=holdout, target=target, rules=rules, student=student,
            progress=lambda step: status.update(f"{step}…"),
        )  # fmt: skip
    frame = result.to_frame()
    metric = next((m for m in frame["metric"] if isinstance(m, str)), None)
    table = Table(title=f"Candidates of {result.source.ref}" + (f" ({metric})" if metric else ""))
    # a regressor: no classes to agree on, and its differences are of predictions, relative
    # to max(1, |prediction|), not of probabilities
    regressor = frame["agreement_data"].isna().all()
    columns = [
        (title.replace("|Δp|", "rel. |Δ|"), key, spec)
        for title, key, spec in _COLUMNS
        if not (regressor and key.startswith("agreement"))
    ] if regressor else list(_COLUMNS)  # fmt: skip
    rows = frame.to_dict("records")
    for title in [*(title for title, _, _ in columns), "Δ 95% CI"]:
        table.add_column(title)
    for row in rows:
        table.add_row(*(_cell(row[key], spec) for _, key, spec in columns), _interval(row))
    # The narrowest the wide table gets with its words wrapped; under that Rich cuts cells.
    unbounded = console.options.update(max_width=10_000)
    if Measurement.get(console, unbounded, table).minimum > console.width:
        table = _by_measure(table.title, columns, rows)  # one column a model: fits 80 columns
    console.print(table)
    for name, reason in result.table.skipped.items():
        console.print(f"Skipped {name}: {reason}")
    for candidate in result.candidates:
        failed = f"FAILED fidelity: {'; '.join(candidate.failures)} (kept, never aliased)"
        word = "passed" if candidate.passed else failed
        detail = f", {candidate.detail}" if candidate.detail else ""
        console.print(f"Registered {candidate.ref} ({candidate.target}{detail}): {word}")
    if not all(c.passed for c in result.candidates):
        raise typer.Exit(9)


def register(app: typer.Typer) -> None:
    """Attach ``optimize``."""
    app.command("optimize")(optimize_command)
