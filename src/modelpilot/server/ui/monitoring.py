"""Dashboard pages for monitoring: per deployment, its kept monitoring reports over time
(every figure as a chart drawn on the server), dataset drift with the rule that decided it
and the drifted columns, recorded alerts, and the continuous-training loop's decisions.

Reads are the functions the API's ``/api/v1/monitoring``, ``/api/v1/alerts`` and
``/api/v1/loop/decisions`` routes call; charts are inline SVG (no chart library).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response

from modelpilot import release
from modelpilot.alerting.local import LocalAlerts
from modelpilot.alerting.protocol import AlertRecord
from modelpilot.cards.svg import line_chart
from modelpilot.errors import InvalidInput, shown
from modelpilot.loop.protocol import LocalLoop
from modelpilot.monitoring.jobs import MonitorResult
from modelpilot.monitoring.service import MAX_REPORTS, list_reports
from modelpilot.server.deps import StoreDep
from modelpilot.server.ui.web import UiViewer, render, svg

router = APIRouter(include_in_schema=False)

REPORT_LIMITS = (20, 50, 100, MAX_REPORTS)
MAX_ALERTS = 100
MAX_DECISIONS = 20


def axis_time(ms: float) -> str:
    """A chart's time label: ``11-30 18:05`` (UTC).

    >>> axis_time(0)
    '01-01 00:00'
    """
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%m-%d %H:%M")


def figure_charts(reports: Sequence[MonitorResult]) -> dict[str, object]:
    """One chart per figure over the reports' windows (by window end), oldest to newest."""
    ordered = sorted(reports, key=lambda r: r.window_end_ms)
    keys = sorted({k for r in ordered for k in r.figures})
    charts: dict[str, object] = {}
    for key in keys:
        points = [(r.window_end_ms, r.figures[key]) for r in ordered if key in r.figures]
        xs, ys = [float(p[0]) for p in points], [p[1] for p in points]
        chart = line_chart([(key, xs, ys)], title=key, x_label="window end", x_format=axis_time)
        charts[key] = svg(chart)
    return charts


@router.get("/ui/monitoring")
def monitoring_index(request: Request, caller: UiViewer, store: StoreDep) -> Response:
    """Every deployment with its newest monitoring report's verdict."""
    rows = []
    for d in release.list_deployments(store):
        newest = list_reports(store, d.name, limit=1)
        rows.append((d, newest[0] if newest else None))
    return render(request, caller, "monitoring_index.html", rows=rows)


@router.get("/ui/monitoring/{deployment}")
def monitoring_page(
    deployment: str, request: Request, caller: UiViewer, store: StoreDep, limit: int = 50
) -> Response:
    """A deployment's newest ``limit`` reports as charts and a table, the newest report's
    drift per column, its alerts and its loop decisions."""
    if limit not in REPORT_LIMITS:
        raise InvalidInput(
            f"Reports shown {shown(limit)} is not offered; choose one of "
            f"{', '.join(map(str, REPORT_LIMITS))}.",
            field="limit",
        )
    reports = list_reports(store, deployment, limit=limit)
    alerts = LocalAlerts(store).list_alerts(subject=deployment, limit=MAX_ALERTS)
    loop = LocalLoop(store, actor=caller.identity.actor)
    return render(
        request,
        caller,
        "monitoring.html",
        deployment=deployment,
        reports=reports,
        newest=reports[0] if reports else None,
        charts=figure_charts(reports),
        alerts=alerts,
        firing=_firing(alerts),
        decisions=loop.list_decisions(deployment, limit=MAX_DECISIONS),
        limit=limit,
        limits=REPORT_LIMITS,
    )


def _firing(alerts: Sequence[AlertRecord]) -> list[AlertRecord]:
    """The rules whose newest recorded alert is firing (``alerts``: newest first)."""
    newest: dict[str, AlertRecord] = {}
    for record in alerts:
        newest.setdefault(record.alert.rule, record)
    return [r for r in newest.values() if r.alert.state == "firing"]
