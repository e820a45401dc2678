"""Dashboard pages for deployments: their variants and history, and promote/rollback forms.

A form post calls the same :mod:`modelpilot.release` function as the API's route, with the
caller's actor (``token:<name>``) and the reason typed in the form, so the change is one
revision and one audit event that ``modelpilot deploy history`` shows. A post needs the
deployer role, a matching CSRF token, the confirmation box ticked and a reason; it carries
the revision the page showed, so a change made meanwhile answers 409 instead of being undone.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request, Response

from modelpilot import release
from modelpilot.errors import Conflict, InvalidInput, shown
from modelpilot.release.config import DeploymentConfig
from modelpilot.release.service import Deployment
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

Change = Callable[..., Deployment]
_CHANGES: dict[str, tuple[Change, str]] = {
    "promote": (release.promote, "Promote"),
    "rollback": (release.rollback, "Roll back"),
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
    name: str, request: Request, caller: UiViewer, store: StoreDep, done: str = ""
) -> Response:
    """One deployment: variants, weights, rollout step, revision history; the forms for a
    deployer."""
    return _detail(request, caller, store, name, done=done)


@router.post("/ui/deployments/{name}/{action}")
def change_deployment(
    name: str, action: str, request: Request, caller: UiViewer, store: StoreDep, form: Form
) -> Response:
    """Promote or roll back from the page's form (deployer, CSRF, confirmation, reason)."""
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
        changed = change(
            store,
            name,
            actor=caller.identity.actor,
            reason=reason,
            expected_revision=_revision(form),
        )
    except (InvalidInput, Conflict) as exc:
        return _detail(request, caller, store, name, error=str(exc), status=exc.http_status)
    return redirect(f"/ui/deployments/{name}?done={action}-{changed.revision}")


def _revision(form: dict[str, str]) -> int:
    text = form.get("expected_revision", "")
    if not text.isdigit():
        raise InvalidInput(
            f"The form's expected_revision must be a revision number; got {shown(text)}. "
            "Reload the page and submit again.",
            field="expected_revision",
        )
    return int(text)


def _detail(
    request: Request,
    caller: UiViewer,
    store: Store,
    name: str,
    *,
    done: str = "",
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
    )
