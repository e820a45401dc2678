"""The registry seam: one typed interface, a local and an HTTP implementation.

The SDK registers, resolves and aliases model versions through :class:`RegistryService`
only, so the same code runs in-process on a store
(:class:`~modelpilot.registry.local.LocalRegistry`) or against ``modelpilot server``
(``modelpilot.client.HttpRegistry``). tests/contract/test_registry_service_contract.py runs
one suite against every implementation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from modelpilot.registry.entities import (
    Event,
    ModelVersion,
    RegisteredModel,
    VersionDataset,
    VersionRecord,
)
from modelpilot.registry.lineage import Lineage


@runtime_checkable
class RegistryService(Protocol):
    """What the SDK's registry calls need, and nothing more."""

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
        """Create the next version of ``name`` for a package already in the artifact store.

        ``trusted_types`` is the registering caller's own trust decision; it is recorded as
        given and never read from the package."""

    def get_version(self, ref: str) -> ModelVersion:
        """Resolve ``churn/3``, ``churn@champion`` or ``churn`` (newest) to a version."""

    def list_models(self) -> list[RegisteredModel]:
        """Every registered model with its newest version and aliases."""

    def list_versions(self, name: str) -> list[ModelVersion]:
        """Every live version of a model, newest first."""

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        """Point ``alias`` at ``version`` atomically (recorded as an event)."""

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove an alias (NotFound when it does not exist)."""

    def lineage(self, ref: str) -> Lineage:
        """version -> run -> datasets -> code revision."""

    def model_events(self, name: str, limit: int = 100) -> list[Event]:
        """Newest registry events of a model."""

    def add_record(
        self,
        ref: str,
        kind: str,
        payload: Mapping[str, Any],
        *,
        blob_digest: str | None = None,
    ) -> VersionRecord:
        """Attach a document (an evaluation, a gate verdict, card fields, a note) to the
        version behind ``ref``; append-only. ``blob_digest`` names a blob already in the
        artifact store (an evaluation's HTML report)."""

    def list_records(self, ref: str, kind: str | None = None) -> list[VersionRecord]:
        """The documents attached to a version, newest first (of one ``kind`` if given)."""


__all__ = ["RegistryService"]
