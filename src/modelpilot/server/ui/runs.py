"""Dashboard pages for tracking: the runs table, one run, and runs compared side by side.

Every read is a call of the tracking service the API uses; charts are drawn on the server as
inline SVG from series downsampled to at most ``MAX_CHART_POINTS`` points each (a long series
is read from its bucket summaries, :mod:`modelpilot.tracking.series`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from modelpilot.cards.downsample import MAX_CHART_POINTS, downsample_min_max
from modelpilot.cards.svg import line_chart
from modelpilot.errors import InvalidInput, shown
from modelpilot.registry.lineage import run_lineage
from modelpilot.server.api.artifacts import blob_chunks, stored_blob
from modelpilot.server.deps import ArtifactsDep, StoreDep, TrackingDep
from modelpilot.server.ui.models import Serving, serving_by_version
from modelpilot.server.ui.web import UiViewer, render, svg
from modelpilot.store import Store
from modelpilot.tracking import service
from modelpilot.tracking.entities import Run
from modelpilot.tracking.local import decode_page_token, encode_page_token
from modelpilot.tracking.protocol import RunPage
from modelpilot.tracking.series import chart_series

router = APIRouter(include_in_schema=False)

PAGE_SIZES = (25, 50, 100, 200, 500, 1000)
MAX_COMPARED = 50
MAX_COMPARE_CHARTS = 24  # metric keys charted on the compare page


@dataclass(frozen=True)
class Delta:
    """A value's difference from the reference run, with a sign and a word (not colour
    alone)."""

    text: str
    word: str


def delta(value: float | None, reference: float | None) -> Delta | None:
    """``+0.02 higher``, ``-0.01 lower`` or ``±0 same`` against the reference value.

    >>> delta(0.9, 0.8).text, delta(0.9, 0.8).word
    ('+0.1', 'higher')
    >>> delta(0.8, 0.8).text
    '±0'
    """
    if value is None or reference is None:
        return None
    diff = value - reference
    if diff == 0:
        return Delta("±0", "same")
    return Delta(f"{diff:+.4g}", "higher" if diff > 0 else "lower")


@router.get("/ui/runs")
def runs_page(
    request: Request,
    caller: UiViewer,
    tracking: TrackingDep,
    store: StoreDep,
    experiment: str = "",
    filter: str = "",
    order: str = "",
    page: str = "",
    size: int = 50,
) -> Response:
    """The runs table: a page of runs matching the filter, with last/min/max per metric."""
    error, found = None, RunPage([], None)
    try:
        if size not in PAGE_SIZES:
            raise InvalidInput(
                f"Page size {shown(size)} is not offered; choose one of "
                f"{', '.join(map(str, PAGE_SIZES))}.",
                field="size",
            )
        found = tracking.search_runs(
            experiment or None,
            filter,
            [order] if order.strip() else [],
            page_token=page or None,
            max_results=size,
        )
    except InvalidInput as exc:
        error = str(exc)
    runs = found.runs
    query = {"experiment": experiment, "filter": filter, "order": order, "size": size}
    offset = decode_page_token(page) if error is None else 0
    return render(
        request,
        caller,
        "runs.html",
        status=422 if error else 200,
        runs=runs,
        error=error,
        query=query,
        experiments=[e.name for e in tracking.list_experiments()],
        params=sorted({k for r in runs for k in r.params}),
        metrics=sorted({k for r in runs for k in r.metrics}),
        ranges=service.metric_ranges(store, [r.id for r in runs]),
        sizes=PAGE_SIZES,
        first=offset + 1,
        next_url=_page_url(query, found.next_page_token),
        prev_url=_page_url(query, encode_page_token(max(0, offset - size)) if offset else None),
        sort_url=lambda column: _sort_url(query, column),
    )


def _page_url(query: dict[str, object], token: str | None) -> str | None:
    if token is None:
        return None
    return "/ui/runs?" + urlencode({**query, "page": token})


def _sort_url(query: dict[str, object], column: str) -> str:
    """Sort by ``column`` descending, or ascending when it is sorted descending now."""
    direction = "ASC" if query["order"] == f"{column} DESC" else "DESC"
    return "/ui/runs?" + urlencode({**query, "order": f"{column} {direction}"})


@router.get("/ui/runs/{run_id}")
def run_page(
    run_id: str,
    request: Request,
    caller: UiViewer,
    tracking: TrackingDep,
    store: StoreDep,
    artifacts: ArtifactsDep,
) -> Response:
    """One run: lineage (datasets -> run -> model versions -> deployments), params, tags,
    metrics with charts, datasets, artifacts, child runs."""
    run = tracking.get_run(tracking.resolve_run_id(run_id))
    ranges = service.metric_ranges(store, [run.id]).get(run.id, {})
    charts = {key: _chart(store, [run], key) for key in sorted(run.metrics)}
    trace = run_lineage(store, run.id)
    return render(
        request,
        caller,
        "run.html",
        run=run,
        trace=trace,
        serving=_serving(store, trace.versions),
        ranges=ranges,
        charts=charts,
        max_points=MAX_CHART_POINTS,
        children=service.child_runs(store, run.id),
        files=[
            (path, digest, artifacts.size_of(digest), _download_url(digest, path))
            for path, digest in sorted(run.artifacts.items())
        ],
    )


def _serving(store: Store, versions: Sequence[dict[str, Any]]) -> list[tuple[str, Serving]]:
    """(version ref, deployment variant) for each variant serving one of ``versions``."""
    by_model = {name: serving_by_version(store, name) for name in {v["name"] for v in versions}}
    return [(v["ref"], s) for v in versions for s in by_model[v["name"]].get(v["version"], [])]


@router.get("/ui/artifacts/{digest}/{path:path}")
def download(digest: str, path: str, caller: UiViewer, artifacts: ArtifactsDep) -> Response:
    """A run artifact's bytes, saved under its file name."""
    del caller  # the dependency is the viewer check
    file = stored_blob(artifacts, digest)
    name = PurePosixPath(path).name or digest[:12]
    return StreamingResponse(
        blob_chunks(file),
        media_type="application/octet-stream",
        headers={
            "Content-Length": str(file.stat().st_size),
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name, safe='')}",
            "X-Content-Type-Options": "nosniff",
        },
    )


def _download_url(digest: str, path: str) -> str:
    return f"/ui/artifacts/{digest}/{quote(path)}"


@router.get("/ui/compare")
def compare_page(
    request: Request, caller: UiViewer, tracking: TrackingDep, store: StoreDep, show: str = "diff"
) -> Response:
    """2 to 50 runs side by side: the params that differ (or all), metrics with their
    difference from the first run, overlaid metric charts."""
    ids = _compared_ids(request.query_params.getlist("runs"))
    runs = [tracking.get_run(tracking.resolve_run_id(i)) for i in ids]
    rows = list(_param_rows(runs))
    metric_keys = sorted({k for r in runs for k in r.metrics})
    return render(
        request,
        caller,
        "compare.html",
        runs=runs,
        show_all=show == "all",
        param_rows=[row for row in rows if show == "all" or row[2]],
        differing=sum(1 for row in rows if row[2]),
        total_params=len(rows),
        metric_keys=metric_keys,
        delta=delta,
        charts={key: _chart(store, runs, key) for key in metric_keys[:MAX_COMPARE_CHARTS]},
        more_charts=max(0, len(metric_keys) - MAX_COMPARE_CHARTS),
        runs_param=",".join(r.id for r in runs),
    )


def _compared_ids(values: Sequence[str]) -> list[str]:
    """``runs=a,b`` and ``runs=a&runs=b`` (the runs table's checkboxes), each once."""
    ids = list(dict.fromkeys(i.strip() for v in values for i in v.split(",") if i.strip()))
    if not 2 <= len(ids) <= MAX_COMPARED:
        raise InvalidInput(
            f"Compare needs 2 to {MAX_COMPARED} runs; got {len(ids)}. Tick the runs to compare "
            "in the runs table, or pass ?runs=ID1,ID2.",
            field="runs",
        )
    return ids


def _param_rows(runs: Sequence[Run]) -> Iterator[tuple[str, list[str | None], bool]]:
    """(param, value per run, whether the values differ); a missing param differs from any
    value."""
    for key in sorted({k for r in runs for k in r.params}):
        values = [r.params.get(key) for r in runs]
        yield key, values, len(set(values)) > 1


def _chart(store: Store, runs: Sequence[Run], key: str) -> object:
    """One metric of each run that has it, downsampled, as an overlaid SVG chart."""
    series = []
    for run in runs:
        found = chart_series(store, run.id, key, MAX_CHART_POINTS)
        if found is None:
            continue
        xs, ys = downsample_min_max(found.steps, found.values)
        series.append((f"{run.name} ({run.id[:8]})", xs, ys))
    return svg(line_chart(series, title=key))
