"""``/api/v1/deployments`` routes: reads (viewer) and traffic changes (deployer).

Each change is one call of :mod:`modelpilot.release.service`, so it is one transaction with
one revision and one audit event; the revision's actor is the caller (``token:<name>``).
``expected_revision`` is the compare-and-set guard: a stale one answers 409 and changes nothing.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict

from modelpilot import release
from modelpilot.release.codec import deployment_to_json, revision_to_json
from modelpilot.release.config import RolloutPolicy
from modelpilot.release.entities import Deployment
from modelpilot.server.deps import Deployer, StoreDep, Viewer, json_response

router = APIRouter(prefix="/api/v1/deployments", tags=["deployments"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = ""
    expected_revision: int | None = None


class CreateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    model: str
    reason: str = "created"


class CanaryBody(_Body):
    model: str
    weight: int
    policy: RolloutPolicy | None = None


class ShadowBody(_Body):
    model: str


class AbBody(_Body):
    model: str
    split: int
    key: str


class WeightBody(_Body):
    weight: int


class AdvanceBody(_Body):
    pass


class PromoteBody(_Body):
    automatic: bool = False  # the rollout controller decided it


class RollbackBody(_Body):
    reason: str = "manual rollback"
    automatic: bool = False  # a rollout guard failed: auto_rollback plus an alert.rollback


def _one(deployment: Deployment, status_code: int = 200) -> Response:
    return json_response(deployment_to_json(deployment), status_code=status_code)


@router.get("")
def list_deployments(store: StoreDep, _: Viewer) -> Response:
    """Every deployment at its current revision."""
    found = release.list_deployments(store)
    return json_response({"deployments": [deployment_to_json(d) for d in found]})


@router.post("", status_code=201)
def create_deployment(body: CreateBody, store: StoreDep, who: Deployer) -> Response:
    """A new deployment serving ``model`` (resolved to a fixed version now) at 100%."""
    created = release.create_deployment(
        store, body.name, body.model, actor=who.actor, reason=body.reason
    )
    return _one(created, status_code=201)


@router.get("/{name}")
def get_deployment(name: str, store: StoreDep, _: Viewer) -> Response:
    """The current revision of a deployment."""
    return _one(release.get_deployment(store, name))


@router.get("/{name}/history")
def get_history(name: str, store: StoreDep, _: Viewer) -> Response:
    """Every revision of a deployment, newest first, with actor, action and reason."""
    revisions = release.history(store, name)
    return json_response({"revisions": [revision_to_json(r) for r in revisions]})


@router.post("/{name}/canary")
def set_canary(name: str, body: CanaryBody, store: StoreDep, who: Deployer) -> Response:
    """Send ``weight``% of traffic to ``model`` as a canary (optionally under a policy)."""
    return _one(
        release.set_canary(
            store,
            name,
            body.model,
            body.weight,
            policy=body.policy,
            actor=who.actor,
            reason=body.reason,
            expected_revision=body.expected_revision,
        )
    )


@router.post("/{name}/shadow")
def set_shadow(name: str, body: ShadowBody, store: StoreDep, who: Deployer) -> Response:
    """Mirror every request to ``model``; its answers are only logged."""
    return _one(
        release.set_shadow(
            store,
            name,
            body.model,
            actor=who.actor,
            reason=body.reason,
            expected_revision=body.expected_revision,
        )
    )


@router.post("/{name}/ab")
def set_ab(name: str, body: AbBody, store: StoreDep, who: Deployer) -> Response:
    """A/B test: ``split``% to ``model`` as challenger, sticky by the request field ``key``."""
    return _one(
        release.set_ab(
            store,
            name,
            body.model,
            body.split,
            body.key,
            actor=who.actor,
            reason=body.reason,
            expected_revision=body.expected_revision,
        )
    )


@router.put("/{name}/weight")
def set_weight(name: str, body: WeightBody, store: StoreDep, who: Deployer) -> Response:
    """Move the canary/challenger to ``weight``%, the stable variant to the rest."""
    return _one(
        release.set_weight(
            store,
            name,
            body.weight,
            actor=who.actor,
            reason=body.reason,
            expected_revision=body.expected_revision,
        )
    )


@router.post("/{name}/advance")
def advance(name: str, body: AdvanceBody, store: StoreDep, who: Deployer) -> Response:
    """Move a canary under a rollout policy to its next step (a rollout controller's call)."""
    return _one(
        release.advance_step(
            store,
            name,
            actor=who.actor,
            reason=body.reason,
            expected_revision=body.expected_revision,
        )
    )


@router.post("/{name}/promote")
def promote(name: str, body: PromoteBody, store: StoreDep, who: Deployer) -> Response:
    """Make the candidate the stable variant at 100% (the new rollback target)."""
    return _one(
        release.promote(
            store,
            name,
            actor=who.actor,
            reason=body.reason,
            automatic=body.automatic,
            expected_revision=body.expected_revision,
        )
    )


@router.post("/{name}/rollback")
def rollback(name: str, body: RollbackBody, store: StoreDep, who: Deployer) -> Response:
    """Go back at once to the last stable configuration (the last create or promote)."""
    return _one(
        release.rollback(
            store,
            name,
            actor=who.actor,
            reason=body.reason,
            automatic=body.automatic,
            expected_revision=body.expected_revision,
        )
    )
