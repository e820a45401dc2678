"""The loop-decision seam: read decisions and approve them, locally or on ``modelpilot server``.

``modelpilot loop history|show`` and ``modelpilot approve`` go through :class:`LoopService`
only, so a person with a deployer token approves a candidate on the team's server the same
way as on a laptop (:class:`LocalLoop` here, :class:`~modelpilot.loop.http.HttpLoop` under
``/api/v1/loop``). Policies and the agent itself stay with the store they run on.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from modelpilot.clock import now_ms
from modelpilot.loop.decisions import (
    LoopDecision,
    approve_decision,
    get_decision,
    list_decisions,
)
from modelpilot.release import service as deployments
from modelpilot.store import Store
from modelpilot.store.events import default_actor
from modelpilot.workspace import Workspace


@runtime_checkable
class LoopService(Protocol):
    """What people need of the loop's decisions."""

    def list_decisions(self, deployment: str, *, limit: int = 20) -> list[LoopDecision]:
        """A deployment's decisions, newest first (NotFound for an unknown deployment)."""

    def get_decision(self, key: str) -> LoopDecision:
        """One decision by id or unique prefix."""

    def approve(self, key: str, *, reject: bool = False, reason: str = "") -> LoopDecision:
        """Approve (or reject) a decision that is awaiting approval."""


class LocalLoop:
    """Decisions on a store in this process; approvals recorded as ``actor``."""

    def __init__(self, store: Store, *, actor: str | None = None) -> None:
        self.store = store
        self.actor = actor or default_actor()

    def list_decisions(self, deployment: str, *, limit: int = 20) -> list[LoopDecision]:
        """A deployment's decisions, newest first (NotFound for an unknown deployment)."""
        deployments.get_deployment(self.store, deployment)  # NotFound listing them
        return list_decisions(self.store, deployment=deployment, limit=limit)

    def get_decision(self, key: str) -> LoopDecision:
        """One decision by id or unique prefix."""
        return get_decision(self.store, key)

    def approve(self, key: str, *, reject: bool = False, reason: str = "") -> LoopDecision:
        """Approve (or reject) a decision that is awaiting approval."""
        return approve_decision(
            self.store, key, actor=self.actor, now_ms=now_ms(), reject=reject, reason=reason
        )


def loop_service(ws: Workspace) -> LoopService:
    """Over HTTP when ``ws`` has a server configured, else on its local store."""
    if ws.is_remote:
        from modelpilot.loop.http import HttpLoop

        assert ws.settings.server_uri is not None  # is_remote says so
        return HttpLoop(ws.settings.server_uri, token=ws.settings.token)
    return LocalLoop(ws.store)


__all__ = ["LocalLoop", "LoopService", "loop_service"]
