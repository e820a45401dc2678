"""``/api/v1`` tracking routes: experiments, runs, params, tags, metrics, search.

Each route is one call of :class:`~modelpilot.tracking.protocol.TrackingService`; the HTTP
client (``modelpilot.client.HttpTracking``) is the other half of this file.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Response
from pydantic import BaseModel, Field

from modelpilot.server.deps import Editor, FastJsonRoute, TrackingDep, Viewer, json_response
from modelpilot.tracking.codec import experiment_to_json, points_to_json, run_to_json
from modelpilot.tracking.entities import RunStatus
from modelpilot.tracking.protocol import MAX_PAGE_SIZE

router = APIRouter(prefix="/api/v1", tags=["tracking"], route_class=FastJsonRoute)

# A client-generated uuid per request that must not be applied twice (a new run, a metric
# batch): the client re-sends it with the same key after a dropped connection.
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=64)]


class ExperimentBody(BaseModel):
    name: str


class RunBody(BaseModel):
    experiment: str
    name: str | None = None
    parent_run_id: str | None = None
    tags: dict[str, str] | None = None
    code_revision: str | None = None
    environment: dict[str, Any] | None = None


class StatusBody(BaseModel):
    status: RunStatus


class ParamsBody(BaseModel):
    params: dict[str, Any]


class TagsBody(BaseModel):
    tags: dict[str, Any]


class MetricsBody(BaseModel):
    rows: list[tuple[str, float, int, int]] = Field(
        description="Points as [key, value, step, timestamp_ms]."
    )


class SearchBody(BaseModel):
    experiment: str | None = None
    filter: str = ""
    order_by: list[str] = Field(default_factory=list)
    page_token: str | None = None
    max_results: int = Field(default=100, ge=1, le=MAX_PAGE_SIZE)


@router.post("/experiments")
def get_or_create_experiment(body: ExperimentBody, tracking: TrackingDep, _: Editor) -> Response:
    """The experiment with this name, created if needed."""
    return json_response(experiment_to_json(tracking.get_or_create_experiment(body.name)))


@router.get("/experiments")
def list_experiments(tracking: TrackingDep, _: Viewer) -> Response:
    """Every experiment, oldest first."""
    found = tracking.list_experiments()
    return json_response({"experiments": [experiment_to_json(e) for e in found]})


@router.get("/run-ids/{prefix}")
def resolve_run_id(prefix: str, tracking: TrackingDep, _: Viewer) -> Response:
    """The full id of the one run whose id starts with ``prefix`` (the prefix itself when no
    run matches; 422 listing them when several do)."""
    return json_response({"run_id": tracking.resolve_run_id(prefix)})


@router.post("/runs", status_code=201)
def create_run(
    body: RunBody, tracking: TrackingDep, who: Editor, key: IdempotencyKey = None
) -> Response:
    """Start a RUNNING run (recorded as created by the caller; a repeated key returns the run
    the first request created)."""
    run = tracking.acting_as(who.actor).create_run(
        body.experiment,
        name=body.name,
        parent_run_id=body.parent_run_id,
        tags=body.tags,
        code_revision=body.code_revision,
        environment=body.environment,
        request_key=key,
    )
    return json_response(run_to_json(run), status_code=201)


@router.get("/runs/{run_id}")
def get_run(run_id: str, tracking: TrackingDep, _: Viewer) -> Response:
    """A run with params, tags and latest metrics."""
    return json_response(run_to_json(tracking.get_run(run_id)))


@router.put("/runs/{run_id}/status")
def set_status(run_id: str, body: StatusBody, tracking: TrackingDep, who: Editor) -> Response:
    """End a run (FINISHED, FAILED or KILLED)."""
    tracking.acting_as(who.actor).set_status(run_id, body.status)
    return json_response({"run_id": run_id, "status": body.status.value})


@router.post("/runs/{run_id}/params")
def log_params(run_id: str, body: ParamsBody, tracking: TrackingDep, who: Editor) -> Response:
    """Record params (logging the same value again is a no-op, a different one a 409)."""
    tracking.acting_as(who.actor).log_params(run_id, body.params)
    return json_response({"logged": len(body.params)})


@router.post("/runs/{run_id}/tags")
def set_tags(run_id: str, body: TagsBody, tracking: TrackingDep, who: Editor) -> Response:
    """Set or overwrite tags."""
    tracking.acting_as(who.actor).set_tags(run_id, body.tags)
    return json_response({"set": len(body.tags)})


@router.post("/runs/{run_id}/metrics")
def log_metrics(
    run_id: str, body: MetricsBody, tracking: TrackingDep, _: Editor, key: IdempotencyKey = None
) -> Response:
    """Append a batch of metric points in one transaction (a batch whose key was applied
    before is not applied again). No audit event per batch: see docs/audit.md."""
    tracking.log_metrics(run_id, body.rows, batch_key=key)
    return json_response({"logged": len(body.rows)})


@router.get("/runs/{run_id}/metric-history")
def get_metric_history(run_id: str, key: str, tracking: TrackingDep, _: Viewer) -> Response:
    """Every point of one metric as ``[value, step, timestamp_ms]``."""
    points = tracking.get_metric_history(run_id, key)
    return json_response({"key": key, "points": points_to_json(points)})


@router.post("/runs/search")
def search_runs(body: SearchBody, tracking: TrackingDep, _: Viewer) -> Response:
    """One page of runs matching a filter (``metrics.auc > 0.9``), ordered."""
    page = tracking.search_runs(
        body.experiment,
        body.filter,
        body.order_by,
        page_token=body.page_token,
        max_results=body.max_results,
    )
    return json_response(
        {"runs": [run_to_json(r) for r in page.runs], "next_page_token": page.next_page_token}
    )
