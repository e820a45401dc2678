"""``/api/v1/monitoring`` routes: run a monitoring job for a deployment (editor) and read the
kept reports (viewer).

The job runs here, on the server's store and on the prediction log in the server's home,
which is the log of a data plane that shares this home (``modelpilot serve`` with the same
``MODELPILOT_HOME``, or the same volume). Prediction logs in object storage come with S3
support.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Request, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from modelpilot.errors import Unavailable
from modelpilot.monitoring.service import LocalMonitoring, get_report, list_reports
from modelpilot.server.deps import ArtifactsDep, Editor, StoreDep, Viewer, json_response

router = APIRouter(prefix="/api/v1/monitoring", tags=["monitoring"])


class RunBody(BaseModel):
    window_s: float = Field(3600.0, gt=0, le=366 * 86400)
    until_ms: int | None = Field(None, ge=0, le=2**53)


def _home(request: Request) -> Path:
    home: Path | None = request.app.state.home
    if home is None:
        raise Unavailable(
            "This server was started without a home, so it has no prediction log to monitor."
        )
    return home


@router.post("/{deployment}/reports", status_code=201)
def run_job(
    deployment: str,
    body: RunBody,
    request: Request,
    store: StoreDep,
    artifacts: ArtifactsDep,
    who: Editor,
) -> Response:
    """Score a window of the deployment's traffic in this server's prediction log now, and
    keep the report."""
    service = LocalMonitoring(store, artifacts, _home(request), actor=who.actor)
    result = service.run(deployment, window_s=body.window_s, until_ms=body.until_ms)
    return json_response(result.to_dict(), status_code=201)


@router.get("/{deployment}/reports")
def get_reports(deployment: str, store: StoreDep, _: Viewer, limit: int = 20) -> Response:
    """Kept reports of a deployment, newest first (``?limit=``, 1 to 200)."""
    reports = list_reports(store, deployment, limit=limit)
    return json_response({"reports": [r.to_dict() for r in reports]})


@router.get("/{deployment}/reports/{report_id}")
def get_one_report(
    deployment: str,
    report_id: Annotated[int, PathParam(ge=1, le=2**31 - 1)],
    store: StoreDep,
    _: Viewer,
) -> Response:
    """One kept report."""
    return json_response(get_report(store, deployment, report_id).to_dict())
