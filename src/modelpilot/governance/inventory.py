"""The inventory: every registered model, its versions, and where each one stands (serving in
a deployment, retired, or only registered).

It also decides which versions the report assesses for a model: the versions a deployment
serves (any role) when it is in production, else its newest live version; a model whose
versions are all retired is assessed on nothing but its decommissioning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelpilot.registry import ModelVersion, list_models, list_versions
from modelpilot.registry.entities import RETIRED_BY_TAG, RETIRED_REASON_TAG, RETIRED_TAG
from modelpilot.release import list_deployments
from modelpilot.store import Store


@dataclass(frozen=True)
class Serving:
    """A deployment serving a version, in a role at a traffic weight."""

    deployment: str
    role: str
    weight: int

    def __str__(self) -> str:
        return f"{self.deployment} ({self.role} {self.weight}%)"


@dataclass(frozen=True)
class VersionStatus:
    """One version in the inventory."""

    version: ModelVersion
    serving_in: tuple[Serving, ...]

    @property
    def status(self) -> str:
        """``serving``, ``retired`` or ``registered``."""
        if self.serving_in:
            return "serving"
        return "retired" if self.version.is_retired else "registered"

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        tags = self.version.tags
        return {
            "ref": self.version.ref,
            "created_ms": self.version.created_ms,
            "status": self.status,
            "serving_in": [str(s) for s in self.serving_in],
            "aliases": list(self.version.aliases),
            "retired": tags.get(RETIRED_TAG),
            "retired_reason": tags.get(RETIRED_REASON_TAG),
            "retired_by": tags.get(RETIRED_BY_TAG),
        }


@dataclass(frozen=True)
class ModelEntry:
    """A model of the inventory with its versions, newest first."""

    name: str
    versions: tuple[VersionStatus, ...] = ()
    deployments: tuple[str, ...] = ()  # deployments serving one of its versions
    note: str = ""  # why it has no versions, when it has none

    @property
    def in_production(self) -> bool:
        """True when a deployment serves one of its versions."""
        return bool(self.deployments)

    @property
    def assessed(self) -> tuple[ModelVersion, ...]:
        """The versions whose records evidence the model's controls."""
        serving = tuple(v.version for v in self.versions if v.serving_in)
        if serving:
            return serving
        live = [v.version for v in self.versions if not v.version.is_retired]
        return (live[0],) if live else ()

    @property
    def is_retired(self) -> bool:
        """True when every version was retired."""
        return bool(self.versions) and all(v.version.is_retired for v in self.versions)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "name": self.name,
            "in_production": self.in_production,
            "deployments": list(self.deployments),
            "assessed_versions": [v.ref for v in self.assessed],
            "versions": [v.to_dict() for v in self.versions],
            "note": self.note,
        }


def build_inventory(store: Store, model: str | None = None) -> list[ModelEntry]:
    """Every registered model (or only ``model``; a name nobody registered gets an entry
    with no versions, so the report shows its gaps rather than failing)."""
    serving = _serving(store)
    names = [m.name for m in list_models(store)]
    if model is not None:
        if model not in names:
            known = ", ".join(names[:20]) or "none"
            note = f"No registered model named {model!r} (registered models: {known})."
            return [ModelEntry(model, note=note)]
        names = [model]
    entries = []
    for name in names:
        versions = tuple(
            VersionStatus(v, tuple(serving.get(v.ref, ()))) for v in list_versions(store, name)
        )
        deployments = sorted({s.deployment for v in versions for s in v.serving_in})
        entries.append(ModelEntry(name, versions, tuple(deployments)))
    return entries


def _serving(store: Store) -> dict[str, list[Serving]]:
    """Version ref -> the deployments serving it."""
    found: dict[str, list[Serving]] = {}
    for deployment in list_deployments(store):
        for v in deployment.config.variants:
            found.setdefault(v.ref, []).append(Serving(deployment.name, v.role, v.weight))
    return found


__all__ = ["ModelEntry", "Serving", "VersionStatus", "build_inventory"]
