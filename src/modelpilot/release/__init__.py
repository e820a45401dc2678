"""Deployments and safe releases: variants, traffic policies, rollout, promote and rollback.

Owns which model versions serve under a deployment name and how traffic moves between them;
never does model math and never serves requests itself (the data plane reads its revisions).
"""

from __future__ import annotations

from modelpilot.release.config import (
    DeploymentConfig,
    GuardPolicy,
    RolloutPolicy,
    Variant,
)
from modelpilot.release.service import (
    Deployment,
    Revision,
    advance_step,
    create_deployment,
    get_deployment,
    history,
    list_deployments,
    promote,
    rollback,
    set_ab,
    set_canary,
    set_shadow,
    set_weight,
)

__all__ = [
    "Deployment",
    "DeploymentConfig",
    "GuardPolicy",
    "Revision",
    "RolloutPolicy",
    "Variant",
    "advance_step",
    "create_deployment",
    "get_deployment",
    "history",
    "list_deployments",
    "promote",
    "rollback",
    "set_ab",
    "set_canary",
    "set_shadow",
    "set_weight",
]
