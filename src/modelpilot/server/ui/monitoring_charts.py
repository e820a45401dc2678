"""What the monitoring page charts over time, read from the kept reports alone: each
feature's drift effect size per window (with the windows judged drifted), and each
performance metric's estimate without labels (CBPE, with its interval) next to its realised
value where labels arrived.

Nothing is recomputed: a value charted is a value a report stored (``MonitorResult``), so the
page and ``GET /api/v1/monitoring/{deployment}/reports`` agree. The estimate is the report's
overall slice (``slices.overall``) when it was ``estimated``; the realised value is the
figure ``performance.<metric>``, else that overall slice when it was ``realised``.

>>> from modelpilot.monitoring.jobs import MonitorResult
>>> r = MonitorResult("d", "m/1", 0, 60_000, 10, None, {"performance.accuracy": 0.9}, [])
>>> [(t.metric, [(p.end_ms, p.realised) for p in t.points]) for t in performance_trends([r])]
[('accuracy', [(60000, 0.9)])]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from modelpilot.cards.downsample import downsample_min_max
from modelpilot.cards.svg import Band, Marks, line_chart
from modelpilot.monitoring.jobs import MonitorResult
from modelpilot.monitoring.slice_performance import SLICE_DROP

MAX_FEATURE_CHARTS = 24  # features charted; the newest report's table lists every column
_NOT_METRICS = ("performance.labelled_rows", SLICE_DROP)
ESTIMATED_DASH, REALISED_DASH = "6 3", ""  # told apart by dash pattern (and the legend)


@dataclass(frozen=True)
class FeatureWindow:
    """One feature in one report: its effect size and verdict (``status`` says why a
    skipped column has no effect size)."""

    end_ms: int
    effect_size: float | None
    drifted: bool
    status: str


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's drift over the reports' windows, oldest first; ``weight`` is its share
    of the dataset verdict in the newest report that weighed it (None: not weighed)."""

    column: str
    effect: str | None
    min_effect_size: float | None
    weight: float | None
    windows: list[FeatureWindow]

    @property
    def drifted_windows(self) -> int:
        """How many windows judged it drifted."""
        return sum(w.drifted for w in self.windows)


@dataclass(frozen=True)
class PerformancePoint:
    """One window's estimate (with its interval) and realised value; None where absent."""

    end_ms: int
    estimated: float | None
    lower: float | None
    upper: float | None
    realised: float | None
    labels: int | None


@dataclass(frozen=True)
class PerformanceTrend:
    """One metric over the windows that have an estimate or a realised value, oldest
    first."""

    metric: str
    points: list[PerformancePoint]


def axis_time(ms: float) -> str:
    """A chart's time label: ``11-30 18:05`` (UTC).

    >>> axis_time(0)
    '01-01 00:00'
    """
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%m-%d %H:%M")


def figure_charts(reports: Sequence[MonitorResult]) -> dict[str, str]:
    """One chart per figure over the reports' windows (by window end), oldest to newest."""
    ordered = sorted(reports, key=lambda r: r.window_end_ms)
    charts: dict[str, str] = {}
    for key in sorted({k for r in ordered for k in r.figures}):
        points = [(float(r.window_end_ms), r.figures[key]) for r in ordered if key in r.figures]
        xs, ys = _line([p[0] for p in points], [p[1] for p in points])
        charts[key] = line_chart(
            [(key, xs, ys)], title=key, x_label="window end", x_format=axis_time
        )
    return charts


def feature_drift(reports: Sequence[MonitorResult]) -> list[FeatureDrift]:
    """Every feature scored in ``reports``, most important first (the newest weights), then
    most often drifted, then by name."""
    ordered = sorted(reports, key=lambda r: r.window_end_ms)
    windows: dict[str, list[FeatureWindow]] = {}
    meta: dict[str, tuple[str | None, float | None]] = {}
    weights: dict[str, float] = {}
    for report in ordered:
        if report.drift is None:
            continue
        if report.drift.decision is not None:
            weights = dict(report.drift.decision.column_weights) or weights
        for c in report.drift.columns:
            if c.role != "feature":
                continue
            window = FeatureWindow(report.window_end_ms, c.effect_size, c.drifted, c.status)
            windows.setdefault(c.column, []).append(window)
            meta[c.column] = (c.effect, c.min_effect_size)
    found = [
        FeatureDrift(name, *meta[name], weights.get(name), rows) for name, rows in windows.items()
    ]
    return sorted(found, key=lambda f: (-(f.weight or 0.0), -f.drifted_windows, f.column))


def performance_trends(reports: Sequence[MonitorResult]) -> list[PerformanceTrend]:
    """Each metric with an estimate or a realised value in ``reports``, by name."""
    ordered = sorted(reports, key=lambda r: r.window_end_ms)
    metrics = {r.slices.metric for r in ordered if r.slices is not None}
    metrics |= {
        key.removeprefix("performance.")
        for r in ordered
        for key in r.figures
        if key.startswith("performance.") and key not in _NOT_METRICS
    }
    trends = []
    for metric in sorted(metrics):
        points = [p for r in ordered if (p := _point(r, metric)) is not None]
        trends.append(PerformanceTrend(metric, points))
    return trends


def _point(report: MonitorResult, metric: str) -> PerformancePoint | None:
    overall = report.slices.overall if report.slices and report.slices.metric == metric else None
    estimated = overall if overall is not None and overall.source == "estimated" else None
    realised = report.figures.get(f"performance.{metric}")
    if realised is None and overall is not None and overall.source == "realised":
        realised = overall.value
    if (estimated is None or estimated.value is None) and realised is None:
        return None
    labels = report.figures.get("performance.labelled_rows")
    return PerformancePoint(
        report.window_end_ms,
        None if estimated is None else estimated.value,
        None if estimated is None else estimated.lower,
        None if estimated is None else estimated.upper,
        realised,
        int(labels) if labels is not None else (overall.n_labels if overall else None),
    )


def feature_chart(feature: FeatureDrift) -> str:
    """The feature's effect size per window, the drifted windows marked with a triangle,
    and the minimum effect a drift needs as a dashed line (SVG)."""
    scored = [w for w in feature.windows if w.effect_size is not None]
    xs, ys = _line([float(w.end_ms) for w in scored], [w.effect_size or 0.0 for w in scored])
    series = [(f"effect size ({feature.effect or 'effect'})", xs, ys)]
    if feature.min_effect_size is not None and xs:
        series.append(("minimum effect", [xs[0], xs[-1]], [feature.min_effect_size] * 2))
    drifted = [w for w in scored if w.drifted]
    marks = [Marks("drifted", [float(w.end_ms) for w in drifted],
                   [w.effect_size or 0.0 for w in drifted])] if drifted else []  # fmt: skip
    return line_chart(
        series,
        title=f"{feature.column}: effect size",
        x_label="window end",
        x_format=axis_time,
        dashes=["", "2 2"],
        marks=marks,
    )


def performance_chart(trend: PerformanceTrend) -> str:
    """The metric's estimate (dashed, over its interval band) and realised value (solid)
    per window (SVG)."""
    estimated = [p for p in trend.points if p.estimated is not None]
    realised = [p for p in trend.points if p.realised is not None]
    series: list[tuple[str, list[float], list[float]]] = []
    dashes: list[str] = []
    bands: list[Band] = []
    if estimated:
        xs, ys = _line(_ends(estimated), [p.estimated or 0.0 for p in estimated])
        series.append(("estimated (no labels)", xs, ys))
        dashes.append(ESTIMATED_DASH)
        banded = [p for p in estimated if p.lower is not None and p.upper is not None]
        if banded:
            ends = _ends(banded)
            lows = _line(ends, [p.lower or 0.0 for p in banded])
            highs = _line(ends, [p.upper or 0.0 for p in banded])
            if lows[0] == highs[0]:  # the same windows survived: draw the band
                bands.append(Band("interval of the estimate", lows[0], lows[1], highs[1]))
    if realised:
        xs, ys = _line(_ends(realised), [p.realised or 0.0 for p in realised])
        series.append(("realised (labels)", xs, ys))
        dashes.append(REALISED_DASH)
    return line_chart(
        series,
        title=trend.metric,
        x_label="window end",
        x_format=axis_time,
        dashes=dashes,
        bands=bands,
    )


def _ends(points: Sequence[PerformancePoint]) -> list[float]:
    return [float(p.end_ms) for p in points]


def _line(xs: list[float], ys: list[float]) -> tuple[list[float], list[float]]:
    """A series as the other charts draw it: at most ``MAX_CHART_POINTS`` points (min/max
    buckets); the 200 reports a page shows at most are drawn exactly."""
    return downsample_min_max(xs, ys)
