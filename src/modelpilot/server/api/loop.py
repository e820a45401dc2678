"""``/api/v1/loop`` routes: the continuous-training decisions, and approving them.

Reads need viewer. An approval (or rejection) needs deployer, like a traffic change, since
it lets a candidate's canary start; it is recorded (decision step and audit event) as the
caller's token.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from modelpilot.loop.decisions import decision_to_json
from modelpilot.loop.protocol import LocalLoop
from modelpilot.server.deps import Deployer, StoreDep, Viewer, json_response

router = APIRouter(prefix="/api/v1/loop", tags=["continuous training"])


class ApprovalBody(BaseModel):
    """``reject: true`` refuses the candidate; ``reason`` is recorded either way."""

    model_config = ConfigDict(extra="forbid")

    reject: bool = False
    reason: str = Field(default="", max_length=2000)


@router.get("/decisions")
def list_decisions(
    store: StoreDep,
    _: Viewer,
    deployment: str = Query(..., min_length=1),
    limit: int = Query(20, ge=1, le=10_000),
) -> Response:
    """A deployment's decisions, newest first, with their steps."""
    found = LocalLoop(store).list_decisions(deployment, limit=limit)
    return json_response({"decisions": [decision_to_json(d) for d in found]})


@router.get("/decisions/{key}")
def get_decision(key: str, store: StoreDep, _: Viewer) -> Response:
    """One decision by id or unique prefix."""
    return json_response(decision_to_json(LocalLoop(store).get_decision(key)))


@router.post("/decisions/{key}/approval")
def approve(key: str, body: ApprovalBody, store: StoreDep, who: Deployer) -> Response:
    """Approve (or reject) a decision that is awaiting approval."""
    decided = LocalLoop(store, actor=who.actor).approve(key, reject=body.reject,
                                                        reason=body.reason)  # fmt: skip
    return json_response(decision_to_json(decided))
