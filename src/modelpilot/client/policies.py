"""``HttpLogPolicies``: the logging-policy service over HTTP to ``modelpilot server``.

Reads are retried after a dropped connection; a change is not (its outcome is then unknown
and reported as ``Unavailable``). The server checks the columns against the model's inputs
and records the change in its audit log as the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from modelpilot.client.transport import HttpService
from modelpilot.predictions.log_policy import Action, PolicySet
from modelpilot.predictions.policy_store import (
    StoredPolicy,
    policy_set_of,
    stored_policy_from_json,
)

_ROOT = "/api/v1/logging-policies"


class HttpLogPolicies(HttpService):
    """:class:`~modelpilot.predictions.policy_service.LogPolicyService` on the server."""

    def set_policy(
        self,
        model: str,
        columns: Mapping[str, Action],
        *,
        deployment: str | None = None,
        retention_days: int | None = None,
    ) -> StoredPolicy:
        """Set one policy (deployer)."""
        body = {
            "model": model,
            "columns": dict(columns),
            "deployment": deployment,
            "retention_days": retention_days,
        }
        return stored_policy_from_json(self.call("POST", _ROOT, body, idempotent=False))

    def list_policies(self) -> list[StoredPolicy]:
        """Every stored policy (viewer)."""
        data = self.call("GET", _ROOT, idempotent=True)
        return [stored_policy_from_json(p) for p in data["policies"]]

    def policy_set(self, models: Iterable[str], deployments: Iterable[str]) -> PolicySet:
        """The snapshot for what a model server serves (one request)."""
        return policy_set_of(self.list_policies(), models, deployments)


__all__ = ["HttpLogPolicies"]
