"""Deployments and safe releases: variants, traffic policies, rollout, promote and rollback.

Owns which model versions serve under a deployment name and how traffic moves between them;
never does model math and never serves requests itself (the data plane reads its revisions).
The store-backed operations (``service``) are imported on first use, so the data plane, which
reads the entities and configurations only, does not import SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelpilot.lazy import lazy_exports
from modelpilot.release.config import (
    DeploymentConfig,
    GuardPolicy,
    RolloutPolicy,
    Variant,
)
from modelpilot.release.entities import Deployment, Revision

if TYPE_CHECKING:
    from modelpilot.release.service import (
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

__getattr__ = lazy_exports(__name__, __all__, ("modelpilot.release.service",))
