"""Deployments and revisions as JSON and back, for the server's routes and the HTTP client.

>>> from modelpilot.release.config import Variant, build_config
>>> cfg = build_config([Variant(name="stable", model="m", version=1, role="stable",
...                             weight=100)], deployment="d")
>>> d = Deployment("d", 1, cfg, 5)
>>> deployment_from_json(deployment_to_json(d)) == d
True
"""

from __future__ import annotations

from typing import Any

from modelpilot.release.config import parse_config
from modelpilot.release.entities import Deployment, Revision


def deployment_to_json(deployment: Deployment) -> dict[str, Any]:
    """A deployment as JSON (its configuration in the stored form)."""
    return {
        "name": deployment.name,
        "revision": deployment.revision,
        "config": deployment.config.model_dump(mode="json"),
        "updated_ms": deployment.updated_ms,
    }


def deployment_from_json(data: dict[str, Any]) -> Deployment:
    """The inverse of :func:`deployment_to_json`."""
    name = str(data["name"])
    config = parse_config(data["config"], deployment=name)
    return Deployment(name, int(data["revision"]), config, int(data["updated_ms"]))


def revision_to_json(revision: Revision) -> dict[str, Any]:
    """One history entry as JSON."""
    return {
        "revision": revision.revision,
        "created_ms": revision.created_ms,
        "actor": revision.actor,
        "action": revision.action,
        "reason": revision.reason,
        "is_stable": revision.is_stable,
        "config": revision.config.model_dump(mode="json"),
    }


def revision_from_json(data: dict[str, Any], *, deployment: str) -> Revision:
    """The inverse of :func:`revision_to_json`."""
    return Revision(
        revision=int(data["revision"]),
        created_ms=int(data["created_ms"]),
        actor=str(data["actor"]),
        action=str(data["action"]),
        reason=str(data["reason"]),
        is_stable=bool(data["is_stable"]),
        config=parse_config(data["config"], deployment=deployment),
    )


__all__ = [
    "deployment_from_json",
    "deployment_to_json",
    "revision_from_json",
    "revision_to_json",
]
