"""The logging-policy seam: one typed interface, a local and an HTTP implementation.

``modelpilot logs policy set|show`` and the model server's policy follower read and change
logging policies through :class:`LogPolicyService` only, so the same code runs on a store in
this process (:class:`LocalLogPolicies`) or against ``modelpilot server``
(``modelpilot.client.HttpLogPolicies``, routes under ``/api/v1/logging-policies``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Protocol, runtime_checkable

from modelpilot.predictions.log_policy import Action, PolicySet
from modelpilot.predictions.policy_store import (
    StoredPolicy,
    list_log_policies,
    policy_set_of,
    set_log_policy,
)
from modelpilot.store import Store


@runtime_checkable
class LogPolicyService(Protocol):
    """What the CLI and the data plane need of logging policies, and nothing more."""

    def set_policy(
        self,
        model: str,
        columns: Mapping[str, Action],
        *,
        deployment: str | None = None,
        retention_days: int | None = None,
    ) -> StoredPolicy:
        """Merge column actions (and retention) into ``model``'s policy, or ``deployment``'s."""

    def list_policies(self) -> list[StoredPolicy]:
        """Every stored policy, models first, by name."""

    def policy_set(self, models: Iterable[str], deployments: Iterable[str]) -> PolicySet:
        """The snapshot a server applies for the models and deployments it serves."""


class LocalLogPolicies:
    """Logging policies on a store in this process; ``actor`` is recorded on every change.

    ``check_deployment`` raises NotFound for an unknown deployment (``release`` sits above
    the log, so the caller hands it in).
    """

    def __init__(
        self,
        store: Store,
        *,
        actor: str | None = None,
        check_deployment: Callable[[str], object] | None = None,
    ) -> None:
        self.store = store
        self.actor = actor
        self.check_deployment = check_deployment

    def set_policy(
        self,
        model: str,
        columns: Mapping[str, Action],
        *,
        deployment: str | None = None,
        retention_days: int | None = None,
    ) -> StoredPolicy:
        """Set and audit one policy change."""
        return set_log_policy(
            self.store,
            model,
            columns,
            deployment=deployment,
            retention_days=retention_days,
            actor=self.actor,
            check_deployment=self.check_deployment,
        )

    def list_policies(self) -> list[StoredPolicy]:
        """Every stored policy."""
        return list_log_policies(self.store)

    def policy_set(self, models: Iterable[str], deployments: Iterable[str]) -> PolicySet:
        """One read of the store."""
        return policy_set_of(list_log_policies(self.store), models, deployments)


__all__ = ["LocalLogPolicies", "LogPolicyService"]
