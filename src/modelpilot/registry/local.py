"""``LocalRegistry``: the registry service in-process, over :mod:`modelpilot.registry.service`.

A thin adapter, so local behaviour is exactly what the SDK always had; the server's routes
call the same functions with the caller's identity as the actor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from modelpilot.registry import lineage as lineage_module
from modelpilot.registry import records, service
from modelpilot.registry.entities import (
    Event,
    ModelVersion,
    RegisteredModel,
    VersionDataset,
    VersionRecord,
)
from modelpilot.registry.lineage import Lineage
from modelpilot.store import Store


class LocalRegistry:
    """The registry on a store in this process; ``actor`` is recorded on its events."""

    def __init__(self, store: Store, *, actor: str | None = None) -> None:
        self.store = store
        self.actor = actor

    def register_version(
        self,
        name: str,
        *,
        package_digest: str,
        flavor: str,
        signature: Mapping[str, Any],
        run_id: str | None = None,
        datasets: Sequence[VersionDataset] = (),
        metrics: Mapping[str, float] | None = None,
        description: str = "",
        tags: Mapping[str, str] | None = None,
        trusted_types: Sequence[str] = (),
    ) -> ModelVersion:
        """Create the next version of ``name``."""
        return service.register_version(
            self.store,
            name,
            package_digest=package_digest,
            flavor=flavor,
            signature=signature,
            run_id=run_id,
            datasets=datasets,
            metrics=metrics,
            description=description,
            tags=tags,
            trusted_types=trusted_types,
            actor=self.actor,
        )

    def get_version(self, ref: str) -> ModelVersion:
        """Resolve a reference to its version."""
        return service.get_version(self.store, ref)

    def list_models(self) -> list[RegisteredModel]:
        """Every registered model."""
        return service.list_models(self.store)

    def list_versions(self, name: str) -> list[ModelVersion]:
        """Every live version of ``name``, newest first."""
        return service.list_versions(self.store, name)

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        """Point ``alias`` at ``version``."""
        return service.set_alias(self.store, name, alias, version, actor=self.actor)

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove an alias."""
        service.delete_alias(self.store, name, alias, actor=self.actor)

    def lineage(self, ref: str) -> Lineage:
        """version -> run -> datasets."""
        return lineage_module.lineage(self.store, ref)

    def model_events(self, name: str, limit: int = 100) -> list[Event]:
        """Newest registry events of ``name``."""
        return service.model_events(self.store, name, limit)

    def add_record(
        self,
        ref: str,
        kind: str,
        payload: Mapping[str, Any],
        *,
        blob_digest: str | None = None,
    ) -> VersionRecord:
        """Attach a document to a version."""
        return records.add_record(
            self.store, ref, kind, dict(payload), blob_digest=blob_digest, actor=self.actor
        )

    def list_records(self, ref: str, kind: str | None = None) -> list[VersionRecord]:
        """A version's documents, newest first."""
        return records.list_records(self.store, ref, kind)
