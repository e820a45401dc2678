"""What the registry returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelpilot.models.pii import PiiFinding


@dataclass(frozen=True)
class VersionDataset:
    """A dataset version linked to a model version, with what it was for (``training``,
    ``validation``, ``test`` or ``reference``; see :mod:`modelpilot.registry.roles`)."""

    name: str
    digest: str
    role: str = "training"

    @property
    def ref(self) -> str:
        """``name@digest``, which ``load_dataset`` accepts."""
        return f"{self.name}@{self.digest}"


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model."""

    name: str
    version: int
    created_ms: int
    run_id: str | None
    flavor: str
    package_digest: str
    signature: dict[str, Any]
    metrics: dict[str, float]
    description: str
    tags: dict[str, str]
    aliases: tuple[str, ...] = ()
    datasets: tuple[tuple[str, str], ...] = ()
    # the same datasets with their roles (``datasets`` keeps its (name, digest) pairs)
    linked_datasets: tuple[VersionDataset, ...] = ()
    # What loading may construct beyond the flavor's safe list, decided at registration.
    trusted_types: tuple[str, ...] = ()
    # Inputs that look like personal data, found in the input example by ``log_model`` (set on
    # the version it returns; not stored): set a logging policy before serving.
    pii_findings: tuple[PiiFinding, ...] = ()

    def datasets_with_role(self, role: str) -> tuple[VersionDataset, ...]:
        """The linked datasets that have ``role``, in name order."""
        return tuple(d for d in self.linked_datasets if d.role == role)

    @property
    def ref(self) -> str:
        """``name/version``."""
        return f"{self.name}/{self.version}"

    @property
    def is_retired(self) -> bool:
        """True once ``modelpilot models retire`` took the version out of service."""
        return RETIRED_TAG in self.tags


@dataclass(frozen=True)
class RegisteredModel:
    """A model name with its versions' summary."""

    name: str
    description: str
    created_ms: int
    latest_version: int | None
    aliases: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Event:
    """An audit-style record of something that changed (alias moved, version registered)."""

    id: int
    time_ms: int
    kind: str
    subject: str
    actor: str
    payload: dict[str, Any]


RECORD_KINDS = (
    "evaluation",
    "gate",
    "card_fields",
    "note",
    "monitoring",
    "loop",
    "optimization",
    "risk_register",
    "image",  # a container image built by `modelpilot package image`: tag, id, size
    "profile",  # `modelpilot profile`: latency, memory, req/s and cost per target
)
# The tags ``retire_version`` writes on a retired version (when, why, who): kept with the
# version, so every reader of a version (release, the report) sees it without another query.
RETIRED_TAG = "retired"
RETIRED_REASON_TAG = "retired.reason"
RETIRED_BY_TAG = "retired.by"


@dataclass(frozen=True)
class VersionRecord:
    """One document attached to a version: an evaluation, a gate verdict, card fields, a
    note or a monitoring report (``payload`` is JSON; ``blob_digest`` names an artifact such
    as the evaluation's HTML report)."""

    id: int
    model_name: str
    version: int
    kind: str
    created_ms: int
    actor: str
    payload: dict[str, Any]
    blob_digest: str | None
