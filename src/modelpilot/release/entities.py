"""What a deployment is at one revision, and its history's entries: records the data plane
reads without the store (:mod:`modelpilot.release.service` writes and reads them there).
"""

from __future__ import annotations

from dataclasses import dataclass

from modelpilot.release.config import DeploymentConfig


@dataclass(frozen=True)
class Deployment:
    """A deployment at one revision."""

    name: str
    revision: int
    config: DeploymentConfig
    updated_ms: int


@dataclass(frozen=True)
class Revision:
    """One entry of a deployment's history."""

    revision: int
    created_ms: int
    actor: str
    action: str
    reason: str
    is_stable: bool
    config: DeploymentConfig
