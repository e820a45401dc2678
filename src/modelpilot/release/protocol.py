"""The deployment seam: one typed interface, a local and an HTTP implementation.

The SDK's deployment calls (``mp.create_deployment``, ``mp.canary``, ``mp.promote`` ...) go
through :class:`DeploymentService` only, so the same code runs in-process on a store
(:class:`LocalDeployments`) or against ``modelpilot server``
(``modelpilot.client.HttpDeployments``). tests/contract/test_deployment_service_contract.py
runs one suite against every implementation.

``expected_revision`` is the compare-and-set guard of every change: a change based on a stale
revision raises ``Conflict`` (409 over HTTP) and stores nothing.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from modelpilot.release import service
from modelpilot.release.config import RolloutPolicy
from modelpilot.release.entities import Deployment, Revision
from modelpilot.store import Store


@runtime_checkable
class DeploymentService(Protocol):
    """What the SDK's deployment calls need, and nothing more."""

    def create_deployment(
        self, name: str, model_ref: str, *, reason: str = "created"
    ) -> Deployment:
        """A new deployment serving ``model_ref`` (resolved to a fixed version now) at 100%."""

    def get_deployment(self, name: str) -> Deployment:
        """The current revision of a deployment."""

    def list_deployments(self) -> list[Deployment]:
        """Every deployment at its current revision."""

    def history(self, name: str) -> list[Revision]:
        """Every revision of a deployment, newest first."""

    def set_canary(
        self,
        name: str,
        model_ref: str,
        weight: int,
        *,
        policy: RolloutPolicy | None = None,
        reason: str = "",
        expected_revision: int | None = None,
    ) -> Deployment:
        """Send ``weight``% of traffic to ``model_ref`` as a canary."""

    def set_shadow(
        self, name: str, model_ref: str, *, reason: str = "", expected_revision: int | None = None
    ) -> Deployment:
        """Mirror every request to ``model_ref``; its answers are only logged."""

    def set_ab(
        self,
        name: str,
        model_ref: str,
        split: int,
        key: str,
        *,
        reason: str = "",
        expected_revision: int | None = None,
    ) -> Deployment:
        """A/B test: ``split``% to ``model_ref``, sticky by the request field ``key``."""

    def set_weight(
        self, name: str, weight: int, *, reason: str = "", expected_revision: int | None = None
    ) -> Deployment:
        """Move the canary/challenger to ``weight``%, the stable variant to the rest."""

    def advance_step(
        self, name: str, *, reason: str, expected_revision: int | None = None
    ) -> Deployment:
        """Move a canary under a rollout policy to its next step (the rollout controller)."""

    def promote(
        self,
        name: str,
        *,
        reason: str = "",
        automatic: bool = False,
        expected_revision: int | None = None,
    ) -> Deployment:
        """Make the candidate the stable variant at 100% (``automatic``: the rollout
        controller decided it)."""

    def rollback(
        self,
        name: str,
        *,
        reason: str = "manual rollback",
        automatic: bool = False,
        expected_revision: int | None = None,
    ) -> Deployment:
        """Go back at once to the last stable configuration (``automatic``: a guard of the
        rollout controller failed; recorded as ``auto_rollback`` with an ``alert.rollback``)."""


class LocalDeployments:
    """Deployments on a store in this process; ``actor`` is recorded on every revision.

    A thin adapter over :mod:`modelpilot.release.service`, so local behaviour is exactly what
    the SDK always had; the server's routes call the same functions with the caller's identity.
    """

    def __init__(self, store: Store, *, actor: str | None = None) -> None:
        self.store = store
        self.actor = actor

    def create_deployment(
        self, name: str, model_ref: str, *, reason: str = "created"
    ) -> Deployment:
        """Create ``name`` serving ``model_ref`` at 100%."""
        return service.create_deployment(
            self.store, name, model_ref, actor=self.actor, reason=reason
        )

    def get_deployment(self, name: str) -> Deployment:
        """The current revision."""
        return service.get_deployment(self.store, name)

    def list_deployments(self) -> list[Deployment]:
        """Every deployment."""
        return service.list_deployments(self.store)

    def history(self, name: str) -> list[Revision]:
        """Every revision, newest first."""
        return service.history(self.store, name)

    def set_canary(
        self,
        name: str,
        model_ref: str,
        weight: int,
        *,
        policy: RolloutPolicy | None = None,
        reason: str = "",
        expected_revision: int | None = None,
    ) -> Deployment:
        """Start or move a canary."""
        return service.set_canary(
            self.store,
            name,
            model_ref,
            weight,
            policy=policy,
            actor=self.actor,
            reason=reason,
            expected_revision=expected_revision,
        )

    def set_shadow(
        self, name: str, model_ref: str, *, reason: str = "", expected_revision: int | None = None
    ) -> Deployment:
        """Add or replace the shadow variant."""
        return service.set_shadow(
            self.store,
            name,
            model_ref,
            actor=self.actor,
            reason=reason,
            expected_revision=expected_revision,
        )

    def set_ab(
        self,
        name: str,
        model_ref: str,
        split: int,
        key: str,
        *,
        reason: str = "",
        expected_revision: int | None = None,
    ) -> Deployment:
        """Start an A/B test."""
        return service.set_ab(
            self.store,
            name,
            model_ref,
            split,
            key,
            actor=self.actor,
            reason=reason,
            expected_revision=expected_revision,
        )

    def set_weight(
        self, name: str, weight: int, *, reason: str = "", expected_revision: int | None = None
    ) -> Deployment:
        """Move the candidate's traffic weight."""
        return service.set_weight(
            self.store,
            name,
            weight,
            actor=self.actor,
            reason=reason,
            expected_revision=expected_revision,
        )

    def advance_step(
        self, name: str, *, reason: str, expected_revision: int | None = None
    ) -> Deployment:
        """Move the canary to its rollout policy's next step."""
        return service.advance_step(
            self.store, name, actor=self.actor, reason=reason, expected_revision=expected_revision
        )

    def promote(
        self,
        name: str,
        *,
        reason: str = "",
        automatic: bool = False,
        expected_revision: int | None = None,
    ) -> Deployment:
        """Promote the candidate."""
        return service.promote(
            self.store,
            name,
            actor=self.actor,
            reason=reason,
            automatic=automatic,
            expected_revision=expected_revision,
        )

    def rollback(
        self,
        name: str,
        *,
        reason: str = "manual rollback",
        automatic: bool = False,
        expected_revision: int | None = None,
    ) -> Deployment:
        """Roll back to the last stable configuration."""
        return service.rollback(
            self.store,
            name,
            actor=self.actor,
            reason=reason,
            automatic=automatic,
            expected_revision=expected_revision,
        )


__all__ = ["DeploymentService", "LocalDeployments"]
