"""``modelpilot monitor``: drift, performance and operations of a deployment, with alerts.

With ``MODELPILOT_SERVER_URI`` set, the server runs each job on the prediction log in its own
home (a data plane sharing that home) and keeps the report; alerts are still sent from here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import typer
import yaml
from rich.table import Table

if TYPE_CHECKING:
    from modelpilot.monitoring.slice_performance import SliceReport

from modelpilot.cli.context import console, get_workspace

monitor_app = typer.Typer(help="Monitor deployments.", no_args_is_help=True)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_window(text: str) -> float:
    """``30m``, ``1h``, ``1d`` (or plain seconds) to seconds.

    >>> parse_window("1d"), parse_window("90")
    (86400.0, 90.0)
    """
    from modelpilot.errors import InvalidInput

    unit = text[-1:].lower()
    try:
        return float(text[:-1]) * _UNITS[unit] if unit in _UNITS else float(text)
    except ValueError:
        raise InvalidInput(
            f"Window {text!r} is not a duration such as 30m, 1h or 1d.", field="window"
        ) from None


@monitor_app.command("run")
def run(
    deployment: str,
    window: str = typer.Option("1h", "--window", "-w", help="How far back to look: 30m, 1h, 1d."),
    rules: Path | None = typer.Option(None, "--rules", help="YAML list of alert rules."),
    webhook: str | None = typer.Option(None, "--webhook", help="POST alerts as JSON to this URL."),
) -> None:
    """Score one window now (keeping the report) and send alerts for rules it breaks."""
    from modelpilot.alerting import (
        AlertManager,
        ConsoleSink,
        LogFileSink,
        ServiceSink,
        Sink,
        WebhookSink,
        load_rules,
    )
    from modelpilot.alerting.rules import DEFAULT_RULES

    ws = get_workspace()
    result = ws.monitoring.run(deployment, window_s=parse_window(window))
    table = Table(
        title=f"{deployment} ({result.model}), {result.rows} rows in the last {window} "
        f"(report {result.report_id})"
    )
    table.add_column("figure")
    table.add_column("value")
    for name, value in sorted(result.figures.items()):
        table.add_row(name, f"{value:.4g}")
    console.print(table)
    if result.drift is not None:
        drifted = result.drift.drifted_columns + result.drift.drifted_predictions
        console.print(
            f"drift: {'DRIFT' if result.drift.dataset_drift else 'no dataset drift'}; drifted: "
            f"{', '.join(drifted) or 'none'}",
            markup=False,
        )
        if result.drift.decision is not None:
            console.print(
                f"dataset rule: {result.drift.decision.rule}; {result.drift.decision.figures()}",
                markup=False,
            )
    if result.slices is not None:
        console.print(_slice_table(result.slices))
    for note in result.notes:
        console.print(f"[yellow]note[/yellow] {note}")
    chosen = load_rules(yaml.safe_load(rules.read_text()) or []) if rules else list(DEFAULT_RULES)
    sinks: list[Sink] = [
        ConsoleSink(console),
        ServiceSink(ws.alerts),
        LogFileSink(ws.settings.home / "alerts.jsonl"),
    ]
    if webhook:
        sinks.append(WebhookSink(webhook))
    AlertManager(chosen, sinks).observe_many(deployment, result.figures, details=result.details)


@monitor_app.command("report")
def report(
    deployment: str,
    window: str = typer.Option("1d", "--window", "-w"),
    output: Path = typer.Option(
        ..., "-o", "--output", help="report.html (a .json is written beside it)"
    ),
) -> None:
    """Write a self-contained HTML drift report for a window (and the same content as JSON)."""
    from modelpilot.errors import NotFound

    result = get_workspace().monitoring.run(deployment, window_s=parse_window(window))
    if result.drift is None:
        raise NotFound(
            f"Nothing to report for {deployment!r}: {' '.join(result.notes)}", field="deployment"
        )
    sections = [] if result.slices is None else [result.slices.to_html()]
    result.drift.save_html(output, sections=sections)
    output.with_suffix(".json").write_text(json.dumps(result.to_dict(), indent=2, default=str))
    console.print(f"Wrote {output} and {output.with_suffix('.json')}")


@monitor_app.command("estimate")
def estimate(
    reference: Path = typer.Argument(
        ..., help="Labelled reference data: .parquet, .csv, .tsv, .csv.gz or .tsv.gz"
    ),
    analysis: Path = typer.Argument(..., help="Data to estimate on (labels optional)."),
    target: str = typer.Option("target", "--target", help="Label column."),
    pred: str = typer.Option(
        "pred", "--pred", help="Prediction column; '' for the most probable class."
    ),
    proba: list[str] = typer.Option(
        [],
        "--proba",
        help="Probability column (binary, default 'proba'); repeat as CLASS=COLUMN for a "
        "multiclass model.",
    ),
    task: str = typer.Option("auto", "--task", help="auto, binary, multiclass or regression."),
    feature: list[str] = typer.Option(
        [], "--feature", help="Regression: a feature DLE learns the errors from (repeat)."
    ),
    metric: list[str] = typer.Option([], "--metric", "-m", help="Metric (repeat)."),
    chunk_size: int = typer.Option(5000, "--chunk-size", help="Rows per chunk."),
    seed: int = typer.Option(0, "--seed"),
    output: Path | None = typer.Option(None, "-o", "--output", help="Also write .csv or .json"),
) -> None:
    """Estimate performance per chunk without labels (CBPE for classifiers, DLE for
    regressors), with the realised value where labels exist."""
    from modelpilot.monitoring import estimate_performance

    out = estimate_performance(
        _table(reference, "reference"),
        _table(analysis, "analysis"),
        y_true=target,
        y_pred=pred or None,
        y_proba=_proba_option(proba),
        task=task,
        features=feature or None,
        metric=metric or None,
        chunk_size=chunk_size,
        seed=seed,
    )
    table = Table(title=f"Estimated performance of {analysis.name}")
    for column in ("chunk", "rows", "metric", "estimated", "interval", "realised", "alert"):
        table.add_column(column)
    for row in out.to_dict("records"):
        realised = row["realised"]
        table.add_row(
            str(row["chunk"]),
            str(row["n_rows"]),
            str(row["metric"]),
            f"{row['estimated']:.4f}",
            f"{row['lower']:.4f} to {row['upper']:.4f}",
            "-" if realised is None or pd.isna(realised) else f"{realised:.4f}",
            "ALERT" if row["alert"] else "",
        )
    console.print(table)
    if output is not None:
        if output.suffix.lower() == ".json":
            output.write_text(out.to_json(orient="records", indent=2))
        else:
            out.to_csv(output, index=False)
        console.print(f"Wrote {output}")


def _table(path: Path, role: str) -> pd.DataFrame:
    from modelpilot.tables import read_frame, require_table

    return read_frame(path, require_table(path, f"The {role}", role))


def _proba_option(values: list[str]) -> str | dict[str, str] | list[str]:
    """``--proba``: none (the default column), one column, CLASS=COLUMN pairs, or columns
    in the order of the sorted classes."""
    from modelpilot.errors import InvalidInput

    if not values:
        return "proba"
    pairs = [v.partition("=") for v in values]
    if not any(sep for _, sep, _ in pairs):
        return values[0] if len(values) == 1 else values
    bad = [v for v, (k, sep, c) in zip(values, pairs, strict=True) if not (k and sep and c)]
    if bad:
        raise InvalidInput(
            f"--proba {bad[0]!r} is not CLASS=COLUMN; give every class its column, e.g. "
            "--proba cat=p_cat --proba dog=p_dog.",
            field="proba",
        )
    return {k: c for k, _, c in pairs}


@monitor_app.command("reports")
def reports(
    deployment: str,
    limit: int = typer.Option(20, "--limit", "-n", help="How many, newest first (up to 200)."),
) -> None:
    """List the kept monitoring reports of a deployment, newest first."""
    from modelpilot.cli.context import fmt_ms

    table = Table(title=f"Monitoring reports of {deployment}")
    columns = (
        "id", "created", "model", "rows", "dataset drift", "rule", "share drifted", "slice drop"
    )  # fmt: skip
    for column in columns:
        table.add_column(column)
    for result in get_workspace().monitoring.list_reports(deployment, limit=limit):
        drift = result.figures.get("drift.dataset_drift")
        share = result.figures.get("drift.share_drifted")
        sliced = result.figures.get("performance.slice_drop")
        table.add_row(
            str(result.report_id),
            fmt_ms(result.created_ms),
            result.model,
            str(result.rows),
            "-" if drift is None else ("yes" if drift else "no"),
            (result.drift.dataset_rule if result.drift else None) or "-",
            "-" if share is None else f"{share:.0%}",
            "-" if sliced is None else f"{sliced:.3f}",
        )
    console.print(table)


def _slice_table(report: SliceReport) -> Table:
    """The per-slice performance of one window, the overall row first."""
    from modelpilot.monitoring.slice_performance import TABLE_COLUMNS

    table = Table(title=f"{report.metric} by slice: {report.describe()}")
    for column in TABLE_COLUMNS:
        table.add_column(column)
    for row in report.table():
        table.add_row(*row)
    return table


def register(app: typer.Typer) -> None:
    """Attach ``monitor``."""
    app.add_typer(monitor_app, name="monitor")
