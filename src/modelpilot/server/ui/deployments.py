"""Dashboard pages for deployments: variants and history, the live guard metrics, the A/B
result, and the promote, roll back and weight forms.

The live section is :func:`modelpilot.release.live.live_guards` over the prediction log of
the server's home, the controller's own evidence and checks; ``/ui/deployments/{name}/live``
serves it alone so the page can swap it in every few seconds (static/dashboard.js). The A/B
result is :func:`modelpilot.release.report.ab_report`, as ``modelpilot deploy report``.

A form post calls the same :mod:`modelpilot.release` function as the API's route, with the
caller's actor (``token:<name>``) and the reason typed in the form, so the change is one
revision and one audit event that ``modelpilot deploy history`` shows. A post needs the
deployer role, a matching CSRF token, the confirmation box ticked and a reason; it carries
the revision the page showed, so a change made meanwhile answers 409 instead of being undone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response

from modelpilot import release
from modelpilot.errors import Conflict, InvalidInput, shown
from modelpilot.predictions import log_folder
from modelpilot.release.config import DeploymentConfig
from modelpilot.release.entities import Deployment
from modelpilot.release.evidence import PredictionLogStats
from modelpilot.release.live import WINDOWS_MS, LiveGuards, live_guards
from modelpilot.release.protocol import LocalDeployments
from modelpilot.release.report import ABReport, ab_report
from modelpilot.server.deps import StoreDep
from modelpilot.server.ui.web import (
    Form,
    UiViewer,
    check_post,
    confirmed_reason,
    redirect,
    render,
    require_deployer,
)
from modelpilot.store import Store

router = APIRouter(include_in_schema=False)

LIVE_REFRESH_S = 10  # how often the page fetches its live section again


@dataclass(frozen=True)
class Asked:
    """What a change form asks for: who, why, on which revision, and its other fields."""

    actor: str
    reason: str
    expected_revision: int
    form: dict[str, str]

    @property
    def keywords(self) -> dict[str, Any]:
        """The keyword arguments every :mod:`modelpilot.release` change takes."""
        return {
            "actor": self.actor,
            "reason": self.reason,
            "expected_revision": self.expected_revision,
        }


Change = Callable[[Store, str, Asked], Deployment]


def _plain(change: Callable[..., Deployment]) -> Change:
    """A change with no fields of its own (promote, roll back)."""
    return lambda store, name, asked: change(store, name, **asked.keywords)


def _set_weight(store: Store, name: str, asked: Asked) -> Deployment:
    """As ``PUT /api/v1/deployments/{name}/weight``: the candidate to the form's weight."""
    weight = _whole_number(asked.form, "weight", "The new weight (a percentage, 0 to 100)")
    return release.set_weight(store, name, weight, **asked.keywords)


_CHANGES: dict[str, tuple[Change, str]] = {
    "promote": (_plain(release.promote), "Promote"),
    "rollback": (_plain(release.rollback), "Roll back"),
    "weight": (_set_weight, "Set weight"),
}


def rollout_step(config: DeploymentConfig) -> str:
    """``step 2 of 4 (25%)`` while a canary walks a rollout policy; ``—`` otherwise."""
    if config.rollout is None or config.rollout_step is None:
        return "—"
    steps = config.rollout.steps
    return f"step {config.rollout_step + 1} of {len(steps)} ({steps[config.rollout_step]}%)"


@router.get("/ui/deployments")
def deployments_page(request: Request, caller: UiViewer, store: StoreDep) -> Response:
    """Every deployment at its current revision."""
    return render(
        request,
        caller,
        "deployments.html",
        deployments=release.list_deployments(store),
        rollout_step=rollout_step,
    )


@router.get("/ui/deployments/{name}")
def deployment_page(
    name: str,
    request: Request,
    caller: UiViewer,
    store: StoreDep,
    done: str = "",
    window: str = "revision",
) -> Response:
    """One deployment: variants, weights, rollout step, live guard metrics, the A/B result,
    revision history; the forms for a deployer."""
    return _detail(request, caller, store, name, done=done, window=window)


@router.get("/ui/deployments/{name}/live")
def deployment_live(
    name: str, request: Request, caller: UiViewer, store: StoreDep, window: str = "revision"
) -> Response:
    """The live guard metrics alone (an HTML fragment the page swaps in), same auth."""
    deployment = release.get_deployment(store, name)
    return render(request, caller, "deployment_live.html", live=_live(request, deployment, window))


@router.post("/ui/deployments/{name}/{action}")
def change_deployment(
    name: str, action: str, request: Request, caller: UiViewer, store: StoreDep, form: Form
) -> Response:
    """Promote, roll back or set the candidate's weight from the page's form (deployer, CSRF,
    confirmation, reason)."""
    check_post(request, caller, form)
    require_deployer(request, caller)
    if action not in _CHANGES:
        raise InvalidInput(
            f"Unknown deployment action {shown(action)}; the dashboard offers "
            f"{', '.join(_CHANGES)}.",
            field="action",
        )
    change, label = _CHANGES[action]
    try:
        reason = confirmed_reason(form, label, name)
        revision = _whole_number(
            form, "expected_revision", "The form's expected_revision (reload the page)"
        )
        changed = change(store, name, Asked(caller.identity.actor, reason, revision, form))
    except (InvalidInput, Conflict) as exc:
        return _detail(request, caller, store, name, error=str(exc), status=exc.http_status)
    return redirect(f"/ui/deployments/{name}?done={action}-{changed.revision}")


def _whole_number(form: dict[str, str], field: str, what: str) -> int:
    text = form.get(field, "").strip()
    if not text.isdigit():
        raise InvalidInput(
            f"{what} must be a whole number; the form's {field!r} field was {shown(text)}.",
            field=field,
        )
    return int(text)


def _home(request: Request) -> Path | None:
    home: Path | None = request.app.state.home
    return home


def _live(request: Request, deployment: Deployment, window: str) -> LiveGuards | None:
    """The guard view over the server's prediction log; None for a server without a home."""
    home = _home(request)
    if home is None:
        return None
    return live_guards(deployment, PredictionLogStats(log_folder(home)), window=window)


def _ab(request: Request, store: Store, name: str) -> ABReport | None:
    home = _home(request)
    return None if home is None else ab_report(LocalDeployments(store), home, name)


def _detail(
    request: Request,
    caller: UiViewer,
    store: Store,
    name: str,
    *,
    done: str = "",
    window: str = "revision",
    error: str | None = None,
    status: int = 200,
) -> Response:
    deployment = release.get_deployment(store, name)
    return render(
        request,
        caller,
        "deployment.html",
        status=status,
        deployment=deployment,
        candidate=deployment.config.candidate(),
        history=release.history(store, name),
        step=rollout_step(deployment.config),
        done=done,
        error=error,
        live=_live(request, deployment, window),
        window=window,
        windows=list(WINDOWS_MS),
        refresh_s=LIVE_REFRESH_S,
        ab=_ab(request, store, name),
    )
