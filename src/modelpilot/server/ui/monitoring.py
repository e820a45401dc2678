"""Dashboard pages for monitoring: per deployment, its kept monitoring reports over time
(every figure, each feature's drift and each metric's estimated and realised performance as
charts drawn on the server), dataset drift with the rule that decided it, values served
outside the input domain in the newest window, recorded alerts, and the continuous-training
loop's decisions, which a deployer approves or rejects from the page.

Reads are the functions the API's ``/api/v1/monitoring``, ``/api/v1/alerts`` and
``/api/v1/loop/decisions`` routes call; an approval is ``LoopService.approve``, as
``POST /api/v1/loop/decisions/{key}/approval`` and ``modelpilot loop approve`` call it, under
the same deployer role, with the form's CSRF token, confirmation box and reason. Charts are
inline SVG (no chart library, :mod:`.monitoring_charts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from fastapi import APIRouter, Request, Response

from modelpilot import release
from modelpilot.alerting.local import LocalAlerts
from modelpilot.alerting.protocol import AlertRecord
from modelpilot.errors import Conflict, InvalidInput, NotFound, shown
from modelpilot.loop.protocol import LocalLoop
from modelpilot.monitoring.jobs import MonitorResult
from modelpilot.monitoring.service import MAX_REPORTS, list_reports
from modelpilot.predictions import PredictionReader
from modelpilot.server.deps import StoreDep
from modelpilot.server.ui.monitoring_charts import (
    MAX_FEATURE_CHARTS,
    feature_chart,
    feature_drift,
    figure_charts,
    performance_chart,
    performance_trends,
)
from modelpilot.server.ui.web import (
    Caller,
    Form,
    UiViewer,
    check_post,
    confirmed_reason,
    redirect,
    render,
    require_deployer,
    svg,
)
from modelpilot.store import Store

router = APIRouter(include_in_schema=False)

REPORT_LIMITS = (20, 50, 100, MAX_REPORTS)
MAX_ALERTS = 100
MAX_DECISIONS = 20
_VERDICTS = {"approve": "Approve", "reject": "Reject"}


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
    deployment: str,
    request: Request,
    caller: UiViewer,
    store: StoreDep,
    limit: int = 50,
    done: str = "",
) -> Response:
    """A deployment's newest ``limit`` reports as charts and a table, the newest report's
    drift per column and domain flags, its alerts and its loop decisions."""
    if limit not in REPORT_LIMITS:
        raise InvalidInput(
            f"Reports shown {shown(limit)} is not offered; choose one of "
            f"{', '.join(map(str, REPORT_LIMITS))}.",
            field="limit",
        )
    return _page(request, caller, store, deployment, limit=limit, done=done)


@router.post("/ui/monitoring/{deployment}/decisions/{key}/approval")
def approve_decision(
    deployment: str, key: str, request: Request, caller: UiViewer, store: StoreDep, form: Form
) -> Response:
    """Approve or reject a decision awaiting approval (deployer, CSRF, confirmation,
    reason), recorded as the session's token."""
    check_post(request, caller, form)
    require_deployer(request, caller)
    verdict = form.get("verdict", "")
    if verdict not in _VERDICTS:
        raise InvalidInput(
            f"Unknown verdict {shown(verdict)}; the form offers {', '.join(_VERDICTS)}.",
            field="verdict",
        )
    loop = LocalLoop(store, actor=caller.identity.actor)
    decision = loop.get_decision(key)
    if decision.deployment != deployment:
        raise NotFound(
            f"Decision {decision.short_id} belongs to deployment {decision.deployment!r}, not "
            f"{deployment!r}. Open /ui/monitoring/{decision.deployment}."
        )
    try:
        reason = confirmed_reason(form, _VERDICTS[verdict], f"decision {decision.short_id}")
        decided = loop.approve(decision.id, reject=verdict == "reject", reason=reason)
    except (InvalidInput, Conflict) as exc:
        return _page(request, caller, store, deployment, error=str(exc), status=exc.http_status)
    return redirect(f"/ui/monitoring/{deployment}?done={decided.short_id}-{decided.state.value}")


def _page(
    request: Request,
    caller: Caller,
    store: Store,
    deployment: str,
    *,
    limit: int = 50,
    done: str = "",
    error: str | None = None,
    status: int = 200,
) -> Response:
    reports = list_reports(store, deployment, limit=limit)
    alerts = LocalAlerts(store).list_alerts(subject=deployment, limit=MAX_ALERTS)
    features = feature_drift(reports)
    trends = performance_trends(reports)
    return render(
        request,
        caller,
        "monitoring.html",
        status=status,
        deployment=deployment,
        reports=reports,
        newest=reports[0] if reports else None,
        charts={k: svg(c) for k, c in figure_charts(reports).items()},
        features=[(f, svg(feature_chart(f))) for f in features[:MAX_FEATURE_CHARTS]],
        more_features=max(0, len(features) - MAX_FEATURE_CHARTS),
        trends=[(t, svg(performance_chart(t))) for t in trends],
        domain=_domain_flags(request.app.state.home, deployment, reports),
        alerts=alerts,
        firing=_firing(alerts),
        decisions=LocalLoop(store).list_decisions(deployment, limit=MAX_DECISIONS),
        limit=limit,
        limits=REPORT_LIMITS,
        done=done,
        error=error,
    )


def _domain_flags(
    home: Path | None, deployment: str, reports: Sequence[MonitorResult]
) -> pd.DataFrame | None:
    """Values outside the input domain in the newest report's window, by column and kind,
    from this server's prediction log (reports do not keep them); None without a report or
    a log."""
    if home is None or not reports:
        return None
    newest = reports[0]
    return PredictionReader.of_home(home).out_of_domain(
        deployment=deployment, window_ms=(newest.window_start_ms, newest.window_end_ms)
    )


def _firing(alerts: Sequence[AlertRecord]) -> list[AlertRecord]:
    """The rules whose newest recorded alert is firing (``alerts``: newest first)."""
    newest: dict[str, AlertRecord] = {}
    for record in alerts:
        newest.setdefault(record.alert.rule, record)
    return [r for r in newest.values() if r.alert.state == "firing"]
