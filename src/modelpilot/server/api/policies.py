"""``/api/v1/logging-policies`` routes: what the prediction log keeps of each input column.

Reads need viewer (model servers following this control plane read them with their own
token); a change needs deployer, like a traffic change, because it decides what production
logs. Each change is one call of :func:`~modelpilot.predictions.policy_store.set_log_policy`:
one transaction with its audit event, recorded as the caller (``token:<name>``). The HMAC key
of hashed columns never comes here: it stays with each model server's home.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from modelpilot import release
from modelpilot.predictions.log_policy import Action
from modelpilot.predictions.policy_store import (
    list_log_policies,
    set_log_policy,
    stored_policy_to_json,
)
from modelpilot.server.deps import Deployer, StoreDep, Viewer, json_response

router = APIRouter(prefix="/api/v1/logging-policies", tags=["logging policies"])


class PolicyBody(BaseModel):
    """A change: ``columns`` are merged into the stored policy; ``retention_days`` replaces
    the stored one when given."""

    model_config = ConfigDict(extra="forbid")

    model: str
    columns: dict[str, Action] = Field(default_factory=dict)
    deployment: str | None = None
    retention_days: int | None = Field(default=None, ge=1)


@router.get("")
def list_policies(store: StoreDep, _: Viewer) -> Response:
    """Every stored policy, models first, by name."""
    found = list_log_policies(store)
    return json_response({"policies": [stored_policy_to_json(p) for p in found]})


@router.post("")
def set_policy(body: PolicyBody, store: StoreDep, who: Deployer) -> Response:
    """Set column actions (and retention) for a model, or for one deployment of it."""
    stored = set_log_policy(
        store,
        body.model,
        body.columns,
        deployment=body.deployment,
        retention_days=body.retention_days,
        actor=who.actor,
        check_deployment=lambda name: release.get_deployment(store, name),
    )
    return json_response(stored_policy_to_json(stored))
