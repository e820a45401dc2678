"""``HttpDeployments``: the deployment service over HTTP to ``modelpilot server``.

Reads are retried after a dropped connection; changes are not (repeating a canary would write a
second revision), so a dropped change reports ``Unavailable`` with its outcome unknown. The
server decides everything (names, weights, the compare-and-set on ``expected_revision``, which
answers 409 -> ``Conflict``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from modelpilot.client.transport import HttpService
from modelpilot.release.codec import deployment_from_json, revision_from_json
from modelpilot.release.config import RolloutPolicy
from modelpilot.release.entities import Deployment, Revision

_ROOT = "/api/v1/deployments"


def _path(name: str, action: str = "") -> str:
    return f"{_ROOT}/{quote(name, safe='')}" + (f"/{action}" if action else "")


class HttpDeployments(HttpService):
    """:class:`~modelpilot.release.protocol.DeploymentService` on ``modelpilot server``."""

    def _change(self, method: str, path: str, body: dict[str, Any]) -> Deployment:
        return deployment_from_json(self.call(method, path, body, idempotent=False))

    def create_deployment(
        self, name: str, model_ref: str, *, reason: str = "created"
    ) -> Deployment:
        """Create ``name`` serving ``model_ref`` at 100% (deployer)."""
        return self._change("POST", _ROOT, {"name": name, "model": model_ref, "reason": reason})

    def get_deployment(self, name: str) -> Deployment:
        """The current revision."""
        return deployment_from_json(self.call("GET", _path(name), idempotent=True))

    def list_deployments(self) -> list[Deployment]:
        """Every deployment."""
        data = self.call("GET", _ROOT, idempotent=True)
        return [deployment_from_json(d) for d in data["deployments"]]

    def history(self, name: str) -> list[Revision]:
        """Every revision, newest first."""
        data = self.call("GET", _path(name, "history"), idempotent=True)
        return [revision_from_json(r, deployment=name) for r in data["revisions"]]

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
        """Start or move a canary (deployer)."""
        body = {
            "model": model_ref,
            "weight": weight,
            "policy": None if policy is None else policy.model_dump(mode="json"),
            "reason": reason,
            "expected_revision": expected_revision,
        }
        return self._change("POST", _path(name, "canary"), body)

    def set_shadow(
        self, name: str, model_ref: str, *, reason: str = "", expected_revision: int | None = None
    ) -> Deployment:
        """Add or replace the shadow variant (deployer)."""
        body = {"model": model_ref, "reason": reason, "expected_revision": expected_revision}
        return self._change("POST", _path(name, "shadow"), body)

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
        """Start an A/B test (deployer)."""
        body = {
            "model": model_ref,
            "split": split,
            "key": key,
            "reason": reason,
            "expected_revision": expected_revision,
        }
        return self._change("POST", _path(name, "ab"), body)

    def set_weight(
        self, name: str, weight: int, *, reason: str = "", expected_revision: int | None = None
    ) -> Deployment:
        """Move the candidate's traffic weight (deployer)."""
        body = {"weight": weight, "reason": reason, "expected_revision": expected_revision}
        return self._change("PUT", _path(name, "weight"), body)

    def advance_step(
        self, name: str, *, reason: str, expected_revision: int | None = None
    ) -> Deployment:
        """Move the canary to its rollout policy's next step (deployer)."""
        body = {"reason": reason, "expected_revision": expected_revision}
        return self._change("POST", _path(name, "advance"), body)

    def promote(
        self,
        name: str,
        *,
        reason: str = "",
        automatic: bool = False,
        expected_revision: int | None = None,
    ) -> Deployment:
        """Promote the candidate (deployer)."""
        body = {"reason": reason, "automatic": automatic, "expected_revision": expected_revision}
        return self._change("POST", _path(name, "promote"), body)

    def rollback(
        self,
        name: str,
        *,
        reason: str = "manual rollback",
        automatic: bool = False,
        expected_revision: int | None = None,
    ) -> Deployment:
        """Roll back to the last stable configuration (deployer)."""
        body = {"reason": reason, "automatic": automatic, "expected_revision": expected_revision}
        return self._change("POST", _path(name, "rollback"), body)


__all__ = ["HttpDeployments"]
