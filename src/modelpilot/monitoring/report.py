"""The drift report: a verdict, one row per column, and views for notebooks, CI and people.

``to_frame()`` for notebooks, ``to_dict()``/``to_json()`` for CI and storage (strict JSON:
no NaN anywhere; a skipped column has ``statistic`` null and says why in ``status``),
``save_html(path)`` for a self-contained page: inline SVG histograms, no script and nothing
fetched from the network.

>>> import numpy as np, pandas as pd
>>> from modelpilot.monitoring import detect_drift
>>> rng = np.random.default_rng(0)
>>> ref = pd.DataFrame({"x": rng.normal(size=2000), "y": rng.normal(size=2000)})
>>> cur = pd.DataFrame({"x": rng.normal(0.5, 1, 2000), "y": rng.normal(size=2000)})
>>> report = detect_drift(ref, cur)
>>> report.dataset_drift, report.dataset_rule, report.drifted_columns
(True, 'importance_share', ['x'])
>>> list(report.to_frame().columns[:6])
['column', 'method', 'statistic', 'p_value', 'threshold', 'drifted']
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from modelpilot.monitoring.drift.base import ColumnKind
from modelpilot.monitoring.drift.binning import Histogram
from modelpilot.monitoring.drift.dataset import DatasetDecision
from modelpilot.monitoring.multivariate import MultivariateDriftResult

Role = Literal["feature", "prediction"]


@dataclass(frozen=True)
class ExactValuesCheck:
    """An integer-valued column's second check: its exact-value frequencies (chi-square)."""

    statistic: float
    p_value: float
    p_value_adjusted: float | None
    drifted: bool
    effect: str
    effect_size: float
    min_effect_size: float
    effects: dict[str, float]
    n_values: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "method": "chi2",
            "statistic": self.statistic,
            "p_value": self.p_value,
            "p_value_adjusted": self.p_value_adjusted,
            "drifted": self.drifted,
            "effect": self.effect,
            "effect_size": self.effect_size,
            "min_effect_size": self.min_effect_size,
            "effects": dict(self.effects),
            "n_values": self.n_values,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExactValuesCheck:
        """Inverse of :meth:`to_dict`."""
        return cls(**{k: v for k, v in data.items() if k != "method"})


@dataclass(frozen=True)
class ColumnDrift:
    """The drift verdict for one column (after multiple-testing correction).

    ``effect_size`` is measured as ``effect`` names and must reach ``min_effect_size`` (as
    well as significance) for the column to drift; ``effects`` holds every effect size
    measured. An integer-valued column with few distinct values also carries
    ``exact_values``; it drifts when either check does.
    """

    column: str
    kind: ColumnKind
    role: Role
    method: str
    statistic: float | None
    p_value: float | None
    p_value_adjusted: float | None
    threshold: float
    drifted: bool
    effect_size: float | None
    status: str  # "ok" or "skipped: <reason>"
    n_reference: int
    n_current: int
    null_share_reference: float
    null_share_current: float
    note: str | None = None
    effect: str | None = None
    min_effect_size: float | None = None
    effects: dict[str, float] = field(default_factory=dict)
    exact_values: ExactValuesCheck | None = None
    check: str | None = None  # the minimum-effect key of the main test (minimum.MIN_EFFECT)

    @property
    def skipped(self) -> bool:
        """True when the column could not be scored (see ``status``)."""
        return self.status != "ok"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "column": self.column,
            "method": self.method,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "threshold": self.threshold,
            "drifted": self.drifted,
            "p_value_adjusted": self.p_value_adjusted,
            "effect_size": self.effect_size,
            "min_effect_size": self.min_effect_size,
            "effect": self.effect,
            "effects": dict(self.effects),
            "check": self.check,
            "exact_values": None if self.exact_values is None else self.exact_values.to_dict(),
            "kind": self.kind,
            "role": self.role,
            "status": self.status,
            "note": self.note,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "null_share_reference": self.null_share_reference,
            "null_share_current": self.null_share_current,
        }


_FLOAT_COLUMNS = ("statistic", "p_value", "p_value_adjusted", "effect_size", "min_effect_size")
_COLUMN_FIELDS = frozenset(ColumnDrift.__dataclass_fields__)


@dataclass(frozen=True)
class DriftReport:
    """Result of :func:`~modelpilot.monitoring.detect_drift`.

    ``decision`` says which rule set ``dataset_drift`` and with what figures (``None`` only
    in reports stored before the rules existed, when any drifted column decided).
    """

    columns: list[ColumnDrift]
    dataset_drift: bool
    alpha: float
    correction: str
    n_reference: int
    n_current: int
    prediction_drift: bool | None = None
    multivariate: MultivariateDriftResult | None = None
    histograms: dict[str, Histogram] = field(default_factory=dict, repr=False)
    decision: DatasetDecision | None = None

    @property
    def dataset_rule(self) -> str | None:
        """``"importance_share"``, ``"domain_classifier"`` or ``"none"``: the rule that
        decided ``dataset_drift``."""
        return None if self.decision is None else self.decision.rule

    @property
    def drifted_columns(self) -> list[str]:
        """Feature columns that drifted (prediction columns: ``drifted_predictions``)."""
        return [c.column for c in self.columns if c.drifted and c.role == "feature"]

    @property
    def drifted_predictions(self) -> list[str]:
        """Prediction columns that drifted."""
        return [c.column for c in self.columns if c.drifted and c.role == "prediction"]

    @property
    def skipped_columns(self) -> list[str]:
        """Columns that could not be scored; their ``status`` says why."""
        return [c.column for c in self.columns if c.skipped]

    def column(self, name: str) -> ColumnDrift:
        """The row for one column."""
        for row in self.columns:
            if row.column == name:
                return row
        raise KeyError(name)

    def to_frame(self) -> pd.DataFrame:
        """One row per column; scores are nullable floats (``<NA>`` for skipped columns)."""
        frame = pd.DataFrame([c.to_dict() for c in self.columns])
        if frame.empty:
            frame = pd.DataFrame(columns=list(ColumnDrift.__dataclass_fields__))
        for name in _FLOAT_COLUMNS:
            frame[name] = frame[name].astype("Float64")
        return frame

    def to_dict(self) -> dict[str, Any]:
        """Everything in the report, JSON-ready."""
        return {
            "dataset_drift": self.dataset_drift,
            "dataset_rule": self.dataset_rule,
            "dataset_decision": None if self.decision is None else self.decision.to_dict(),
            "drifted_columns": self.drifted_columns,
            "prediction_drift": self.prediction_drift,
            "drifted_predictions": self.drifted_predictions,
            "skipped_columns": self.skipped_columns,
            "alpha": self.alpha,
            "correction": self.correction,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "columns": [c.to_dict() for c in self.columns],
            "multivariate": self.multivariate.to_dict() if self.multivariate else None,
            "histograms": {name: h.to_dict() for name, h in self.histograms.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftReport:
        """The inverse of :meth:`to_dict` (a stored or served report back as an object).

        >>> import numpy as np, pandas as pd
        >>> from modelpilot.monitoring import detect_drift
        >>> rng = np.random.default_rng(0)
        >>> report = detect_drift(pd.DataFrame({"x": rng.normal(size=500)}),
        ...                       pd.DataFrame({"x": rng.normal(1, 1, 500)}))
        >>> DriftReport.from_dict(report.to_dict()).to_dict() == report.to_dict()
        True
        """
        columns = [_column_from_dict(c) for c in data["columns"]]
        multivariate = data.get("multivariate")
        decision = data.get("dataset_decision")
        return cls(
            columns=columns,
            dataset_drift=bool(data["dataset_drift"]),
            alpha=float(data["alpha"]),
            correction=str(data["correction"]),
            n_reference=int(data["n_reference"]),
            n_current=int(data["n_current"]),
            prediction_drift=data.get("prediction_drift"),
            multivariate=None
            if multivariate is None
            else MultivariateDriftResult(
                **{k: v for k, v in multivariate.items() if k != "method"}
            ),
            histograms={name: Histogram(**h) for name, h in (data.get("histograms") or {}).items()},
            decision=None if decision is None else DatasetDecision.from_dict(decision),
        )

    def to_json(self, *, indent: int | None = None) -> str:
        """Strict JSON (it refuses NaN, so none can slip into a stored report)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def save_json(self, path: str | Path) -> Path:
        """Write :meth:`to_json` to ``path`` atomically."""
        return _write_atomic(Path(path), self.to_json(indent=1))

    def save_html(self, path: str | Path, *, sections: Sequence[str] = ()) -> Path:
        """Write a self-contained HTML page (inline SVG, no scripts, no network); ``sections``
        (HTML fragments such as the per-slice performance table) follow the drift table."""
        return _write_atomic(Path(path), render_html(self, sections=sections))


def _column_from_dict(data: dict[str, Any]) -> ColumnDrift:
    fields = {k: v for k, v in data.items() if k in _COLUMN_FIELDS}
    exact = fields.pop("exact_values", None)
    return ColumnDrift(
        **fields, exact_values=None if exact is None else ExactValuesCheck.from_dict(exact)
    )


def _write_atomic(target: Path, text: str) -> Path:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, target)
    return target


# --- HTML ---------------------------------------------------------------------------------

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}
.verdict{padding:10px 14px;border-radius:6px;display:inline-block;font-weight:600}
.bad{background:#fde2e1;color:#8a1c16}.good{background:#e3f4e1;color:#1d5c19}
table{border-collapse:collapse;margin-top:8px}td,th{padding:4px 10px;border-bottom:1px solid #ddd}
th{text-align:left;background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.drift td{background:#fff3f2}.muted{color:#777}.card{display:inline-block;margin:8px;
vertical-align:top;border:1px solid #e3e3e3;border-radius:6px;padding:8px}
.key span{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px}
"""
_REF_COLOUR, _CUR_COLOUR = "#4c78a8", "#f58518"


def render_html(report: DriftReport, *, sections: Sequence[str] = ()) -> str:
    """The report as one HTML document (what :meth:`DriftReport.save_html` writes)."""
    verdict = "Dataset drift detected" if report.dataset_drift else "No dataset drift"
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>modelpilot drift report</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Drift report</h1>",
        f"<p class='verdict {'bad' if report.dataset_drift else 'good'}'>{verdict}: "
        f"{len(report.drifted_columns)} of {_n_features(report)} feature columns drifted</p>",
        f"<p class='muted'>{report.n_reference:,} reference rows, {report.n_current:,} current "
        f"rows; significance level {report.alpha:g} after {_correction_text(report)}.</p>",
        _decision(report.decision),
        _prediction(report),
        _table(report),
        _multivariate(report.multivariate),
        *sections,
        "<h2>Distributions</h2><p class='key'>",
        f"<span style='background:{_REF_COLOUR}'></span>reference",
        f"<span style='background:{_CUR_COLOUR}'></span>current</p>",
    ]
    for row in report.columns:
        histogram = report.histograms.get(row.column)
        if histogram is not None:
            parts.append(_card(row, histogram))
    parts.append("</body></html>")
    return "\n".join(parts)


def _decision(decision: DatasetDecision | None) -> str:
    if decision is None:
        return "<p class='muted'>Decided by: any drifted feature column (older report).</p>"
    return f"<p>Dataset rule <b>{decision.rule}</b>: {escape(decision.figures())}.</p>"


def _prediction(report: DriftReport) -> str:
    if report.prediction_drift is None:
        return ""
    names = ", ".join(escape(n) for n in report.drifted_predictions) or "none"
    verdict = "drifted" if report.prediction_drift else "no drift"
    return f"<p>Prediction (model output) drift: <b>{verdict}</b> (drifted: {names}).</p>"


def _n_features(report: DriftReport) -> int:
    return sum(1 for c in report.columns if c.role == "feature")


def _correction_text(report: DriftReport) -> str:
    return {
        "bh": "Benjamini-Hochberg correction",
        "bonferroni": "Bonferroni correction",
        "none": "no multiple-testing correction",
    }.get(report.correction, escape(report.correction))


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "<span class='muted'>—</span>"
    return f"{value:.{digits}g}"


def _table(report: DriftReport) -> str:
    head = (
        "<table><tr><th>column</th><th>role</th><th>kind</th><th>method</th><th>statistic</th>"
        "<th>p-value</th><th>adjusted</th><th>effect size</th><th>minimum effect</th>"
        "<th>threshold</th><th>drifted</th>"
        "<th>status</th></tr>"
    )
    rows = []
    for c in report.columns:
        status = escape(c.status) + (
            f" <span class='muted'>({escape(c.note)})</span>" if c.note else ""
        )
        rows.append(
            f"<tr class='{'drift' if c.drifted else ''}'><td>{escape(c.column)}</td>"
            f"<td>{c.role}</td><td>{c.kind}</td><td>{escape(c.method)}</td>"
            f"<td class='num'>{_fmt(c.statistic)}</td><td class='num'>{_fmt(c.p_value, 3)}</td>"
            f"<td class='num'>{_fmt(c.p_value_adjusted, 3)}</td>"
            f"<td class='num'>{_effect(c.effect, c.effect_size, c.effects)}</td>"
            f"<td class='num'>{_fmt(c.min_effect_size, 3)}</td><td class='num'>{c.threshold:g}</td>"
            f"<td>{'yes' if c.drifted else 'no'}</td><td>{status}</td></tr>"
        )
        if c.exact_values is not None:
            rows.append(_exact_row(c.exact_values))
    return head + "".join(rows) + "</table>"


_EFFECT_NAMES = {
    "wasserstein": "W1/sd",
    "jensenshannon": "JS",
    "psi": "PSI",
    "share_difference": "Δ share",
}


def _effect(effect: str | None, size: float | None, effects: dict[str, float]) -> str:
    if effect is None or size is None:
        return _fmt(size)
    text = f"{_EFFECT_NAMES.get(effect, escape(effect))} {_fmt(size, 3)}"
    others = [
        f"{_EFFECT_NAMES.get(k, escape(k))} {v:.3g}" for k, v in effects.items() if k != effect
    ]
    if others:
        text += f" <span class='muted'>({', '.join(others)})</span>"
    return text


def _exact_row(check: ExactValuesCheck) -> str:
    return (
        f"<tr class='{'drift' if check.drifted else ''}'><td class='muted'>↳ exact values</td>"
        f"<td></td><td></td><td>chi2 over {check.n_values} values</td>"
        f"<td class='num'>{_fmt(check.statistic)}</td><td class='num'>{_fmt(check.p_value, 3)}</td>"
        f"<td class='num'>{_fmt(check.p_value_adjusted, 3)}</td>"
        f"<td class='num'>{_effect(check.effect, check.effect_size, check.effects)}</td>"
        f"<td class='num'>{_fmt(check.min_effect_size, 3)}</td><td></td>"
        f"<td>{'yes' if check.drifted else 'no'}</td><td></td></tr>"
    )


def _multivariate(result: MultivariateDriftResult | None) -> str:
    if result is None:
        return ""
    top = ", ".join(
        f"{escape(name)} ({value:.3f})"
        for name, value in list(result.feature_importance.items())[:5]
    )
    interval = (
        ""
        if result.auc_lower is None or result.auc_upper is None
        else f"{result.confidence or 0:.0%} interval {result.auc_lower:.3f}-"
        f"{result.auc_upper:.3f}, "
    )
    return (
        "<h2>Multivariate (domain classifier)</h2>"
        f"<p>AUC {result.auc:.3f} ({interval}threshold {result.threshold:g}, p-value "
        f"{result.p_value:.3g}): {'drift' if result.drifted else 'no drift'}. "
        f"Features driving it (AUC lost when shuffled): {top}.</p>"
    )


def _card(row: ColumnDrift, histogram: Histogram) -> str:
    title = f"{escape(row.column)} — {escape(row.method)} {_fmt(row.statistic)}"
    flag = " <b style='color:#8a1c16'>drifted</b>" if row.drifted else ""
    return f"<div class='card'><div>{title}{flag}</div>{histogram_svg(histogram)}</div>"


def histogram_svg(histogram: Histogram, width: int = 320, height: int = 150) -> str:
    """Side-by-side reference/current bars as an inline SVG element.

    >>> svg = histogram_svg(Histogram("categorical", ["a", "b"], [0.5, 0.5], [0.7, 0.3]))
    >>> svg.startswith("<svg") and svg.count("<rect") == 4
    True
    """
    bins = len(histogram.labels)
    top = max([*histogram.reference, *histogram.current, 1e-12])
    plot_h, base = height - 34, height - 22
    slot = (width - 10) / max(bins, 1)
    bar = max(slot / 2 - 1, 0.5)
    # No xmlns: inline SVG in HTML5 needs none, and the page then names no URL at all.
    parts = [f'<svg width="{width}" height="{height}" role="img">']
    for i, label in enumerate(histogram.labels):
        x = 5 + i * slot
        for offset, share, colour in (
            (0.0, histogram.reference[i], _REF_COLOUR),
            (bar, histogram.current[i], _CUR_COLOUR),
        ):
            h = plot_h * share / top
            parts.append(
                f'<rect x="{x + offset:.1f}" y="{base - h:.1f}" width="{bar:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{escape(label)}: '
                f"{share:.1%}</title></rect>"
            )
    parts.append(f'<line x1="5" x2="{width - 5}" y1="{base}" y2="{base}" stroke="#999"/>')
    ends = (histogram.labels[0], histogram.labels[-1]) if bins else ("", "")
    parts.append(f'<text x="5" y="{height - 6}" font-size="10">{escape(ends[0][:24])}</text>')
    parts.append(
        f'<text x="{width - 5}" y="{height - 6}" font-size="10" text-anchor="end">'
        f"{escape(ends[1][:24])}</text>"
    )
    parts.append("</svg>")
    return "".join(parts)
