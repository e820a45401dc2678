"""Dashboard pages for the registry: models, a model's versions and alias history, and one
version with its lineage, model card, evaluations and gate verdicts.

Every read is a registry (or release) function the API's routes call too. The version page
builds its card from the version's records, as :func:`modelpilot.cards.build_model_card`
does, without reading the package: a package missing from the artifact store must not hide
the version's records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response

from modelpilot import registry, release
from modelpilot.cards.model_card import (
    EDITABLE_FIELDS,
    card_fields,
    metric_rows,
    risk_lines,
    risk_register,
)
from modelpilot.registry.entities import (
    RETIRED_BY_TAG,
    RETIRED_REASON_TAG,
    RETIRED_TAG,
    ModelVersion,
    VersionRecord,
)
from modelpilot.registry.lineage import lineage
from modelpilot.registry.records import list_records, model_records
from modelpilot.server.deps import StoreDep
from modelpilot.server.ui.web import UiViewer, render
from modelpilot.store import Store

router = APIRouter(include_in_schema=False)

# What the version page lists under "Records" beyond the evaluations and gates it details.
_OTHER_KINDS = ("note", "monitoring", "loop", "optimization")
_ALIAS_EVENTS = ("alias.set", "alias.deleted")
MAX_OTHER_RECORDS = 50


@dataclass(frozen=True)
class Serving:
    """A deployment variant that serves a version."""

    deployment: str
    variant: str
    role: str
    weight: int


@router.get("/ui/models")
def models_page(request: Request, caller: UiViewer, store: StoreDep) -> Response:
    """Every registered model with its latest version and aliases."""
    return render(request, caller, "models.html", models=registry.list_models(store))


@router.get("/ui/models/{name}")
def model_page(name: str, request: Request, caller: UiViewer, store: StoreDep) -> Response:
    """A model's versions (aliases, newest gate verdict, retired or live) and the history of
    its aliases."""
    versions = registry.list_versions(store, name)
    verdicts: dict[int, VersionRecord] = {}
    for gate in model_records(store, name, "gate"):  # newest first: keep each version's newest
        verdicts.setdefault(gate.version, gate)
    events = registry.model_events(store, name, 200)
    return render(
        request,
        caller,
        "model.html",
        name=name,
        versions=sorted(versions, key=lambda v: -v.version),
        verdicts=verdicts,
        alias_events=[e for e in events if e.kind in _ALIAS_EVENTS],
        serving=serving_by_version(store, name),
    )


@router.get("/ui/models/{name}/versions/{version}")
def version_page(
    name: str, version: int, request: Request, caller: UiViewer, store: StoreDep
) -> Response:
    """One version: facts, lineage (datasets -> run -> version -> deployments), the model
    card's written fields and risk register, evaluations and gate verdicts."""
    mv = registry.get_version(store, f"{name}/{version}")
    evaluations = list_records(store, mv.ref, "evaluation")
    fields = card_fields(store, mv.ref)
    return render(
        request,
        caller,
        "model_version.html",
        mv=mv,
        retired=_retired(mv),
        trace=lineage(store, mv.ref),
        serving=[(mv.ref, s) for s in serving_by_version(store, name).get(version, [])],
        card=[(f.replace("_", " ").capitalize(), fields.get(f)) for f in EDITABLE_FIELDS],
        risks=risk_lines(risk_register(store, name)),
        evaluation=evaluations[0] if evaluations else None,
        evaluation_rows=metric_rows(evaluations[0].payload) if evaluations else [],
        evaluations=evaluations,
        gates=list_records(store, mv.ref, "gate"),
        others=_other_records(store, mv.ref),
    )


def _retired(mv: ModelVersion) -> dict[str, str] | None:
    """When, why and by whom the version was retired; None for a live version."""
    if not mv.is_retired:
        return None
    return {
        "when": mv.tags[RETIRED_TAG],
        "reason": mv.tags.get(RETIRED_REASON_TAG, ""),
        "by": mv.tags.get(RETIRED_BY_TAG, ""),
    }


def serving_by_version(store: Store, name: str) -> dict[int, list[Serving]]:
    """Version of model ``name`` -> the deployment variants serving it now (a model's page,
    and the lineage on a version's and a run's page)."""
    found: dict[int, list[Serving]] = {}
    for d in release.list_deployments(store):
        for v in d.config.variants:
            if v.model == name:
                found.setdefault(v.version, []).append(Serving(d.name, v.name, v.role, v.weight))
    return found


def _other_records(store: Store, ref: str) -> list[tuple[VersionRecord, str]]:
    """The version's other documents (the newest ``MAX_OTHER_RECORDS``), newest first, each
    with a one-line summary."""
    found = [(r, _summary(r.payload)) for k in _OTHER_KINDS for r in list_records(store, ref, k)]
    return sorted(found, key=lambda pair: -pair[0].id)[:MAX_OTHER_RECORDS]


def _summary(payload: dict[str, Any]) -> str:
    """A record's payload in one line (its first few keys).

    >>> _summary({"deployment": "churn-prod", "rows": 120, "figures": {"a": 1}})
    'deployment=churn-prod, rows=120, figures=…'
    """
    parts = []
    for key, value in list(payload.items())[:4]:
        text = "…" if isinstance(value, (dict, list)) else str(value)
        parts.append(f"{key}={text[:60]}")
    return ", ".join(parts)
