"""Dashboard pages for datasets: every dataset version, and one version's schema, profile,
data risks and the runs and model versions that use it.

A version's page shows its dataset card's data (:func:`modelpilot.cards.build_dataset_card`,
what ``GET /api/v1/datasets/{name}/card`` sends), laid out in the dashboard's own markup.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from modelpilot.cards import build_dataset_card
from modelpilot.data import list_datasets
from modelpilot.server.deps import StoreDep
from modelpilot.server.ui.web import UiViewer, render

router = APIRouter(include_in_schema=False)


@router.get("/ui/datasets")
def datasets_page(request: Request, caller: UiViewer, store: StoreDep) -> Response:
    """Every dataset version, newest first, with whether its data risks were assessed."""
    return render(request, caller, "datasets.html", datasets=list_datasets(store))


@router.get("/ui/datasets/{name}/{version}")
def dataset_page(
    name: str, version: str, request: Request, caller: UiViewer, store: StoreDep
) -> Response:
    """One dataset version (``version``: a prefix of its content hash)."""
    card = build_dataset_card(store, f"{name}@{version}").data
    return render(
        request,
        caller,
        "dataset.html",
        card=card,
        columns=profile_rows(card["profile"]),
        assessed=bool(card["profile"].get("risks")),
    )


def profile_rows(profile: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per profiled column: kind, values, nulls, and a range (numeric, datetime) or
    the most frequent values (categorical).

    >>> profile_rows({"columns": {"x": {"kind": "numeric", "count": 3, "nulls": 1,
    ...   "min": 0.0, "max": 2.0, "mean": 1.0}}})[0]["summary"]
    'min 0 · mean 1 · max 2'
    >>> profile_rows({"columns": {"c": {"kind": "categorical", "count": 2, "nulls": 0,
    ...   "top": {"a": 2}}}})[0]["summary"]
    'a (2)'
    """
    rows = []
    for name, stats in (profile.get("columns") or {}).items():
        kind = stats.get("kind", "")
        if kind == "numeric" and stats.get("min") is not None:
            mean = stats.get("mean")
            parts = [f"min {stats['min']:.4g}"]
            parts += [] if mean is None else [f"mean {mean:.4g}"]
            summary = " · ".join([*parts, f"max {stats['max']:.4g}"])
        elif kind == "datetime" and stats.get("min") is not None:
            summary = f"{stats['min']} … {stats['max']}"
        else:
            summary = ", ".join(f"{k} ({v:,})" for k, v in (stats.get("top") or {}).items())
        rows.append(
            {
                "name": name,
                "kind": kind,
                "dtype": stats.get("dtype", ""),
                "count": stats.get("count"),
                "nulls": stats.get("nulls"),
                "summary": summary,
            }
        )
    return rows
